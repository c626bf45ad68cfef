"""CPU package energy from RAPL's counters, where the machine exposes them; never estimated.

RAPL zones are hierarchical (psys contains the packages, a package contains core/uncore), so only the
package zones are summed. The files are root-only (CVE-2020-8694) and absent in most VMs: then there is
no figure, and the method says NOT_MEASURABLE. Each counter wraps to 0 after max_energy_range_uj, so the
monitor reads it on every sample and adds the advances, which handles a wrap between two readings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

POWERCAP = Path("/sys/class/powercap")


@dataclass(frozen=True)
class RaplZone:
    name: str  # "package-0"
    energy_file: Path
    max_range_uj: int


def counter_advance(previous: int, current: int, max_range: int) -> int:
    """How far a counter that wraps to 0 past `max_range` moved, assuming at most one wrap in between."""
    return current - previous if current >= previous else max_range - previous + current


def energy_over_readings_j(readings: Sequence[Sequence[int]], max_ranges: Sequence[int]) -> float:
    """Joules over a sequence of readings (one value per zone, in µJ), summed over the zones."""
    total_uj = 0
    for before, after in zip(readings, readings[1:], strict=False):
        total_uj += sum(counter_advance(b, a, top) for b, a, top in zip(before, after, max_ranges, strict=True))
    return total_uj / 1e6


def package_zones(root: Path = POWERCAP) -> list[RaplZone]:
    """The package zones (intel-rapl:N named package-N). Subzones (intel-rapl:N:M) lie inside a package,
    psys contains them all, and intel-rapl-mmio:N reads the same package again: all skipped."""
    zones = []
    for zone in sorted(root.glob("intel-rapl:*")):
        if zone.name.count(":") != 1:
            continue
        try:
            name = (zone / "name").read_text().strip()
            max_range = int((zone / "max_energy_range_uj").read_text())
        except (OSError, ValueError):
            continue
        if name.startswith("package"):
            zones.append(RaplZone(name, zone / "energy_uj", max_range))
    return zones


def read_uj(zones: Sequence[RaplZone]) -> list[int] | None:
    """One reading of every zone, or None if any is unreadable (not root, or gone)."""
    try:
        return [int(zone.energy_file.read_text()) for zone in zones]
    except (OSError, ValueError):
        return None


class RaplMeter:
    """Energy of all CPU packages since `start()`, fed by `update()` at least once per wrap period."""

    def __init__(self, zones: list[RaplZone], first: list[int]):
        self.zones = zones
        self._last = first
        self._max_ranges = [zone.max_range_uj for zone in zones]
        self.joules = 0.0
        self.broken = False  # a reading failed mid-window: the sum would be short, so it is dropped

    @classmethod
    def start(cls, root: Path = POWERCAP) -> RaplMeter | None:
        zones = package_zones(root)
        first = read_uj(zones) if zones else None
        return cls(zones, first) if first is not None else None

    def update(self) -> None:
        reading = read_uj(self.zones)
        if reading is None:
            self.broken = True
            return
        self.joules += energy_over_readings_j([self._last, reading], self._max_ranges)
        self._last = reading

    def result_j(self) -> float | None:
        return None if self.broken else self.joules
