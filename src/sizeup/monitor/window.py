"""Resource accounting of a process tree (the model server's) over a window: one side of one task.

* CPU seconds: deltas of the kernel's utime+stime of each process, reaped children included through their
  parent's counters (a child reaped by a watched parent is then not counted a second time).
* Peak RSS: the kernel's high-water mark. At window start each process's VmHWM is reset to its current
  RSS (clear_refs), at window end it is read, so a spike that no poller sees is still counted. For one
  process that is exact (Measured.KERNEL). For several, the sum of their marks is reported: an upper bound,
  as their peaks need not coincide (Measured.KERNEL_SUM); the sampled peak of the summed RSS, a lower
  bound, is kept beside it in `sampled_peak_rss_mb`. If a mark is missing (the reset was refused, or a
  process ended before the window did) the sampled peak is reported instead (Measured.SAMPLED).
* A sampler thread (default 20 Hz) finds processes that join the tree, gives peak CPU %, the fallback
  peak, and the GPU memory and utilisation; RAPL/NVML energy are counter deltas over the window (NVML's
  counter is read at the window's ends only, utilisation at most twice a second: see gpu.py).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sizeup.monitor import process
from sizeup.monitor.energy import RaplMeter
from sizeup.monitor.gpu import GpuWindow, Nvml
from sizeup.records import Measured, ResourceSummary

MB = 1e6
UTIL_PERIOD_S = 0.5  # NVML's utilisation is already an average over up to 1 s: no use reading it faster


@dataclass
class _Watched:
    start_ticks: int  # a pid whose start time changes has been reused by another process
    parent: int | None
    hwm_window_only: bool  # its VmHWM covers this window alone: reset at the start, or born inside it
    cpu_first: float
    cpu_last: float
    gone: bool = False
    absorbed: bool = False  # reaped by a watched parent, whose children counters now include its CPU

    @property
    def cpu_s(self) -> float:
        return 0.0 if self.absorbed else max(0.0, self.cpu_last - self.cpu_first)


class Monitor:
    """Use as a context manager around the work; read `.summary` afterwards.

    `reset_hwm=False` leaves the processes' high-water marks alone (the peak is then sampled): needed when
    someone else reads the same processes' ru_maxrss through wait4, which a reset would lower.
    `descendants=False` watches the given processes alone, not their children: for a shared parent whose
    children are measured apart (`ollama serve`, whose runners are the models').
    `sampler_cpu_s` is the CPU time the sampler thread itself used, for its overhead.
    """

    def __init__(
        self,
        pids: Callable[[], list[int]] | list[int],
        hz: float = 20.0,
        *,
        reset_hwm: bool = True,
        gpu: bool = True,
        cpu_energy: bool = True,
        descendants: bool = True,
        on_tick: Callable[[float, float], None] | None = None,
        tick_s: float = 1.0,
    ):
        if hz <= 0:
            raise ValueError(f"hz must be positive, not {hz}")
        self._pids = pids if callable(pids) else (lambda: list(pids))
        self._period = 1.0 / hz
        self._util_last = float("-inf")
        self._reset_hwm = reset_hwm
        self._descendants = descendants
        # Called from the sampler thread every `tick_s` with (CPU % since the last tick, current RSS in MB).
        self._on_tick, self._tick_s = on_tick, tick_s
        self._last_rss = 0
        self._want_gpu, self._want_rapl = gpu, cpu_energy
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sizeup-monitor", daemon=True)
        self._watched: dict[int, _Watched] = {}
        self._peak_rss = 0
        self._peak_cpu_pct = 0.0
        self._samples = 0
        self._window_start_ticks = 0.0
        self._nvml: Nvml | None = None
        self._gpu: GpuWindow | None = None
        self._rapl: RaplMeter | None = None
        self.sampler_cpu_s = 0.0
        self.summary = ResourceSummary()

    def __enter__(self) -> Monitor:
        self._window_start_ticks = process.boottime_ticks()
        self._nvml = Nvml.get() if self._want_gpu else None
        self._rapl = RaplMeter.start() if self._want_rapl else None
        self._started = time.perf_counter()
        self._sample(edge=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample(edge=True)
        wall = time.perf_counter() - self._started
        marks = {
            pid: process.peak_rss_bytes(pid) if w.hwm_window_only and not w.gone else None
            for pid, w in self._watched.items()
        }
        self.summary = self._summarise(wall, marks)

    def _run(self) -> None:
        thread_cpu_start = time.thread_time()
        last_t, last_cpu = time.perf_counter(), 0.0
        tick_t, tick_cpu = last_t, 0.0
        while not self._stop.wait(self._period):
            total_cpu = self._sample()
            now = time.perf_counter()
            if self._samples > 2 and now > last_t:
                self._peak_cpu_pct = max(self._peak_cpu_pct, 100.0 * (total_cpu - last_cpu) / (now - last_t))
            last_t, last_cpu = now, total_cpu
            if self._on_tick is not None and now - tick_t >= self._tick_s:  # a live view's sample, once a second
                self._on_tick(100.0 * (total_cpu - tick_cpu) / (now - tick_t), self._last_rss / MB)
                tick_t, tick_cpu = now, total_cpu
        self.sampler_cpu_s = time.thread_time() - thread_cpu_start

    def _join(self, pid: int, parent: int | None) -> _Watched | None:
        stat = process.read_stat(pid)
        if stat is None:
            return None
        # A process already running when the window opened carries its earlier peak: reset it. One born
        # inside the window (exec and fork both start a fresh mark) is left alone, or its first peak is lost.
        older = self._samples == 0 or stat.start_ticks < self._window_start_ticks
        window_only = process.reset_peak_rss(pid) if older and self._reset_hwm else not older
        # Likewise all the CPU time of one born inside the window is the window's, seen or not before now.
        cpu_first = stat.cpu_s if older else 0.0
        return _Watched(stat.start_ticks, parent, window_only, cpu_first=cpu_first, cpu_last=stat.cpu_s)

    def _sample(self, edge: bool = False) -> float:
        """One reading of everything; `edge` at the window's start and end, where the energy counters go."""
        # Called by the caller's thread at enter and exit, by the sampler only in between: never at once.
        roots = self._pids()
        found = process.tree(roots) if self._descendants else dict.fromkeys(roots)
        for pid, parent in found.items():
            watched = self._watched.get(pid)
            if watched is None:
                joined = self._join(pid, parent)
                if joined is not None:
                    self._watched[pid] = joined
            elif not watched.gone:
                watched.parent = parent
        rss, newly_gone = 0, []
        for pid, watched in self._watched.items():
            if watched.gone:
                continue
            stat = process.read_stat(pid)
            if stat is None or stat.start_ticks != watched.start_ticks:  # reaped since the last sample
                watched.gone = True
                newly_gone.append(watched)
                continue
            rss += stat.rss_bytes
            watched.cpu_last = stat.cpu_s
            if pid not in found:  # alive but out of the tree (its parent died): nobody watched reaps it
                watched.parent = None
        for watched in newly_gone:
            parent = self._watched.get(watched.parent) if watched.parent is not None else None
            watched.absorbed = parent is not None and not parent.gone
        self._peak_rss = max(self._peak_rss, rss)
        self._last_rss = rss
        if self._nvml is not None:
            now = time.perf_counter()
            util_too = edge or now - self._util_last >= UTIL_PERIOD_S
            self._util_last = now if util_too else self._util_last
            reading = self._nvml.read(energy_too=edge, util_too=util_too)
            if self._gpu is None:  # the window's first reading: its energy counter is the start
                self._gpu = GpuWindow(reading)
            self._gpu.add(reading, [pid for pid, w in self._watched.items() if not w.gone])
        if self._rapl is not None:
            self._rapl.update()
        self._samples += 1
        return sum(w.cpu_s for w in self._watched.values())

    def _summarise(self, wall: float, marks: dict[int, int | None]) -> ResourceSummary:
        watched = self._watched
        cpu = sum(w.cpu_s for w in watched.values())
        method: dict[str, Measured] = {}
        if not watched:
            peak, method["cpu_s"], method["peak_rss_mb"] = 0, Measured.NOT_MEASURABLE, Measured.NOT_MEASURABLE
        elif all(mark is not None for mark in marks.values()):
            peak = max(self._peak_rss, sum(marks.values()))  # type: ignore[arg-type]
            method["cpu_s"] = Measured.KERNEL
            method["peak_rss_mb"] = Measured.KERNEL if len(marks) == 1 else Measured.KERNEL_SUM
        else:
            peak, method["cpu_s"], method["peak_rss_mb"] = self._peak_rss, Measured.KERNEL, Measured.SAMPLED
        figures: dict[str, float | None] = dict.fromkeys(
            ("gpu_mem_mb", "gpu_total_mem_mb", "gpu_util_pct", "gpu_energy_j"), None
        )
        if self._gpu is not None:
            figures.update(self._gpu.figures())
        figures["cpu_energy_j"] = self._rapl.result_j() if self._rapl is not None else None
        for name, value in figures.items():
            if value is None:
                method[name] = Measured.NOT_MEASURABLE
            else:
                method[name] = Measured.COUNTER if name.endswith("energy_j") else Measured.SAMPLED
        return ResourceSummary(
            wall_s=wall,
            cpu_s=cpu,
            peak_rss_mb=peak / MB,
            sampled_peak_rss_mb=self._peak_rss / MB,
            mean_cpu_pct=100.0 * cpu / wall if wall > 0 else 0.0,
            peak_cpu_pct=self._peak_cpu_pct,
            processes=len(watched),
            samples=self._samples,
            method=method,
            **figures,
        )
