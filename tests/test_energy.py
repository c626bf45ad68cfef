"""Energy and GPU arithmetic on recorded readings (shaped as RAPL and NVML return them), and what the
monitor says on a machine that has neither (this one: a VM without powercap, and no GPU)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from sizeup.monitor import Monitor
from sizeup.monitor.energy import RaplMeter, counter_advance, energy_over_readings_j, package_zones
from sizeup.monitor.gpu import GpuReading, GpuWindow, Nvml, energy_delta_j, watched_bytes
from sizeup.records import Measured

MAX_UJ = 262_143_328_850  # a real package's max_energy_range_uj


def test_rapl_counter_advance_and_wraparound():
    assert counter_advance(1_000, 4_000, MAX_UJ) == 3_000
    assert counter_advance(MAX_UJ - 500, 700, MAX_UJ) == 1_200  # wrapped once between the readings
    assert counter_advance(5, 5, MAX_UJ) == 0


def test_rapl_energy_over_a_sequence_with_a_wrap_on_one_of_two_packages():
    readings = [
        [MAX_UJ - 2_000_000, 10_000_000],
        [MAX_UJ - 1_000_000, 12_000_000],
        [3_000_000, 14_000_000],  # package 0 wraps here
        [5_000_000, 16_000_000],
    ]
    # package 0: 1 + 4 + 2 J; package 1: 2 + 2 + 2 J
    assert energy_over_readings_j(readings, [MAX_UJ, MAX_UJ]) == pytest.approx(13.0)
    assert energy_over_readings_j(readings[:1], [MAX_UJ, MAX_UJ]) == 0.0


def _zone(root: Path, name: str, label: str, energy_uj: int) -> None:
    zone = root / name
    zone.mkdir()
    (zone / "name").write_text(label + "\n")
    (zone / "energy_uj").write_text(f"{energy_uj}\n")
    (zone / "max_energy_range_uj").write_text(f"{MAX_UJ}\n")


def test_rapl_reads_package_zones_only(tmp_path):
    _zone(tmp_path, "intel-rapl:0", "package-0", MAX_UJ - 1_000_000)
    _zone(tmp_path, "intel-rapl:0:0", "core", 5)  # inside package 0
    _zone(tmp_path, "intel-rapl:1", "package-1", 0)
    _zone(tmp_path, "intel-rapl:2", "psys", 0)  # contains the packages
    _zone(tmp_path, "intel-rapl-mmio:0", "package-0", 0)  # the same package read through MMIO
    assert [zone.name for zone in package_zones(tmp_path)] == ["package-0", "package-1"]
    meter = RaplMeter.start(tmp_path)
    (tmp_path / "intel-rapl:0" / "energy_uj").write_text("2000000\n")  # wrapped: +3 J
    (tmp_path / "intel-rapl:1" / "energy_uj").write_text("500000\n")  # +0.5 J
    meter.update()
    assert meter.result_j() == pytest.approx(3.5)
    (tmp_path / "intel-rapl:1" / "energy_uj").unlink()  # unreadable mid-window: no partial figure
    meter.update()
    assert meter.result_j() is None


def test_nvml_energy_delta_sums_gpus_and_drops_resets():
    assert energy_delta_j([1_000, 50_000], [3_500, 52_000]) == pytest.approx(4.5)  # mJ -> J
    assert energy_delta_j([1_000, 50_000], [3_500, 10]) is None  # GPU 1 counter reset (driver reload)
    assert energy_delta_j([1_000, None], [3_500, None]) is None  # GPU 1 has no counter: no partial sum
    assert energy_delta_j([], []) is None


def test_nvml_per_process_memory_of_watched_pids():
    listed = {100: 300_000_000, 200: 50_000_000, 999: 7_000_000_000}
    assert watched_bytes(listed, [100, 200, 300]) == 350_000_000  # 300 holds no GPU memory; 999 isn't ours
    assert watched_bytes({100: None}, [100]) is None  # NVML can't tell (MIG, rights)
    assert watched_bytes(listed, [1]) == 0


def test_gpu_window_over_recorded_readings():
    readings = [
        GpuReading((10_000, 20_000), (1_000_000_000, 2_000_000_000), (0.0, 10.0), {}),
        GpuReading((15_000, 21_000), (3_000_000_000, 2_000_000_000), (90.0, 10.0), {42: 2_000_000_000}),
        GpuReading((30_000, 22_000), (2_000_000_000, 2_000_000_000), (70.0, None), {42: 1_000_000_000}),
    ]
    window = GpuWindow(readings[0])
    for reading in readings[1:]:
        window.add(reading, [42])
    window.add(GpuReading((), (1_000_000_000, 2_000_000_000), (70.0, None), {}), [42])  # energy not read
    figures = window.figures()
    assert figures["gpu_mem_mb"] == pytest.approx(2_000)
    assert figures["gpu_total_mem_mb"] == pytest.approx(5_000)
    assert figures["gpu_util_pct"] == pytest.approx((50.0 + 70.0 + 70.0) / 3)
    assert figures["gpu_energy_j"] == pytest.approx(22.0)  # (30000-10000) + (22000-20000) mJ


class _RecordedNvml:
    """Replays a recorded H200 reading, its energy counter advancing 500 mJ a reading; counts the calls."""

    def __init__(self):
        self.reads = self.energy_reads = self.util_reads = 0

    def read(self, energy_too: bool = True, util_too: bool = True) -> GpuReading:
        self.reads += 1
        self.energy_reads += energy_too
        self.util_reads += util_too
        energy = (1_000_000 + 500 * self.reads,) if energy_too else ()
        return GpuReading(energy, (10_523_377_664,), (60.0,) if util_too else (), {})


def test_costly_nvml_figures_are_read_sparingly(monkeypatch):
    recorded = _RecordedNvml()
    monkeypatch.setattr(Nvml, "get", classmethod(lambda cls: recorded))
    with Monitor(lambda: [], hz=50) as monitor:
        time.sleep(1.2)
    assert recorded.reads >= 30  # memory at every sample
    assert recorded.energy_reads == 2  # the window's two ends
    assert 3 <= recorded.util_reads <= 5  # twice a second, and at the end
    assert monitor.summary.gpu_util_pct == pytest.approx(60.0)
    assert monitor.summary.gpu_energy_j == pytest.approx(0.5 * (recorded.reads - 1))  # first to last reading
    assert monitor.summary.gpu_total_mem_mb == pytest.approx(10_523.377664)


GPU_FIGURES = ("gpu_mem_mb", "gpu_total_mem_mb", "gpu_util_pct", "gpu_energy_j")


def _window() -> Monitor:
    with Monitor(lambda: []) as monitor:
        time.sleep(0.1)
    return monitor


@pytest.mark.skipif(Nvml.get() is not None or RaplMeter.start() is not None, reason="this machine has NVML or RAPL")
def test_without_nvml_or_rapl_the_figures_are_not_measurable_and_nothing_raises():
    summary = _window().summary
    for name in (*GPU_FIGURES, "cpu_energy_j"):
        assert getattr(summary, name) is None
        assert summary.method[name] is Measured.NOT_MEASURABLE


@pytest.mark.skipif(Nvml.get() is None, reason="no NVIDIA GPU or driver here")
def test_with_a_gpu_its_figures_are_read():
    summary = _window().summary
    assert summary.gpu_total_mem_mb > 0 and summary.method["gpu_total_mem_mb"] is Measured.SAMPLED
    assert summary.gpu_mem_mb == 0  # nothing watched holds GPU memory
    assert summary.gpu_util_pct is not None
    if summary.gpu_energy_j is not None:  # Volta and later
        assert summary.gpu_energy_j >= 0 and summary.method["gpu_energy_j"] is Measured.COUNTER


@pytest.mark.skipif(RaplMeter.start() is None, reason="no readable RAPL package zones here")
def test_with_rapl_cpu_energy_is_read():
    summary = _window().summary
    assert summary.cpu_energy_j > 0 and summary.method["cpu_energy_j"] is Measured.COUNTER
