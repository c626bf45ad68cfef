"""`measure_command` against /usr/bin/time -v on the same real programs: peak RSS, CPU, exit codes."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from sizeup.monitor import MeasureError, measure_command, measure_result_dict
from sizeup.monitor.energy import RaplMeter
from sizeup.monitor.gpu import Nvml
from sizeup.records import Measured

# Allocate N MiB, hold it, free it. bytearray(n) zero-fills with memset, which makes every page resident;
# writing one byte per page as well keeps it so even if an allocator ever handed back untouched zero pages.
SPIKE = """
import sys, time
n = int(sys.argv[1]) * 1024 * 1024
block = bytearray(n)
block[::4096] = b"x" * len(range(0, n, 4096))
time.sleep(float(sys.argv[2]))
del block
"""
BUSY_1S = "import time\nwhile time.process_time() < 1.0: pass"

needs_time = pytest.mark.usefixtures("gnu_time")  # skips without it, fails in CI (SIZEUP_REQUIRE_TIME)


def time_v_max_rss_mb(argv: list[str]) -> float:
    """What GNU time reports as the maximum RSS (KiB), in MB (1e6 bytes) like sizeup."""
    out = subprocess.run(["/usr/bin/time", "-v", *argv], capture_output=True, text=True, check=True).stderr
    return int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", out).group(1)) * 1024 / 1e6


@needs_time
@pytest.mark.parametrize("mb", [50, 200, 500])
def test_peak_of_a_50ms_spike_matches_time_v(mb):
    argv = [sys.executable, "-c", SPIKE, str(mb), "0.05"]
    reference = time_v_max_rss_mb(argv)
    result = measure_command(argv)
    assert reference > mb * 1.048  # the spike really was resident (MiB -> MB)
    assert result.peak_rss_mb == pytest.approx(reference, rel=0.05)
    assert result.method["peak_rss_mb"] is Measured.KERNEL
    assert result.exit_code == 0


@needs_time
def test_peak_of_a_held_allocation_matches_time_v():
    argv = [sys.executable, "-c", SPIKE, "300", "2.0"]
    # Both hold 300 MB for 2 s: run them side by side to keep the suite short.
    reference = subprocess.Popen(["/usr/bin/time", "-v", *argv], stderr=subprocess.PIPE, text=True)
    result = measure_command(argv)
    stderr = reference.communicate()[1]
    reference_mb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", stderr).group(1)) * 1024 / 1e6
    assert result.peak_rss_mb == pytest.approx(reference_mb, rel=0.05)
    assert result.wall_s >= 2.0


def test_cpu_seconds_of_a_busy_loop():
    result = measure_command([sys.executable, "-c", BUSY_1S])
    assert result.cpu_s == pytest.approx(1.0, rel=0.05)
    assert result.method["cpu_s"] is Measured.KERNEL
    assert result.wall_s >= 0.95


def test_cpu_of_children_the_command_waited_for_is_included():
    busy = "import time\nwhile time.process_time() < 0.3: pass"
    child = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {busy!r}])"
    result = measure_command([sys.executable, "-c", child])
    assert 0.3 <= result.cpu_s <= 0.5  # the child's 0.3 s and the parent's start-up; without it, < 0.1


def test_exit_codes_propagate():
    assert measure_command([sys.executable, "-c", "import sys; sys.exit(3)"]).exit_code == 3
    assert measure_command(["sh", "-c", "kill -9 $$"]).exit_code == -9


def test_a_missing_command_is_a_clear_error():
    with pytest.raises(MeasureError, match="command not found: no-such-command-here"):
        measure_command(["no-such-command-here", "--flag"])
    with pytest.raises(MeasureError, match="no command"):
        measure_command([])


def test_the_spawner_keeps_the_floor_small():
    # A child's ru_maxrss starts at the RSS of whoever forked it: from sizeup (~100 MB) `true` would
    # read ~100 MB. From the tiny spawner it reads well under 20 MB.
    result = measure_command(["true"])
    assert result.peak_rss_mb < 20
    assert result.floor_rss_mb < 20


def test_json_keys():
    data = measure_result_dict(measure_command(["true"]))
    assert {"wall_s", "cpu_s", "peak_rss_mb", "exit_code", "method"} <= set(data)
    assert data["method"]["peak_rss_mb"] == "kernel"
    # GPU and energy keys appear only where they were measured: none at all on a machine without either.
    extra = set(data) - {"wall_s", "cpu_s", "peak_rss_mb", "exit_code", "method"}
    if Nvml.get() is None and RaplMeter.start() is None:
        assert extra == set()
    assert all(data["method"][key] in ("sampled", "counter") for key in extra)
