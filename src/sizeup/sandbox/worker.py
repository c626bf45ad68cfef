"""The isolated backend's worker. It runs INSIDE bubblewrap, is started once, and forks one child per execution.

Standard library only and self-contained: the sandbox holds this file and driver.py (bound read-only), not the
repository. Usage: python -s -S -P worker.py CANDIDATE_UID CANDIDATE_GID HOST_PID_NAMESPACE  (-1 -1: the child
keeps the worker's uid, for a sandbox with a user namespace; the namespace is readlink(/proc/self/ns/pid) of
the host, so the worker can tell that it is not in it).

Protocol on stdin/stdout, each message a 4-byte big-endian length and UTF-8 JSON:
  worker -> host  {"ready": true, "pid": ..., "uid": ...}   once, after the imports
  host -> worker  a job: {"program", "setup_code", "tests", "test_timeout_s", "nonce", "timeout_s",
                          "rlimits": [[resource, soft, hard], ...], "max_output_bytes", "result_cap"}
  worker -> host  {"status", "utime", "stime", "maxrss_kb", "timed_out", "hwm_mb", "stdout", "stderr",
                   "channel", "poisoned"}, the three byte streams as latin-1 text (lossless)
A worker that cannot answer dies; the host replaces it. "poisoned" (a reason, or null) says the run left
something behind that the worker could not remove; the host then replaces the worker too.

The worker is the only process in its pid namespace besides bubblewrap's init, so after every run it kills
every other process there (walking its own /proc), reaps them as their subreaper, and wipes every place a
candidate can write (/tmp, /dev/shm, /dev/mqueue).

SAFETY: on the host, "every other process" is every process of the machine. The worker refuses to start
unless it is provably in a pid namespace of its own with a /proc of that namespace (`_why_not_confined`), and
the killing code refuses to run unless that check passed in this process. Never import this module into the
host's process to call its helpers.
"""

import ctypes
import gc
import json
import os
import resource
import select
import shutil
import signal
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
import decimal  # noqa: E402, F401
import fractions  # noqa: E402, F401
import functools  # noqa: E402, F401
import heapq  # noqa: E402, F401
import itertools  # noqa: E402, F401
import math  # noqa: E402, F401
import operator  # noqa: E402, F401
import random  # noqa: E402, F401
import re  # noqa: E402, F401
import statistics  # noqa: E402, F401
import string  # noqa: E402, F401
import traceback  # noqa: E402, F401 - the driver imports it lazily, on failures
import typing  # noqa: E402, F401

RESULT_FD = 3  # where the child's driver writes its JSON lines
HARNESS_EXIT = 70  # the child failed before the driver started: a harness error, not the program's
WRITABLE = ("/tmp", "/dev/shm", "/dev/mqueue")
REAP_WAIT_S = 2.0  # how long SIGKILLed processes may take to die before the worker counts as poisoned
PR_SET_DUMPABLE, PR_SET_CHILD_SUBREAPER = 4, 36
_libc = ctypes.CDLL(None, use_errno=True)
_confined = False  # set by main() once _why_not_confined() found nothing; the killing code checks it


def _why_not_confined(host_pid_namespace: str) -> str | None:
    """Why this process must NOT kill "every other process" it sees, or None when that is safe: it is in a pid
    namespace other than the host's, it is the process bwrap's init started there (pid 2, parent 1, and pid 1
    is bwrap), and /proc is that namespace's own (so walking it reaches nothing outside)."""
    mine = os.readlink("/proc/self/ns/pid")
    if not host_pid_namespace.startswith("pid:[") or mine == host_pid_namespace:
        return f"not in a pid namespace of its own ({mine}, host {host_pid_namespace!r})"
    if os.getpid() != 2 or os.getppid() != 1:  # bwrap's init is 1 and the command it starts is 2
        return f"pid {os.getpid()} (parent {os.getppid()}) is not the first process bwrap starts"
    if os.readlink("/proc/self") != str(os.getpid()):
        return "/proc is not the procfs of this pid namespace"
    with open("/proc/1/cmdline", "rb") as init:
        if not os.path.basename(init.read().split(b"\0")[0]).startswith(b"bwrap"):
            return "pid 1 of this namespace is not bubblewrap"
    return None


