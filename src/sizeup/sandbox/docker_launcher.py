"""The docker backend's launcher. It runs INSIDE the container, once per execution, as the candidate's uid.

Standard library only and self-contained: the container holds this file and driver.py (copied into
/work/.sizeup once per container), not the repository. Usage:

    python3 -s -S launcher.py RUN_DIR TIMEOUT_S OUTPUT_CAP MEMORY_MB FILE_MB

RUN_DIR holds job.json (the driver's job, nonce included). The launcher starts the driver in RUN_DIR with
rlimits and a session of its own, drains its stdout, stderr and result pipe (keeping at most OUTPUT_CAP
bytes of each stream), kills its process group at exit or at the deadline, then looks for what the run left
behind: processes and files outside RUN_DIR. It prints ONE JSON report on stdout and empties RUN_DIR.

Why a launcher rather than `python3 driver.py` straight from `docker exec`: the exec's stdout stays open as long
as any process holds it, so a grandchild left sleeping would hold the exec (and the host) until it ends; and a
result channel in a file could be truncated by the candidate, a pipe cannot. Here the candidate holds only
pipes to the launcher, and the launcher is made non-dumpable, so the candidate (same uid) can neither open
/proc/<launcher>/fd/1 to write a fake report nor ptrace it. The host decides the verdict from the raw channel
and its nonce, never from a verdict computed in here.
"""

from __future__ import annotations

import base64
import ctypes
import json
import os
import resource
import shutil
import sys
import time

import driver  # beside this file in the container (sys.path[0]): the shared, stdlib-only helpers

DRIVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "driver.py")
SETTLE_S = 0.5  # how long SIGKILLed processes may take to disappear before they count as left behind
PR_SET_DUMPABLE = 4
# Where a candidate might leave something for the next run: its run dir's parent (root's, but checked all the
# same) and POSIX IPC. The root, /tmp, /var/tmp and /run are read-only.
WRITABLE = ("/work", "/dev/shm", "/dev/mqueue")
CGROUP_V1 = {
    "cpu_ns": "/sys/fs/cgroup/cpuacct/cpuacct.usage",
    "peak_bytes": "/sys/fs/cgroup/memory/memory.max_usage_in_bytes",
    "oom": "/sys/fs/cgroup/memory/memory.oom_control",
}
CGROUP_V2 = {
    "cpu_us": "/sys/fs/cgroup/cpu.stat",
    "peak_bytes": "/sys/fs/cgroup/memory.peak",
    "oom": "/sys/fs/cgroup/memory.events",
}


def _read(path: str) -> str:
    try:
        with open(path) as handle:
            return handle.read()
    except OSError:
        return ""


def _field(text: str, name: str) -> int | None:
    """The value of `name` in a 'key value' cgroup file (cpu.stat, memory.events, memory.oom_control)."""
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == name:
            return int(parts[1])
    return None


def cgroup_counters() -> dict:
    """This container's cgroup CPU time, peak memory and OOM-kill count, and where each came from."""
    if os.path.exists(CGROUP_V1["cpu_ns"]):
        cpu = _read(CGROUP_V1["cpu_ns"]).strip()
        peak = _read(CGROUP_V1["peak_bytes"]).strip()
        return {
            "cgroup": "v1",
            "cpu_s": int(cpu) / 1e9 if cpu else None,
            "peak_bytes": int(peak) if peak else None,
            "oom_kills": _field(_read(CGROUP_V1["oom"]), "oom_kill"),
        }
    if os.path.exists(CGROUP_V2["cpu_us"]):
        usage = _field(_read(CGROUP_V2["cpu_us"]), "usage_usec")
        peak = _read(CGROUP_V2["peak_bytes"]).strip()  # Linux >= 5.19
        return {
            "cgroup": "v2",
            "cpu_s": usage / 1e6 if usage is not None else None,
            "peak_bytes": int(peak) if peak else None,
            "oom_kills": _field(_read(CGROUP_V2["oom"]), "oom_kill"),
        }
    return {"cgroup": None, "cpu_s": None, "peak_bytes": None, "oom_kills": None}


def _pids() -> set:
    return {int(name) for name in os.listdir("/proc") if name.isdigit()}


def _alive(pid: int) -> bool:
    """Running, not a zombie waiting for the container's init to reap it."""
    stat = _read(f"/proc/{pid}/stat")
    return bool(stat) and stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _cmdline(pid: int) -> str:
    return _read(f"/proc/{pid}/cmdline").replace("\0", " ").strip()[:200]


def _entries() -> set[str]:
    """Every entry directly under the writable places, to compare before and after the run."""
    found: set[str] = set()
    for top in WRITABLE:
        try:
            found.update(os.path.join(top, name) for name in os.listdir(top))
        except OSError:
            pass
    return found


def _limit(which: int, value: int) -> None:
    """setrlimit, clamped to the hard limit the container gives us, so it cannot fail (EvalPlus PR #225)."""
    ceiling = resource.getrlimit(which)[1]
    if ceiling != resource.RLIM_INFINITY:
        value = min(value, ceiling)
    resource.setrlimit(which, (value, value))


