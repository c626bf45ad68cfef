"""Run one command and measure it with the kernel's numbers, as /usr/bin/time does: `sizeup measure`.

Peak RSS and CPU come from wait4()'s rusage of the command: ru_maxrss is the kernel's high-water mark of
the command (or of the largest child it waited for; not the sum of children running at once), and
ru_utime+ru_stime includes the children it waited for. On Linux a child's ru_maxrss is at least the RSS
of whoever forked it, so the command is not forked by sizeup (~100 MB) but by a tiny spawner
(`python -I -S`, ~9 MB here), which waits for it and sends the rusage back on a pipe. That spawner's RSS
is the floor below which no peak can read (`floor_rss_mb`). A Monitor runs alongside for GPU and energy;
it leaves the high-water marks alone, as resetting them would lower the ru_maxrss that wait4 reports.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field

from sizeup.monitor.window import Monitor
from sizeup.records import Measured, ResourceSummary

# Runs in `python -I -S`: no site, no imports beyond builtins, so that its RSS (the floor) stays small.
_SPAWNER = r"""
import os, signal, sys, time
report, argv = int(sys.argv[1]), sys.argv[2:]
os.set_inheritable(report, False)
exec_r, exec_w = os.pipe()
rss_kb = 0
with open("/proc/self/status") as status:
    for line in status:
        if line.startswith("VmRSS:"):
            rss_kb = int(line.split()[1])
started = time.monotonic()
pid = os.fork()
if pid == 0:
    os.close(exec_r)
    # Python ignores SIGPIPE and SIGXFSZ, and ignored signals survive exec: give the command the defaults.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
    try:
        os.execvp(argv[0], argv)
    except OSError as err:
        os.write(exec_w, str(err.errno or 0).encode())
    os._exit(127)
signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the command; stay to report how it ended
os.close(exec_w)
exec_errno = int(os.read(exec_r, 32) or b"0")
_, status, usage = os.wait4(pid, 0)
wall = time.monotonic() - started
os.write(report, ('{"wall_s": %r, "utime": %r, "stime": %r, "maxrss_kb": %d, "status": %d, '
                  '"exec_errno": %d, "spawner_rss_kb": %d}' % (wall, usage.ru_utime, usage.ru_stime,
                  usage.ru_maxrss, status, exec_errno, rss_kb)).encode())
"""

GPU_AND_ENERGY = ("gpu_mem_mb", "gpu_total_mem_mb", "gpu_util_pct", "gpu_energy_j", "cpu_energy_j")


class MeasureError(RuntimeError):
    """The command could not be run or measured: one line for the user."""


@dataclass
class MeasureResult:
    argv: list[str]
    wall_s: float
    cpu_s: float  # ru_utime + ru_stime: the command and the children it waited for
    peak_rss_mb: float  # ru_maxrss (MB = 1e6 bytes)
    exit_code: int  # negative: killed by that signal, as subprocess reports it
    method: dict[str, Measured]  # how each figure was obtained
    floor_rss_mb: float = 0.0  # the spawner's RSS at fork: ru_maxrss cannot read lower than this
    resources: ResourceSummary = field(default_factory=ResourceSummary)  # the Monitor's window alongside


def measure_command(argv: list[str], hz: float = 20.0) -> MeasureResult:
    """Run `argv` (inheriting stdin/stdout/stderr) to its end and measure it. Raises MeasureError if it
    cannot be started (not found, not executable)."""
    if not argv:
        raise MeasureError("no command to measure")
    read_end, write_end = os.pipe()
    spawner: subprocess.Popen | None = None
    try:
        with Monitor(lambda: [spawner.pid] if spawner else [], hz=hz, reset_hwm=False) as monitor:
            spawner = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", _SPAWNER, str(write_end), *argv], pass_fds=(write_end,)
            )
            os.close(write_end)
            write_end = -1
            spawner.wait()
        with os.fdopen(read_end, "rb") as pipe:
            read_end = -1
            raw = pipe.read()
    finally:
        for fd in (read_end, write_end):
            if fd >= 0:
                os.close(fd)
    if not raw:
        raise MeasureError(f"the measuring helper ended with {spawner.returncode} before reporting")
    report = json.loads(raw)
    _raise_for_exec_error(argv[0], report["exec_errno"])
    summary = monitor.summary
    method = {"peak_rss_mb": Measured.KERNEL, "cpu_s": Measured.KERNEL}
    method.update({name: summary.method[name] for name in GPU_AND_ENERGY if getattr(summary, name) is not None})
    return MeasureResult(
        argv=list(argv),
        wall_s=report["wall_s"],
        cpu_s=report["utime"] + report["stime"],
        peak_rss_mb=report["maxrss_kb"] * 1024 / 1e6,
        exit_code=os.waitstatus_to_exitcode(report["status"]),
        method=method,
        floor_rss_mb=report["spawner_rss_kb"] * 1024 / 1e6,
        resources=summary,
    )


def _raise_for_exec_error(command: str, code: int) -> None:
    if code == 0:
        return
    if code == errno.ENOENT:
        raise MeasureError(f"command not found: {command}")
    if code == errno.EACCES:
        raise MeasureError(f"permission denied: {command} is not executable")
    raise MeasureError(f"cannot run {command}: {os.strerror(code)}")


def measure_result_dict(result: MeasureResult) -> dict:
    """The JSON of `sizeup measure --json`: wall_s, cpu_s, peak_rss_mb, exit_code, method (figure -> how
    it was obtained), and the GPU/energy figures that were measured on this machine."""
    out: dict = {
        "wall_s": result.wall_s,
        "cpu_s": result.cpu_s,
        "peak_rss_mb": result.peak_rss_mb,
        "exit_code": result.exit_code,
        "method": {name: how.value for name, how in result.method.items()},
    }
    for name in GPU_AND_ENERGY:
        value = getattr(result.resources, name)
        if value is not None:
            out[name] = value
    return out