def _prctl(option: int, value: int) -> None:
    if _libc.prctl(option, value, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), f"prctl({option}, {value}) failed")


# --- framing ----------------------------------------------------------------------------------------------


def _send(fd: int, message: dict) -> None:
    body = json.dumps(message).encode()
    data = memoryview(struct.pack(">I", len(body)) + body)
    while data:
        data = data[os.write(fd, data) :]


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
    global _confined
    _confined = False  # the candidate shares this interpreter: nothing of the worker's may stay armed
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
            while driver.read_capped(fd, buffers[fd], limits[fd]):
                pass
    finally:
        for fd in buffers:
            os.close(fd)
    return {
        "status": status,
        "utime": usage.ru_utime,
        "stime": usage.ru_stime,
        "maxrss_kb": usage.ru_maxrss,
        "timed_out": timed_out,
        "hwm_mb": hwm_mb,
        "poisoned": poisoned,
        **{name: buffers[pipes[name][0]].decode("latin-1") for name in caps},
    }


def _supervise(pid: int, buffers: dict, limits: dict, deadline: float):
    """Drain the child's pipes while it runs, until it exits or the deadline passes; then reap it. What it left
    running (its group, a setsid grandchild, a double-forked daemon) is for _clean_up."""
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
                elif fd in open_fds and not driver.read_capped(fd, buffers[fd], limits[fd]):
                    poller.unregister(fd)  # EOF, or the child closed its end
                    open_fds.discard(fd)
    finally:
        os.close(pidfd)
    if not exited:
        hwm_mb = driver.peak_mb(pid)  # the driver will not live to report it
        os.kill(pid, signal.SIGKILL)  # our own child, by pid: it cannot have been reaped and reused
    _, status, usage = os.wait4(pid, 0)  # before _clean_up's waitpid(-1) could take its status
    return not exited, status, usage, hwm_mb


def _others() -> list[int]:
    """Every process this /proc shows but bwrap's init and this worker: inside the sandbox, what runs started."""
    me = os.getpid()
    return [pid for pid in map(int, filter(str.isdigit, os.listdir("/proc"))) if pid not in (1, me)]


def _kill_the_rest(deadline: float) -> bool:
    """SIGKILL and reap every other process of this pid namespace, again and again until none is left: a fork
    racing with one pass is caught by the next, and a killed process forks no more. False at the deadline."""
    if not _confined:  # see SAFETY in the module docstring: on the host this would kill the machine
        raise RuntimeError("refusing to kill every other process outside a pid namespace of our own")
    while True:
        others = _others()
        if not others:
            return True
        for pid in others:
            try:
                os.kill(pid, signal.SIGKILL)  # a zombie takes it without harm
            except ProcessLookupError:
                pass
        _reap_ready()
        if time.monotonic() > deadline:
            return False
        if _others():
            time.sleep(0.001)  # SIGKILLed processes take a moment to exit and be reparented to us


def _reap_ready() -> None:
    """As subreaper the worker inherits every orphan of the run; collect those that have exited."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _clean_up() -> str | None:
    """Kill and reap everything the run started, wipe what it wrote. Returns why the worker cannot be
    trusted with another run, or None."""
    if not _kill_the_rest(time.monotonic() + REAP_WAIT_S):
        return f"processes of the run did not die: {_others()[:5]}"
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
    global _confined
    uid, gid, host_pid_namespace = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    problem = _why_not_confined(host_pid_namespace)
    if problem:
        sys.exit(f"sizeup worker: refusing to run: {problem}")
    _confined = True
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
