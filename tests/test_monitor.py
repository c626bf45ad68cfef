"""The monitor against real processes whose cost is known, and against /usr/bin/time -v."""

from __future__ import annotations

import re
import subprocess
import sys
import time

import psutil
import pytest

from sizeup.monitor import Monitor, process
from sizeup.records import Measured

HOLD_200MB = "import time; b = bytearray(200 * 1024 * 1024); time.sleep(1.0)"
BUSY_05S = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.5: pass"

# Programs that wait for a line on stdin before the measured part ("go"), print "done" after it, and then
# wait for stdin to close, so that they are still alive when the window closes.
SPIKE_IN_WINDOW = """
import sys, time
before = bytearray(300 * 1024 * 1024)  # a higher peak before the window: the reset must forget it
del before
print("ready", flush=True)
sys.stdin.readline()
spike = bytearray(200 * 1024 * 1024)
time.sleep(0.05)
del spike
print("done", flush=True)
sys.stdin.readline()
"""
SPIKE_200MB_ALONE = "import time\nspike = bytearray(200 * 1024 * 1024)\ntime.sleep(0.05)\ndel spike"
BUSY_1S_AFTER_GO = """
import sys, time
print("ready", flush=True)
sys.stdin.readline()
start = time.process_time()
while time.process_time() - start < 1.0: pass
print("done", flush=True)
sys.stdin.readline()
"""
PARENT_OF_BUSY_CHILD = f"""
import subprocess, sys
print("ready", flush=True)
sys.stdin.readline()
subprocess.run([sys.executable, "-c", {BUSY_05S!r}])
print("done", flush=True)
sys.stdin.readline()
"""
TWO_HOLDERS = """
import subprocess, sys
holder = "import sys; b = bytearray(100 * 1024 * 1024); print('ready', flush=True); sys.stdin.readline()"
child = subprocess.Popen([sys.executable, "-c", holder], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
child.stdout.readline()
mine = bytearray(50 * 1024 * 1024)
print("ready", flush=True)
sys.stdin.readline()
child.stdin.close()
child.wait()
"""


def _watch(code: str) -> tuple[Monitor, subprocess.Popen]:
    proc = subprocess.Popen([sys.executable, "-c", code])
    with Monitor([proc.pid], hz=20) as monitor:
        proc.wait()
        time.sleep(0.05)
    return monitor, proc


def _watch_go(code: str, hz: float = 20) -> Monitor:
    """Start `code`, open a window, say go, close the window at "done", then let the program end."""
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        with Monitor([proc.pid], hz=hz) as monitor:
            proc.stdin.write("go\n")
            proc.stdin.flush()
            assert proc.stdout.readline().strip() == "done"
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
    return monitor


def test_peak_memory_of_a_held_allocation():
    monitor, _ = _watch(HOLD_200MB)
    assert 200 <= monitor.summary.peak_rss_mb <= 240  # bytearray is touched, so all of it is resident
    # The process ended inside the window, so its kernel mark was gone before it could be read.
    assert monitor.summary.method["peak_rss_mb"] is Measured.SAMPLED
    assert monitor.summary.samples >= 10


@pytest.mark.usefixtures("gnu_time")
def test_kernel_peak_of_a_50ms_spike_matches_time_v():
    monitor = _watch_go(SPIKE_IN_WINDOW)
    out = subprocess.run(
        ["/usr/bin/time", "-v", sys.executable, "-c", SPIKE_200MB_ALONE], capture_output=True, text=True, check=True
    ).stderr
    reference = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", out).group(1)) * 1024 / 1e6
    summary = monitor.summary
    assert summary.method["peak_rss_mb"] is Measured.KERNEL
    # Within 5 %: neither the 300 MB peak before the window (reset) nor a missed spike (sampling) shows.
    assert summary.peak_rss_mb == pytest.approx(reference, rel=0.05)
    assert summary.sampled_peak_rss_mb <= summary.peak_rss_mb  # 20 Hz polling may or may not see the spike


def test_cpu_seconds_come_from_kernel_counters():
    summary = _watch_go(BUSY_1S_AFTER_GO).summary
    assert summary.cpu_s == pytest.approx(1.0, rel=0.05)
    assert summary.method["cpu_s"] is Measured.KERNEL
    # One busy thread: at most one core, give or take one 10 ms clock tick of the kernel's counters (seen: 100.9).
    assert 20 < summary.mean_cpu_pct <= 100 * (1 + 0.01 / summary.wall_s)


def test_a_child_reaped_by_a_watched_parent_is_counted_once():
    # Its CPU shows first in its own counters, then in its parent's children counters once reaped.
    summary = _watch_go(PARENT_OF_BUSY_CHILD).summary
    assert summary.processes >= 2
    assert 0.45 <= summary.cpu_s <= 0.75  # counted twice it would be >= 1.0


def test_children_of_the_watched_process_are_counted():
    code = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {HOLD_200MB!r}])"
    monitor, _ = _watch(code)
    assert monitor.summary.processes >= 2
    assert monitor.summary.peak_rss_mb >= 200


def test_several_live_processes_report_the_sum_of_their_marks():
    proc = subprocess.Popen(
        [sys.executable, "-c", TWO_HOLDERS], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "ready"
        with Monitor([proc.pid]) as monitor:
            time.sleep(0.2)
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
    summary = monitor.summary
    assert summary.processes == 2
    assert summary.method["peak_rss_mb"] is Measured.KERNEL_SUM
    assert 157 <= summary.peak_rss_mb <= 200  # 105 + 52 MB held, plus two interpreters
    assert summary.sampled_peak_rss_mb <= summary.peak_rss_mb


def test_the_tree_from_proc_matches_psutil():
    code = "import subprocess, sys, time; subprocess.run([sys.executable, '-c', 'import time; time.sleep(5)'])"
    proc = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 10
        while len(psutil.Process(proc.pid).children(recursive=True)) < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        expected = {proc.pid, *(child.pid for child in psutil.Process(proc.pid).children(recursive=True))}
        found = process.tree([proc.pid])
        assert set(found) == expected and len(expected) == 2
        assert found[proc.pid] is None and set(found.values()) == {None, proc.pid}
    finally:
        for child in psutil.Process(proc.pid).children(recursive=True):
            child.kill()
        proc.kill()
        proc.wait()


def test_nothing_to_watch_is_not_measurable_not_zero_cost():
    with Monitor(lambda: []) as monitor:
        time.sleep(0.05)
    assert monitor.summary.method["cpu_s"] is Measured.NOT_MEASURABLE
    assert monitor.summary.wall_s >= 0.05