def _start_driver(
    run_dir: str, result_fd: int, out_fd: int, err_fd: int, timeout_s: float, memory_mb: int, file_mb: int
) -> int:
    """fork + exec the driver: no subprocess import (it costs milliseconds of every run), and the child's
    setup is a handful of syscalls."""
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "HOME": run_dir,
        "TMPDIR": run_dir,
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    pid = os.fork()
    if pid:
        return pid
    try:  # the child: never return into the launcher's code
        os.setsid()  # a group of its own, so one killpg ends what it forks
        null = os.open(os.devnull, os.O_RDONLY)
        for source, target in ((null, 0), (out_fd, 1), (err_fd, 2), (result_fd, 3)):
            os.dup2(source, target)  # dup2 leaves the copies inheritable
        os.closerange(4, 1 << 16)
        os.chdir(run_dir)
        mb = 1024 * 1024
        _limit(resource.RLIMIT_AS, memory_mb * mb)
        _limit(resource.RLIMIT_FSIZE, file_mb * mb)
        _limit(resource.RLIMIT_CPU, int(timeout_s) + 2)  # a backstop: the wall clock normally ends it first
        _limit(resource.RLIMIT_CORE, 0)
        _limit(resource.RLIMIT_NOFILE, 256)
        flags = ["-s", "-S", "-P"] if sys.version_info >= (3, 11) else ["-s", "-S"]  # -P is new in 3.11
        os.execve(sys.executable, [sys.executable, *flags, DRIVER, "job.json", "3"], env)
    finally:
        os._exit(127)


def _left_behind(before: set, me: int) -> list:
    """Processes the run started that still run, after giving SIGKILLed ones a moment to go."""
    settle_by = time.monotonic() + SETTLE_S
    while True:
        left = [pid for pid in sorted(_pids() - before - {me}) if _alive(pid)]
        if not left or time.monotonic() > settle_by:
            return [f"{pid}: {_cmdline(pid)}" for pid in left]
        time.sleep(0.01)


def _empty(run_dir: str) -> str:
    """Remove everything in the run dir, whatever modes the candidate set (it is ours: same uid). The dir itself
    stays: /work is root's, so that nothing but the engine creates entries there. '' or why not."""

    def make_writable_and_retry(function, path, _):
        os.chmod(os.path.dirname(path), 0o700)
        if os.path.isdir(path) and not os.path.islink(path):
            os.chmod(path, 0o700)
        function(path)

    try:
        os.chmod(run_dir, 0o700)
        for name in os.listdir(run_dir):
            path = os.path.join(run_dir, name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, onerror=make_writable_and_retry)
            else:
                os.remove(path)
        left = os.listdir(run_dir)
        return f"could not empty the run dir: {left[:5]} left" if left else ""
    except OSError as exc:
        return f"could not empty the run dir: {exc}"


def _nondumpable() -> None:
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # still correct, only easier to tamper with


def main() -> None:
    run_dir, timeout_s = sys.argv[1], float(sys.argv[2])
    output_cap, memory_mb, file_mb = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    _nondumpable()
    me = os.getpid()
    pids_before, entries_before = _pids(), _entries()
    counters_before = cgroup_counters()
    started = time.monotonic()
    pipes = [os.pipe() for _ in range(3)]  # stdout, stderr, result channel
    pid = _start_driver(run_dir, pipes[2][1], pipes[0][1], pipes[1][1], timeout_s, memory_mb, file_mb)
    for _, write_end in pipes:
        os.close(write_end)  # else the pipes never reach EOF
    streams = {
        pipes[0][0]: (bytearray(), output_cap),
        pipes[1][0]: (bytearray(), output_cap),
        pipes[2][0]: (bytearray(), driver.RESULT_CAP),
    }
    timed_out, status, usage, hwm_mb = driver.supervise(pid, streams, started + timeout_s - time.monotonic())
    returncode = os.waitstatus_to_exitcode(status)
    run_wall_s = time.monotonic() - started
    counters_after = cgroup_counters()
    left = _left_behind(pids_before, me)
    removal_problem = _empty(run_dir)
    strays = sorted(_entries() - entries_before)
    out, err, channel = (bytes(buffer) for buffer, _ in streams.values())
    report = {
        "stdout": base64.b64encode(out).decode(),
        "stderr": base64.b64encode(err).decode(),
        "channel": base64.b64encode(channel).decode(),
        "channel_truncated": len(channel) >= driver.RESULT_CAP,
        "timed_out": timed_out,
        "returncode": returncode,
        "run_wall_s": run_wall_s,
        "rusage_cpu_s": usage.ru_utime + usage.ru_stime,
        "hwm_mb": hwm_mb,
        "rusage_maxrss_mb": usage.ru_maxrss / 1024,  # the driver's, for a run that ended before reporting its own
        "before": counters_before,
        "after": counters_after,
        "left_processes": left[:10],
        "stray_files": strays[:10],
        "removal_problem": removal_problem,
    }
    data = json.dumps(report).encode()
    while data:
        data = data[os.write(1, data) :]


if __name__ == "__main__":
    main()
