"""Print sizeup's figures beside /usr/bin/time -v's for the programs of tests/test_measure.py and
tests/test_monitor.py, repeated, including the 20 Hz sampled peak that the tests don't assert on.

    python tests/spikes/accuracy_report.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sizeup.monitor import measure_command  # noqa: E402
from test_measure import BUSY_1S, SPIKE, time_v_max_rss_mb  # noqa: E402
from test_monitor import BUSY_1S_AFTER_GO, SPIKE_200MB_ALONE, SPIKE_IN_WINDOW, _watch_go  # noqa: E402


def spread(values: list[float]) -> str:
    return f"median {statistics.median(values):8.2f}  [{min(values):.2f} .. {max(values):.2f}]"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    n = parser.parse_args().repeat
    print(f"peak RSS, MB (1e6 bytes), {n} runs each")
    for mb, hold in ((50, 0.05), (200, 0.05), (500, 0.05), (300, 2.0)):
        argv = [sys.executable, "-c", SPIKE, str(mb), str(hold)]
        ours = [measure_command(argv).peak_rss_mb for _ in range(n)]
        theirs = [time_v_max_rss_mb(argv) for _ in range(n)]
        error = [100 * (a / b - 1) for a, b in zip(ours, theirs, strict=True)]
        print(
            f"  {mb} MB for {hold} s  measure_command {spread(ours)}  time -v {spread(theirs)}  error % {spread(error)}"
        )
    reference = [time_v_max_rss_mb([sys.executable, "-c", SPIKE_200MB_ALONE]) for _ in range(n)]
    print(f"  time -v, 200 MB held 50 ms: {spread(reference)}")
    for hold in ("0.05", "0.01", "0"):
        kernel, sampled = [], []
        for _ in range(n):
            summary = _watch_go(SPIKE_IN_WINDOW.replace("time.sleep(0.05)", f"time.sleep({hold})")).summary
            kernel.append(summary.peak_rss_mb)
            sampled.append(summary.sampled_peak_rss_mb)
        print(
            f"  Monitor, 200 MB held {hold} s after the fill, live process: kernel HWM {spread(kernel)}  "
            f"20 Hz sampled {spread(sampled)}"
        )
    print("CPU seconds of a 1.0 s busy loop")
    print(f"  measure_command {spread([measure_command([sys.executable, '-c', BUSY_1S]).cpu_s for _ in range(n)])}")
    print(f"  Monitor         {spread([_watch_go(BUSY_1S_AFTER_GO).summary.cpu_s for _ in range(n)])}")
    out = subprocess.run(
        ["/usr/bin/time", "-f", "%U %S", sys.executable, "-c", BUSY_1S], capture_output=True, text=True
    ).stderr.split()
    print(f"  time -f '%U %S' (one run): {float(out[-2]) + float(out[-1]):.2f}")


if __name__ == "__main__":
    main()
