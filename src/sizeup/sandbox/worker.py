"""The isolated backend's worker. It runs INSIDE bubblewrap, is started once, and forks one child per execution.

Standard library only and self-contained: the sandbox holds this file and driver.py (bound read-only), not the
repository. Usage: python -s -S -P worker.py CANDIDATE_UID CANDIDATE_GID  (-1 -1: the child keeps the worker's
uid, for a sandbox with a user namespace).

Protocol on stdin/stdout, each message a 4-byte big-endian length and UTF-8 JSON:
  worker -> host  {"ready": true, "pid": ..., "uid": ...}   once, after the imports
  host -> worker  a job: {"program", "setup_code", "tests", "test_timeout_s", "nonce", "timeout_s",
                          "rlimits": [[resource, soft, hard], ...], "max_output_bytes", "result_cap"}
  worker -> host  {"status", "utime", "stime", "maxrss_kb", "timed_out", "hwm_mb", "stdout", "stderr",
                   "channel", "poisoned"}, the three byte streams as latin-1 text (lossless)
A worker that cannot answer dies; the host replaces it. "poisoned" (a reason, or null) says the run left
something behind that the worker could not remove; the host then replaces the worker too.

The worker is the only process in its pid namespace besides bubblewrap's init, so after every run it kills
every other process there (kill(-1)), reaps them as their subreaper, and wipes every place a candidate can
write (/tmp, /dev/shm, /dev/mqueue).
"""

import ctypes
import gc
import json
import os
import resource
import select
import shutil
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import driver  # noqa: E402 - found next to this file, then the path is restored for the candidates

del sys.path[0]

# Imported once here so that no forked child pays for them. random reseeds itself in every forked child.
import bisect  # noqa: E402, F401, I001
import collections  # noqa: E402, F401
import copy  # noqa: E402, F401
import dataclasses  # noqa: E402, F401
import functools  # noqa: E402, F401
import heapq  # noqa: E402, F401
import itertools  # noqa: E402, F401
import math  # noqa: E402, F401
import operator  # noqa: E402, F401
import random  # noqa: E402, F401
import re  # noqa: E402, F401
import string  # noqa: E402, F401
import traceback  # noqa: E402, F401 - the driver imports it lazily, on failures
import typing  # noqa: E402, F401

RESULT_FD = 3  # where the child's driver writes its JSON lines
HARNESS_EXIT = 70  # the child failed before the driver started: a harness error, not the program's
WRITABLE = ("/tmp", "/dev/shm", "/dev/mqueue")
REAP_WAIT_S = 2.0  # how long SIGKILLed processes may take to die before the worker counts as poisoned
PR_SET_DUMPABLE, PR_SET_CHILD_SUBREAPER = 4, 36
_libc = ctypes.CDLL(None, use_errno=True)


def _prctl(option: int, value: int) -> None:
    if _libc.prctl(option, value, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), f"prctl({option}, {value}) failed")


# --- framing ----------------------------------------------------------------------------------------------

def _send(fd: int, message: dict) -> None:
    body = json.dumps(message).encode()
    data = memoryview(struct.pack(">I", len(body)) + body)
    while data:
        data = data[os.write(fd, data):]


def _receive(fd: int) -> dict | None:
    header = _read_exactly(fd, 4)
    if header is None:
        return None
    body = _read_exactly(fd, struct.unpack(">I", header)[0])
    return None if body is None else json.loads(body)


def _read_exactly(fd: int, size: int) -> bytes | None:
    data = bytearray()
    while len(data) < size:
        chunk = os.read(fd, size - len(data))
        if not chunk:
            return None
        data += chunk
    return bytes(data)


# --- one execution ----------------------------------------------------------------------------------------

def _child(job: dict, run_dir: str, out_w: int, err_w: int, result_w: int, uid: int, gid: int) -> None:
    """In the forked child: confine this process, then let the driver run the candidate. Never returns."""
    try:
        os.setpgid(0, 0)
        null = os.open(os.devnull, os.O_RDONLY)
        for source, target in ((null, 0), (out_w, 1), (err_w, 2), (result_w, RESULT_FD)):  # in this order
            os.dup2(source, target)
        os.closerange(RESULT_FD + 1, 1 << 20)  # the host protocol, the pipes' other ends
        for which, soft, hard in job.pop("rlimits"):
            resource.setrlimit(which, (soft, hard))
        if uid >= 0:  # the real uid is what RLIMIT_NPROC counts, and it drops every capability
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            if os.getuid() != uid or os.geteuid() != uid:
                raise RuntimeError("could not drop to the candidate uid")
        _prctl(PR_SET_DUMPABLE, 1)  # its own /proc/self, as a normal process has it
        os.mkdir(run_dir, 0o700)
        os.chdir(run_dir)
        os.environ["HOME"] = run_dir
        sys.argv = [""]
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(HARNESS_EXIT)
    driver.run_job(job, RESULT_FD)
    os._exit(HARNESS_EXIT)  # run_job ends the process itself


