"""The monitor against processes whose cost is known."""

from __future__ import annotations

import subprocess
import sys
import time

from sizeup.monitor import Monitor
from sizeup.records import Measured

HOLD_200MB = "import time; b = bytearray(200 * 1024 * 1024); time.sleep(1.0)"
BUSY_05S = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.5: pass"


def _watch(code: str) -> tuple[Monitor, subprocess.Popen]:
    proc = subprocess.Popen([sys.executable, "-c", code])
    with Monitor([proc.pid], hz=20) as monitor:
        proc.wait()
        time.sleep(0.05)
    return monitor, proc


def test_peak_memory_of_a_held_allocation():
    monitor, _ = _watch(HOLD_200MB)
    assert 200 <= monitor.summary.peak_rss_mb <= 240  # bytearray is touched, so all of it is resident
    assert monitor.summary.method["peak_rss_mb"] is Measured.SAMPLED
    assert monitor.summary.samples >= 10


def test_cpu_seconds_come_from_kernel_counters():
    proc = subprocess.Popen([sys.executable, "-c", BUSY_05S + "\nimport time; time.sleep(0.3)"])
    with Monitor([proc.pid]) as monitor:
        proc.wait()
    # The last reading is taken while the process sleeps, before it exits and is reaped.
    assert 0.45 <= monitor.summary.cpu_s <= 0.8
    assert monitor.summary.method["cpu_s"] is Measured.KERNEL
    assert 20 < monitor.summary.mean_cpu_pct <= 100


def test_children_of_the_watched_process_are_counted():
    code = (f"import subprocess, sys; subprocess.run([sys.executable, '-c', {HOLD_200MB!r}])")
    monitor, _ = _watch(code)
    assert monitor.summary.processes >= 2
    assert monitor.summary.peak_rss_mb >= 200


def test_nothing_to_watch_is_not_measurable_not_zero_cost():
    with Monitor(lambda: []) as monitor:
        time.sleep(0.05)
    assert monitor.summary.method["cpu_s"] is Measured.NOT_MEASURABLE
    assert monitor.summary.wall_s >= 0.05
