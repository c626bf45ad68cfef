"""GPU memory, utilisation and energy from NVML (`nvidia-ml-py`), where a GPU and its driver are present.

Per-process GPU memory is read for the watched pids (NVML lists compute processes by host pid); used
memory, utilisation and energy are whole-GPU figures, summed (memory, energy) or averaged (utilisation)
over every GPU that NVML sees. Energy is the delta of the cumulative counter
(nvmlDeviceGetTotalEnergyConsumption, mJ, Volta and later), not integrated power: NVML's power reading is a
one-second average on recent GPUs. A negative delta means the counter was reset (driver reload): that
window's energy is dropped, not guessed. Without NVML every figure is None and nothing raises.

The energy counter is read only at a window's two ends: on an H200 (driver 580) that one call costs ~4.3 ms
of CPU, against 0.01 ms for memory or processes and 0.05–0.5 ms for utilisation; at 20 Hz it alone took
~9 % of a core, and a cumulative counter needs no more than its two ends. Utilisation is read at most
twice a second: NVML's figure is itself an average over its last sample period (1/6 s to 1 s by GPU).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

MB = 1e6


@dataclass(frozen=True)
class GpuReading:
    """One reading of every GPU, as NVML returns it."""

    energy_mj: tuple[int | None, ...]  # cumulative counter per GPU; None where the GPU has none; () if not read
    used_bytes: tuple[int | None, ...]  # used memory per GPU, every process
    util_pct: tuple[float | None, ...]  # utilisation per GPU over NVML's last sample period; () if not read
    process_bytes: Mapping[int, int | None] = field(default_factory=dict)  # pid -> bytes summed over GPUs


def energy_delta_j(start: Sequence[int | None], end: Sequence[int | None]) -> float | None:
    """Joules between two readings, summed over GPUs. None if a GPU has no counter (a partial sum would
    pass for the whole) or went backwards (a reset: what it counted in this window is unknown)."""
    if not start or len(start) != len(end):
        return None
    deltas = [None if a is None or b is None else b - a for a, b in zip(start, end, strict=True)]
    if any(delta is None or delta < 0 for delta in deltas):
        return None
    return sum(deltas) / 1000.0  # type: ignore[arg-type]


def watched_bytes(process_bytes: Mapping[int, int | None], pids: Iterable[int]) -> int | None:
    """GPU memory of the watched processes that hold any; None if NVML can't tell for one of them (it
    reports no per-process figure under MIG or without the rights)."""
    total = 0
    for pid in pids:
        if pid in process_bytes:
            used = process_bytes[pid]
            if used is None:
                return None
            total += used
    return total


def total_bytes(used: Sequence[int | None]) -> int | None:
    return None if not used or any(u is None for u in used) else sum(used)  # type: ignore[arg-type]


def mean_util_pct(util: Sequence[float | None]) -> float | None:
    known = [u for u in util if u is not None]
    return sum(known) / len(known) if known else None


class GpuWindow:
    """Readings taken over one window, reduced to the summary's figures."""

    def __init__(self, first: GpuReading):
        self.first = first
        self.last_energy_mj = first.energy_mj
        self._peak_watched: int | None = None
        self._watched_known = True
        self._peak_total: int | None = None
        self._util: list[float] = []

    def add(self, reading: GpuReading, pids: Iterable[int]) -> None:
        if reading.energy_mj:
            self.last_energy_mj = reading.energy_mj
        watched = watched_bytes(reading.process_bytes, pids)
        if watched is None:
            self._watched_known = False
        else:
            self._peak_watched = max(self._peak_watched or 0, watched)
        total = total_bytes(reading.used_bytes)
        if total is not None:
            self._peak_total = max(self._peak_total or 0, total)
        util = mean_util_pct(reading.util_pct)
        if util is not None:
            self._util.append(util)

    def figures(self) -> dict[str, float | None]:
        return {
            "gpu_mem_mb": self._peak_watched / MB if self._watched_known and self._peak_watched is not None else None,
            "gpu_total_mem_mb": self._peak_total / MB if self._peak_total is not None else None,
            "gpu_util_pct": sum(self._util) / len(self._util) if self._util else None,
            "gpu_energy_j": energy_delta_j(self.first.energy_mj, self.last_energy_mj),
        }


class Nvml:
    """NVML, initialised once per sizeup process (nvmlInit is slow) and kept; None where it is absent."""

    _opened: Nvml | None = None
    _tried = False

    def __init__(self, pynvml, handles: list):
        self._nvml = pynvml
        self._handles = handles

    @classmethod
    def get(cls) -> Nvml | None:
        if not cls._tried:
            cls._tried = True
            cls._opened = cls._open()
        return cls._opened

    @staticmethod
    def _open() -> Nvml | None:
        try:
            import pynvml

            pynvml.nvmlInit()
            handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
        except Exception:  # no package, no libnvidia-ml, no driver, no GPU: all mean "not measurable"
            return None
        return Nvml(pynvml, handles) if handles else None

    def read(self, energy_too: bool = True, util_too: bool = True) -> GpuReading:
        energy, used, util = [], [], []
        processes: dict[int, int | None] = {}
        for handle in self._handles:
            if energy_too:
                energy.append(self._call(self._nvml.nvmlDeviceGetTotalEnergyConsumption, handle))
            memory = self._call(self._nvml.nvmlDeviceGetMemoryInfo, handle)
            used.append(memory.used if memory is not None else None)
            if util_too:
                rates = self._call(self._nvml.nvmlDeviceGetUtilizationRates, handle)
                util.append(float(rates.gpu) if rates is not None else None)
            for proc in self._call(self._nvml.nvmlDeviceGetComputeRunningProcesses, handle) or []:
                before = processes.get(proc.pid, 0)
                mem = proc.usedGpuMemory  # None: NVML_VALUE_NOT_AVAILABLE
                processes[proc.pid] = None if before is None or mem is None else before + mem
        return GpuReading(tuple(energy), tuple(used), tuple(util), processes)

    def _call(self, function, handle):
        try:
            return function(handle)
        except self._nvml.NVMLError:  # NOT_SUPPORTED on this GPU, or GPU lost: that figure only is missing
            return None
