"""What each side spent per task, how the two sides' spending compares task by task, and what a solved
task cost.

Ratios are large / small, per task, summarised by their median (cost figures are skewed: one task that
runs to the token limit should not decide the result) with a seeded percentile bootstrap interval."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from sizeup.analysis.stats import DEFAULT_RESAMPLES, DEFAULT_SEED, bootstrap_ci
from sizeup.records import TaskResult


def energy_j(result: TaskResult) -> float | None:
    """Energy over the task's window: the CPU packages' (RAPL) plus the GPUs' (NVML) counter deltas,
    whichever were read; None when neither was (no RAPL in most VMs, no GPU). The counters cover whole
    packages and GPUs, not the model server alone."""
    parts = [result.server.cpu_energy_j, result.server.gpu_energy_j]
    measured = [float(v) for v in parts if v is not None]
    return sum(measured) if measured else None


def gpu_mem_mb(result: TaskResult) -> float | None:
    return result.server.gpu_mem_mb


# Figure name -> (per-task value, how it is obtained). CPU counts the model server and the sandbox:
# both are work the side made the machine do for that task.
FIGURES: dict[str, tuple[Callable[[TaskResult], float | None], str]] = {
    "wall_s": (lambda r: r.wall_s, "wall time of the task, model calls and test runs together"),
    "cpu_s": (lambda r: r.server.cpu_s + r.sandbox_cpu_s, "model-server CPU seconds + sandbox CPU seconds"),
    "peak_rss_mb": (lambda r: r.server.peak_rss_mb, "model-server peak resident memory during the task"),
    "tokens": (lambda r: r.prompt_tokens + r.completion_tokens, "prompt + completion tokens of all calls"),
    "gpu_mem_mb": (gpu_mem_mb, "peak GPU memory of the model server's processes (NVML), where a GPU was used"),
    "energy_j": (energy_j, "CPU-package (RAPL) + GPU (NVML) energy over the task, where a counter was read"),
}


def figure(result: TaskResult, name: str) -> float | None:
    return FIGURES[name][0](result)


def ratio_summary(
    large: list[TaskResult],
    small: list[TaskResult],
    name: str,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> dict[str, Any]:
    """Median over paired tasks of large / small for one figure, with a bootstrap 95 % CI. Tasks where
    either side has no reading, or a zero, are left out (a ratio with 0 is meaningless); `tasks` says
    how many were used."""
    ratios = []
    for a, b in zip(large, small, strict=True):
        x, y = figure(a, name), figure(b, name)
        if x is not None and y is not None and x > 0 and y > 0:
            ratios.append(x / y)
    ci = bootstrap_ci(ratios, np.median, resamples=resamples, seed=seed)
    return {
        "median": float(np.median(ratios)) if ratios else None,
        "ci95": list(ci) if ci else None,
        "tasks": len(ratios),
    }


def pct_less_from_ratio(ratio: float | None) -> float | None:
    """A large/small ratio R as "% less for the small side": 100 (1 - 1/R). Monotone in R, so the
    interval's ends map to the ends of the derived interval."""
    return None if ratio is None or ratio <= 0 else 100.0 * (1.0 - 1.0 / ratio)


def median_with_ci(
    results: list[TaskResult], name: str, *, resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED
) -> dict[str, Any]:
    """Per-task median of one figure for one side, with a bootstrap 95 % CI (plots place sides by it)."""
    values = [v for v in (figure(r, name) for r in results) if v is not None]
    ci = bootstrap_ci(values, np.median, resamples=resamples, seed=seed)
    return {
        "median": float(np.median(values)) if values else None,
        "ci95": list(ci) if ci else None,
        "tasks": len(values),
    }


def cost_per_solved(results: list[TaskResult]) -> dict[str, float | None]:
    """Everything a side spent on all tasks divided by the tasks it solved: the price of one solution,
    failures included. None when nothing was solved (the price is unbounded) or the figure was never
    measured."""
    solved = sum(r.passed for r in results)
    out: dict[str, float | None] = {}
    for name in ("wall_s", "cpu_s", "tokens", "energy_j"):
        values = [figure(r, name) for r in results]
        measured = results and all(v is not None for v in values)
        out[name] = sum(values) / solved if solved and measured else None  # type: ignore[arg-type]
    return out
