"""Resource accounting of the model-server processes during a window (one side of one task).

CPU seconds come from the kernel's counters (utime+stime deltas of each process, children included
once they are reaped), not from averaged percentages. Peak memory is the peak of the summed RSS of the
process tree, sampled by a thread (default 20 Hz); it is a lower bound for spikes shorter than the
sampling period, and is marked as sampled.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import psutil

from sizeup.records import Measured, ResourceSummary


def _tree(pids: list[int]) -> dict[int, psutil.Process]:
    procs: dict[int, psutil.Process] = {}
    for pid in pids:
        try:
            root = psutil.Process(pid)
            for proc in [root, *root.children(recursive=True)]:
                procs[proc.pid] = proc
        except psutil.Error:
            continue
    return procs


def _cpu_seconds(proc: psutil.Process) -> float | None:
    try:
        t = proc.cpu_times()
        return t.user + t.system + t.children_user + t.children_system
    except psutil.Error:
        return None


class Monitor:
    """Use as a context manager around the work; read `.summary` afterwards."""

    def __init__(self, pids: Callable[[], list[int]] | list[int], hz: float = 20.0):
        self._pids = pids if callable(pids) else (lambda: list(pids))
        self._period = 1.0 / hz
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sizeup-monitor", daemon=True)
        self._cpu_start: dict[int, float] = {}
        self._cpu_last: dict[int, float] = {}
        self._procs: dict[int, psutil.Process] = {}
        self._peak_rss = 0
        self._peak_cpu_pct = 0.0
        self._samples = 0
        self.summary = ResourceSummary()

    def __enter__(self) -> Monitor:
        self._started = time.perf_counter()
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
        wall = time.perf_counter() - self._started
        cpu = sum(max(0.0, self._cpu_last[pid] - self._cpu_start[pid]) for pid in self._cpu_last)
        measured = bool(self._procs)
        self.summary = ResourceSummary(
            wall_s=wall, cpu_s=cpu, peak_rss_mb=self._peak_rss / 1e6,
            mean_cpu_pct=100.0 * cpu / wall if wall > 0 else 0.0, peak_cpu_pct=self._peak_cpu_pct,
            processes=len(self._procs), samples=self._samples,
            method={"cpu_s": Measured.KERNEL if measured else Measured.NOT_MEASURABLE,
                    "peak_rss_mb": Measured.SAMPLED if measured else Measured.NOT_MEASURABLE})

    def _run(self) -> None:
        last_t, last_cpu = time.perf_counter(), 0.0
        while not self._stop.wait(self._period):
            total_cpu = self._sample()
            now = time.perf_counter()
            if self._samples > 2 and now > last_t:
                self._peak_cpu_pct = max(self._peak_cpu_pct, 100.0 * (total_cpu - last_cpu) / (now - last_t))
            last_t, last_cpu = now, total_cpu

    def _sample(self) -> float:
        rss = 0
        for pid, proc in _tree(self._pids()).items():
            self._procs.setdefault(pid, proc)
            try:
                rss += proc.memory_info().rss
            except psutil.Error:
                continue
            cpu = _cpu_seconds(proc)
            if cpu is not None:
                self._cpu_start.setdefault(pid, cpu)
                self._cpu_last[pid] = cpu
        self._peak_rss = max(self._peak_rss, rss)
        self._samples += 1
        return sum(self._cpu_last[pid] - self._cpu_start[pid] for pid in self._cpu_last)
