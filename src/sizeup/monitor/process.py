"""One process tree read from /proc: who is in it, its CPU counters and RSS, and the kernel's high-water
mark of RSS. Read with os.open/os.read, not psutil or open(): the monitor does this 20 times a second, and
one stat read per process is about all a sample costs."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass

import psutil

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")
# /proc/PID/task/TID/children needs CONFIG_PROC_CHILDREN; psutil's fallback reads every process on the machine.
_HAS_CHILDREN_FILES = os.path.exists(f"/proc/{os.getpid()}/task/{os.getpid()}/children")


def _read(path: str) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        return os.read(fd, 1 << 16)
    except OSError:
        return None
    finally:
        os.close(fd)


@dataclass(frozen=True)
class StatReading:
    """One read of /proc/PID/stat (proc(5))."""

    cpu_s: float  # utime + stime + cutime + cstime: itself, and the children it has reaped
    rss_bytes: int
    start_ticks: int  # when it started, in clock ticks since boot: tells a reused pid from the process


def read_stat(pid: int) -> StatReading | None:
    data = _read(f"/proc/{pid}/stat")
    if data is None:
        return None  # gone (reaped)
    try:
        fields = data.rsplit(b")", 1)[1].split()  # the name may hold spaces and ")": split after its last ")"
        # fields[0] is field 3 of proc(5): utime 14, stime 15, cutime 16, cstime 17, starttime 22, rss 24
        ticks = int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
        return StatReading(ticks / _CLOCK_TICKS, int(fields[21]) * _PAGE, int(fields[19]))
    except (IndexError, ValueError):
        return None


def children(pid: int) -> list[int]:
    """Direct children of `pid`. A child belongs to the thread that forked it, so every thread is read:
    a few small reads, where psutil's walk reads /proc/*/stat of the whole machine (~40x the cost)."""
    if not _HAS_CHILDREN_FILES:
        try:
            return [child.pid for child in psutil.Process(pid).children()]
        except psutil.Error:
            return []
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:  # gone
        return []
    found: list[int] = []
    for tid in threads:
        listing = _read(f"/proc/{pid}/task/{tid}/children")
        if listing:
            found.extend(int(child) for child in listing.split())
    return found


def cmdline(pid: int) -> list[str]:
    """The process's arguments ([] if gone or a kernel thread)."""
    data = _read(f"/proc/{pid}/cmdline") or b""
    return [arg.decode(errors="replace") for arg in data.split(b"\0")[:-1]]


def tree(roots: Iterable[int]) -> dict[int, int | None]:
    """Every process under the roots, the roots included: pid -> parent pid (None for a root)."""
    parents: dict[int, int | None] = {}
    todo: list[tuple[int, int | None]] = [(root, None) for root in roots]
    while todo:
        pid, parent = todo.pop()
        if pid in parents:
            continue
        parents[pid] = parent
        todo.extend((child, pid) for child in children(pid))
    return parents


def reset_peak_rss(pid: int) -> bool:
    """Set the process's VmHWM to its current RSS (proc(5): clear_refs "5"), so that the next reading is the
    peak of this window only. Needs to own the process, or root. Note: it also lowers the ru_maxrss that
    wait4() will report for it, so never reset a process that someone else measures with wait4."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as control:
            control.write("5")
        return True
    except OSError:  # PermissionError, gone, or a kernel without clear_refs
        return False


def peak_rss_bytes(pid: int) -> int | None:
    """VmHWM: the kernel's high-water mark of the resident set, exact even for spikes no poller sees."""
    for line in (_read(f"/proc/{pid}/status") or b"").splitlines():
        if line.startswith(b"VmHWM:"):
            return int(line.split()[1]) * 1024
    return None  # gone, a zombie, or a kernel thread


def boottime_ticks() -> float:
    """Now, on the clock of StatReading.start_ticks (CLOCK_BOOTTIME, in clock ticks). psutil's create_time
    is no use here: its boot-time base is rounded to whole seconds."""
    return time.clock_gettime(time.CLOCK_BOOTTIME) * _CLOCK_TICKS
