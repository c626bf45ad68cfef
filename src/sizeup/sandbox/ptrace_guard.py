"""Keep a candidate of the process backend from reading sizeup's own memory (ptrace, process_vm_readv,
/proc/PID/mem), where the tests' expected values live.

The kernel lets a process read another's memory if it has the same uid and the target is "dumpable", or if
it holds CAP_SYS_PTRACE. So: sizeup marks itself not dumpable (prctl PR_SET_DUMPABLE 0), and, where it runs
as root, the candidate loses CAP_SYS_PTRACE before it starts (dropped from the bounding and inheritable sets,
so the exec of a root process cannot give it back). Neither changes what the candidate may otherwise do as
this user: the process backend is still not isolated (README, "The sandbox").
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable

PR_SET_DUMPABLE, PR_CAPBSET_DROP = 4, 24
CAP_SYS_PTRACE = 19
_LINUX_CAPABILITY_VERSION_3 = 0x20080522


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def guard() -> Callable[[], None] | None:
    """Make this process not dumpable; return what the child must call between fork and exec (None where
    there is nothing to drop: not Linux, or not root). Idempotent."""
    if sys.platform != "linux":
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    if os.geteuid() != 0:
        return None
    header, data = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0), (_CapData * 2)()
    mask = ~(1 << CAP_SYS_PTRACE) & 0xFFFFFFFF

    def drop_ptrace() -> None:  # in the child, before exec: ctypes only, nothing imported or allocated
        libc.prctl(PR_CAPBSET_DROP, CAP_SYS_PTRACE, 0, 0, 0)
        if libc.capget(ctypes.byref(header), ctypes.byref(data)) == 0:
            data[0].effective &= mask
            data[0].permitted &= mask
            data[0].inheritable &= mask
            libc.capset(ctypes.byref(header), ctypes.byref(data))

    return drop_ptrace