def _execute(job: dict, run_number: int, uid: int, gid: int) -> dict:
    deadline = time.monotonic() + job.pop("timeout_s")
    caps = {"stdout": job.pop("max_output_bytes"), "stderr": 0, "channel": job.pop("result_cap")}
    caps["stderr"] = caps["stdout"]
    pipes = {name: os.pipe() for name in caps}
    run_dir = f"/tmp/sizeup-run-{run_number}"
    pid = os.fork()
    if pid == 0:
        _child(job, run_dir, pipes["stdout"][1], pipes["stderr"][1], pipes["channel"][1], uid, gid)
    for _, write_end in pipes.values():
        os.close(write_end)
    buffers = {read_end: bytearray() for read_end, _ in pipes.values()}
    limits = {pipes[name][0]: cap for name, cap in caps.items()}
    try:
        timed_out, status, usage, hwm_mb = _supervise(pid, buffers, limits, deadline)
        poisoned = _clean_up()
        for fd in buffers:  # every writer is dead now: what is left in the pipes ends in EOF
            os.set_blocking(fd, False)
            while _read_into(fd, buffers[fd], limits[fd]):
                pass
    finally:
        for fd in buffers:
            os.close(fd)
    return {"status": status, "utime": usage.ru_utime, "stime": usage.ru_stime, "maxrss_kb": usage.ru_maxrss,
            "timed_out": timed_out, "hwm_mb": hwm_mb, "poisoned": poisoned,
            **{name: buffers[pipes[name][0]].decode("latin-1") for name in caps}}


def _supervise(pid: int, buffers: dict, limits: dict, deadline: float):
    """Drain the child's pipes while it runs, until it exits or the deadline passes; then reap it."""
    pidfd = os.pidfd_open(pid)  # readable once the child exits: no polling
    poller = select.poll()
    for fd in (*buffers, pidfd):
        poller.register(fd, select.POLLIN)
    open_fds, exited, hwm_mb = set(buffers), False, 0.0
    try:
        while not exited:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            for fd, _ in poller.poll(max(1, int(remaining * 1000) + 1)):
                if fd == pidfd:
                    exited = True
                elif fd in open_fds and not _read_into(fd, buffers[fd], limits[fd]):
                    poller.unregister(fd)  # EOF, or the child closed its end
                    open_fds.discard(fd)
    finally:
        os.close(pidfd)
    if not exited:
        hwm_mb = _vm_hwm_mb(pid)  # the driver will not live to report it
    _kill_everyone()  # the child's group, and whatever escaped it (setsid, double fork)
    _, status, usage = os.wait4(pid, 0)
    return not exited, status, usage, hwm_mb


def _read_into(fd: int, buffer: bytearray, cap: int) -> int:
    """Read what is there; keep up to `cap` bytes, drop the rest. Returns the number of bytes read: 0 at EOF,
    or when nothing is there (a writer that did not die: the run is poisoned anyway)."""
    try:
        chunk = os.read(fd, 65536)
    except BlockingIOError:
        return 0
    buffer += chunk[: max(0, cap - len(buffer))]
    return len(chunk)


def _vm_hwm_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as status:
            return next(int(line.split()[1]) / 1024 for line in status if line.startswith("VmHWM:"))
    except (OSError, StopIteration, ValueError):
        return 0.0


def _kill_everyone() -> None:
    """kill(-1) reaches every process of this pid namespace but its init and this worker, and a fork racing
    with it either lands in the list or fails: nothing started by the candidate survives."""
    try:
        os.kill(-1, 9)
    except ProcessLookupError:  # nobody else is left
        pass


def _clean_up() -> str | None:
    """Kill and reap everything the run started, wipe what it wrote. Returns why the worker cannot be
    trusted with another run, or None."""
    _kill_everyone()
    if not _reap_all(time.monotonic() + REAP_WAIT_S):
        return "processes of the run did not die"
    me = os.getpid()
    others = [name for name in os.listdir("/proc") if name.isdigit() and int(name) not in (1, me)]
    if others:
        return f"processes left in the sandbox: {others[:5]}"
    for top in WRITABLE:
        if os.path.isdir(top):
            _wipe(top)
            if os.listdir(top):
                return f"could not empty {top}"
    for kind in ("shm", "msg", "sem"):  # System V IPC objects would outlive the run in this ipc namespace
        try:
            with open(f"/proc/sysvipc/{kind}") as table:
                if len(table.readlines()) > 1:
                    return f"System V {kind} objects left behind"
        except FileNotFoundError:
            pass
    return None


def _reap_all(deadline: float) -> bool:
    """As subreaper the worker inherits every orphan of the run; wait for all of them."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return True
        if pid == 0:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.001)


def _wipe(top: str) -> None:
    """Remove everything under `top`, whatever modes the candidate set (the worker may lack the capability
    to ignore them when it shares the candidate's uid)."""
    for root, dirs, _ in os.walk(top):  # top-down: each directory is opened up before the walk enters it
        for name in dirs:
            path = os.path.join(root, name)
            if not os.path.islink(path):
                os.chmod(path, 0o700)
    for entry in os.scandir(top):
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            try:
                os.unlink(entry.path)
            except OSError:
                pass


def main() -> None:
    uid, gid = int(sys.argv[1]), int(sys.argv[2])
    # The protocol moves off 0 and 1, which become /dev/null: nothing but _send may reach the host.
    from_host, to_host = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.close(null)
    _prctl(PR_SET_CHILD_SUBREAPER, 1)  # orphans of a run come to this worker, not to bwrap's init
    _prctl(PR_SET_DUMPABLE, 0)  # a candidate sharing this uid cannot ptrace the worker or read its memory
    gc.freeze()  # the children never touch these objects' pages for a collection: fewer copies on write
    _send(to_host, {"ready": True, "pid": os.getpid(), "uid": os.getuid()})
    run_number = 0
    while (job := _receive(from_host)) is not None:
        run_number += 1
        _send(to_host, _execute(job, run_number, uid, gid))


if __name__ == "__main__":
    main()
