"""What each arm spent per task, how two arms' spending compares task by task, and what a solved task
cost.

Ratios are baseline / arm, per task, summarised by their median (cost figures are skewed: one task that
runs to the token limit should not decide the result) with a seeded percentile bootstrap interval.

A figure whose measurement method was stored as not measurable is None, never 0: the model server's CPU
seconds and peak memory when sizeup could not watch its processes (a remote server), and the token count
when the server reported no prompt tokens (only the completion could be counted)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from sizeup.analysis.stats import DEFAULT_RESAMPLES, DEFAULT_SEED, bootstrap_ci
from sizeup.records import TaskResult, server_measured
from sizeup.records import tokens_measured as tokens_measured  # here too, beside the server's two


def cpu_measured(result: TaskResult) -> bool:
    """Whether the model server's CPU seconds were measured (not a server sizeup could not watch)."""
    return server_measured(result, "cpu_s")


def peak_measured(result: TaskResult) -> bool:
    return server_measured(result, "peak_rss_mb")


def cpu_s(result: TaskResult) -> float | None:
    return result.server.cpu_s + result.sandbox_cpu_s if cpu_measured(result) else None


def peak_rss_mb(result: TaskResult) -> float | None:
    return result.server.peak_rss_mb if peak_measured(result) else None


def tokens(result: TaskResult) -> float | None:
    return float(result.prompt_tokens + result.completion_tokens) if tokens_measured(result) else None


def energy_j(result: TaskResult) -> float | None:
    """Energy over the task's window: the CPU packages' (RAPL) plus the GPUs' (NVML) counter deltas,
    whichever were read; None when neither was (no RAPL in most VMs, no GPU). The counters cover whole
    packages and GPUs, not the model server alone."""
    parts = [result.server.cpu_energy_j, result.server.gpu_energy_j]
    measured = [float(v) for v in parts if v is not None]
    return sum(measured) if measured else None


def gpu_mem_mb(result: TaskResult) -> float | None:
    return result.server.gpu_mem_mb


# Figure name -> (per-task value, None where not measured; how it is obtained). CPU counts the model
# server and the sandbox: both are work the arm made the machine do for that task.
FIGURES: dict[str, tuple[Callable[[TaskResult], float | None], str]] = {
    "wall_s": (lambda r: r.wall_s, "wall time of the task, model calls and test runs together"),
    "cpu_s": (cpu_s, "model-server CPU seconds + sandbox CPU seconds, where the model server was watched"),
    "peak_rss_mb": (peak_rss_mb, "model-server peak resident memory during the task, where it was watched"),
    "tokens": (tokens, "prompt + completion tokens of all calls, where the server reported prompt tokens"),
    "gpu_mem_mb": (gpu_mem_mb, "peak GPU memory of the model server's processes (NVML), where a GPU was used"),
    "energy_j": (energy_j, "CPU-package (RAPL) + GPU (NVML) energy over the task, where a counter was read"),
}


def figure(result: TaskResult, name: str) -> float | None:
    return FIGURES[name][0](result)


def ratio_summary(
    base: list[TaskResult],
    arm: list[TaskResult],
    name: str,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> dict[str, Any]:
    """Median over paired tasks of baseline / arm for one figure, with a bootstrap 95 % CI. Tasks where
    either arm has no reading, or a zero, are left out (a ratio with 0 is meaningless); `tasks` says
    how many were used."""
    ratios = []
    for a, b in zip(base, arm, strict=True):
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
    """A baseline/arm ratio R as "% less for the arm": 100 (1 - 1/R). Monotone in R, so the interval's
    ends map to the ends of the derived interval."""
    return None if ratio is None or ratio <= 0 else 100.0 * (1.0 - 1.0 / ratio)


def median_with_ci(
    results: list[TaskResult], name: str, *, resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED
) -> dict[str, Any]:
    """Per-task median of one figure for one arm over the tasks it was measured on (`tasks`), with a
    bootstrap 95 % CI (plots place arms by it)."""
    values = [v for v in (figure(r, name) for r in results) if v is not None]
    ci = bootstrap_ci(values, np.median, resamples=resamples, seed=seed)
    return {
        "median": float(np.median(values)) if values else None,
        "ci95": list(ci) if ci else None,
        "tasks": len(values),
    }


def cost_per_solved(results: list[TaskResult]) -> dict[str, float | None]:
    """Everything an arm spent on all tasks divided by the tasks it solved: the price of one solution,
    failures included. None when nothing was solved (the price is unbounded) or the figure was never
    measured on every task."""
    solved = sum(r.passed for r in results)
    out: dict[str, float | None] = {}
    for name in ("wall_s", "cpu_s", "tokens", "energy_j"):
        values = [figure(r, name) for r in results]
        measured = results and all(v is not None for v in values)
        out[name] = sum(values) / solved if solved and measured else None  # type: ignore[arg-type]
    return out
