"""The comparison of the two sides of a run: quality, cost, and what branching did.

Efficiency figures are "small relative to large": a positive `time_pct_faster` means the small adaptive
side took less wall time in total than the large single-shot side; a positive `memory_pct_less` means its
model server's peak memory was lower; `success_rate_diff` is small minus large.
"""

from __future__ import annotations

import math
from statistics import median
from typing import Any

from scipy.stats import binomtest

from sizeup.records import RunRecord, Side, TaskResult


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95 % Wilson score interval for a proportion; (0, 1) when n is 0."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def _pct_less(large: float, small: float) -> float | None:
    return None if large <= 0 else 100.0 * (large - small) / large


def side_summary(results: list[TaskResult]) -> dict[str, Any]:
    n = len(results)
    solved = sum(r.passed for r in results)
    walls = [r.wall_s for r in results]
    ttfts = [r.ttft_s for r in results if r.ttft_s is not None]
    statuses: dict[str, int] = {}
    for r in results:
        statuses[r.status] = statuses.get(r.status, 0) + 1
    low, high = wilson_interval(solved, n)
    first = results[0] if results else None
    return {
        "model": first.model if first else None,
        "strategy": first.strategy if first else None,
        "tasks": n,
        "solved": solved,
        "success_rate": solved / n if n else 0.0,
        "success_rate_ci95": [low, high],
        "mean_test_pass_ratio": sum(r.test_pass_ratio for r in results) / n if n else 0.0,
        "wall_s_median": median(walls) if walls else 0.0,
        "wall_s_total": sum(walls),
        "model_peak_rss_mb": max((r.server.peak_rss_mb for r in results), default=0.0),
        "model_cpu_s": sum(r.server.cpu_s for r in results),
        "model_mean_cpu_pct": (100.0 * sum(r.server.cpu_s for r in results) / sum(walls)) if sum(walls) else 0.0,
        "prompt_tokens": sum(r.prompt_tokens for r in results),
        "completion_tokens": sum(r.completion_tokens for r in results),
        "model_calls": sum(r.model_calls for r in results),
        "ttft_s_median": median(ttfts) if ttfts else None,
        "gen_s_total": sum(r.gen_s for r in results),
        "sandbox_executions": sum(r.sandbox_executions for r in results),
        "sandbox_cpu_s": sum(r.sandbox_cpu_s for r in results),
        "sandbox_peak_rss_mb": max((r.sandbox_peak_rss_mb for r in results), default=0.0),
        "statuses": statuses,
    }


def compare(run: RunRecord, results: list[TaskResult]) -> dict[str, Any]:
    """The numbers behind `sizeup compare`, on the tasks both sides finished."""
    by_side = {side: {r.task_id: r for r in results if r.side is side} for side in Side}
    common = [t for t in by_side[Side.LARGE] if t in by_side[Side.SMALL]]
    large = [by_side[Side.LARGE][t] for t in common]
    small = [by_side[Side.SMALL][t] for t in common]
    sides = {"large": side_summary(large), "small": side_summary(small)}
    only_large = sum(a.passed and not b.passed for a, b in zip(large, small, strict=True))
    only_small = sum(b.passed and not a.passed for a, b in zip(large, small, strict=True))
    discordant = only_large + only_small
    depths = [r.depth_reached for r in small]
    return {
        "run_id": run.run_id,
        "tasks": len(common),
        "tasks_unpaired": len(set(by_side[Side.LARGE]) ^ set(by_side[Side.SMALL])),
        "sides": sides,
        "efficiency": {
            "direction": "small relative to large; positive = the small side used less / did better",
            "time_pct_faster": _pct_less(sides["large"]["wall_s_total"], sides["small"]["wall_s_total"]),
            "memory_pct_less": _pct_less(sides["large"]["model_peak_rss_mb"], sides["small"]["model_peak_rss_mb"]),
            "cpu_pct_less": _pct_less(sides["large"]["model_cpu_s"], sides["small"]["model_cpu_s"]),
            "tokens_pct_less": _pct_less(
                sides["large"]["prompt_tokens"] + sides["large"]["completion_tokens"],
                sides["small"]["prompt_tokens"] + sides["small"]["completion_tokens"]),
            "success_rate_diff": sides["small"]["success_rate"] - sides["large"]["success_rate"],
        },
        "quality": {
            "both_solved": sum(a.passed and b.passed for a, b in zip(large, small, strict=True)),
            "only_large_solved": only_large,
            "only_small_solved": only_small,
            "neither_solved": sum(not a.passed and not b.passed for a, b in zip(large, small, strict=True)),
            "mean_test_pass_ratio_diff": sides["small"]["mean_test_pass_ratio"]
            - sides["large"]["mean_test_pass_ratio"],
            # Exact McNemar: under "no difference", discordant tasks split 50/50.
            "mcnemar_p": binomtest(only_small, discordant, 0.5).pvalue if discordant else 1.0,
        },
        "branching": {
            "mean_depth": sum(depths) / len(depths) if depths else 0.0,
            "max_depth": max(depths, default=0),
            "model_instances": sum(r.model_calls for r in small),
            "solved_at_depth": {str(d): sum(1 for r in small if r.passed and r.depth_reached == d)
                                for d in sorted(set(depths))},
        },
        "load": run.load,
    }
