"""The comparison of the two sides of a run: quality, cost, and what branching did.

Efficiency figures are "small relative to large": a positive `time_pct_faster` means the small adaptive
side took less wall time in total than the large single-shot side; a positive `memory_pct_less` means its
model server's peak memory was lower; `success_rate_diff` is small minus large. The `*_per_task` figures
derive the same percentages from the median of per-task large / small ratios (`ratios`), with intervals.
"""

from __future__ import annotations

from statistics import median
from typing import Any

import numpy as np

from sizeup.analysis.branching import branching_stats, finite_or_none, pass_at_k_over_nodes
from sizeup.analysis.budget import BUDGET_KINDS, budget_curve, equal_budget, task_spend
from sizeup.analysis.costs import FIGURES, cost_per_solved, median_with_ci, pct_less_from_ratio, ratio_summary
from sizeup.analysis.stats import DEFAULT_RESAMPLES, DEFAULT_SEED, bootstrap_ci, mcnemar_exact_p, wilson_interval
from sizeup.records import RunRecord, Side, TaskResult
from sizeup.sandbox import isolation_note

__all__ = ["compare", "paired", "side_summary", "wilson_interval"]

# Efficiency key -> the figure whose per-task ratio it is derived from.
PCT_LESS = {"time_pct_faster": "wall_s", "memory_pct_less": "peak_rss_mb", "cpu_pct_less": "cpu_s",
            "tokens_pct_less": "tokens", "gpu_memory_pct_less": "gpu_mem_mb", "energy_pct_less": "energy_j"}


def _pct_less(large: float, small: float) -> float | None:
    return None if large <= 0 else 100.0 * (large - small) / large


def paired(results: list[TaskResult]) -> tuple[list[TaskResult], list[TaskResult], int]:
    """The two sides' results on the tasks both finished, in the same task order, and how many tasks
    only one side finished."""
    by_side = {side: {r.task_id: r for r in results if r.side is side} for side in Side}
    common = [t for t in by_side[Side.LARGE] if t in by_side[Side.SMALL]]
    unpaired = len(set(by_side[Side.LARGE]) ^ set(by_side[Side.SMALL]))
    return [by_side[Side.LARGE][t] for t in common], [by_side[Side.SMALL][t] for t in common], unpaired


def side_summary(results: list[TaskResult], *, resamples: int = DEFAULT_RESAMPLES,
                 seed: int = DEFAULT_SEED) -> dict[str, Any]:
    n = len(results)
    solved = sum(r.passed for r in results)
    walls = [r.wall_s for r in results]
    ttfts = [r.ttft_s for r in results if r.ttft_s is not None]
    statuses: dict[str, int] = {}
    for r in results:
        statuses[r.status] = statuses.get(r.status, 0) + 1
    low, high = wilson_interval(solved, n)
    mean_ratio = sum(r.test_pass_ratio for r in results) / n if n else 0.0
    first = results[0] if results else None
    return {
        "model": first.model if first else None,
        "strategy": first.strategy if first else None,
        "tasks": n,
        "solved": solved,
        "success_rate": solved / n if n else 0.0,
        "success_rate_ci95": [low, high],
        "mean_test_pass_ratio": mean_ratio,
        "mean_test_pass_ratio_ci95": list(wilson_interval(mean_ratio * n, n)),
        "wall_s_median": median(walls) if walls else 0.0,
        "wall_s_total": sum(walls),
        "model_peak_rss_mb": max((r.server.peak_rss_mb for r in results), default=0.0),
        "model_cpu_s": sum(r.server.cpu_s for r in results),
        "model_mean_cpu_pct": (100.0 * sum(r.server.cpu_s for r in results) / sum(walls)) if sum(walls) else 0.0,
        **shared_server_summary(results),
        "prompt_tokens": sum(r.prompt_tokens for r in results),
        "completion_tokens": sum(r.completion_tokens for r in results),
        "model_calls": sum(r.model_calls for r in results),
        "ttft_s_median": median(ttfts) if ttfts else None,
        "gen_s_total": sum(r.gen_s for r in results),
        "sandbox_executions": sum(r.sandbox_executions for r in results),
        "sandbox_cpu_s": sum(r.sandbox_cpu_s for r in results),
        "sandbox_peak_rss_mb": max((r.sandbox_peak_rss_mb for r in results), default=0.0),
        "sandbox_backends": sorted({r.method.get("sandbox_backend", "") for r in results} - {""}),
        **container_summary(results),
        "statuses": statuses,
        "cpu_s_total": sum(r.server.cpu_s + r.sandbox_cpu_s for r in results),
        "tokens_total": sum(r.prompt_tokens + r.completion_tokens for r in results),
        "cost_per_solved": cost_per_solved(results),
        "per_task_median": {name: median_with_ci(results, name, resamples=resamples, seed=seed)
                            for name in FIGURES},
        # None, not NaN, where k exceeds a task's samples: `sizeup compare --json` must stay valid JSON.
        "pass_at_k_nodes": {k: finite_or_none(v) for k, v in pass_at_k_over_nodes(results).items()},
    }


def _per_task_pct(ratio: dict[str, Any]) -> dict[str, Any]:
    ci = ratio["ci95"]
    return {"median": pct_less_from_ratio(ratio["median"]),
            "ci95": [pct_less_from_ratio(ci[0]), pct_less_from_ratio(ci[1])] if ci else None}


def shared_server_summary(results: list[TaskResult]) -> dict[str, Any]:
    """A server process shared by several models (`ollama serve`), measured during this side's tasks but
    charged to no side: reported beside the side's own figures, never added to them."""
    shared = [r.shared_server for r in results if r.shared_server is not None]
    if not shared:
        return {}
    return {"shared_server_peak_rss_mb": max(s.peak_rss_mb for s in shared),
            "shared_server_cpu_s": sum(s.cpu_s for s in shared)}


def container_summary(results: list[TaskResult]) -> dict[str, Any]:
    """Container figures where the docker backend ran the side's candidates (empty otherwise): containers
    per task and per run, container CPU seconds (cgroup) and the containers' peak memory."""
    with_containers = [r for r in results if r.sandbox_containers]
    if not with_containers:
        return {}
    figures = [r.sandbox_figures for r in with_containers]
    return {
        "containers_per_task_mean": sum(r.sandbox_containers for r in with_containers) / len(with_containers),
        "containers_in_run": len({a.container_id for r in with_containers for a in r.attempts if a.container_id}),
        "containers_started": int(sum(f.get("containers_started", 0) for f in figures)),
        "container_cpu_s": sum(r.sandbox_cpu_s for r in with_containers),
        "container_peak_mb": max((f.get("container_peak_mb", 0.0) for f in figures), default=0.0),
        "container_memory_mb": max((f.get("container_memory_mb", 0.0) for f in figures), default=0.0),
    }


def compare(run: RunRecord, results: list[TaskResult], *, resamples: int = DEFAULT_RESAMPLES,
            seed: int = DEFAULT_SEED) -> dict[str, Any]:
    """The numbers behind `sizeup compare` and `sizeup report`, on the tasks both sides finished."""
    large, small, unpaired = paired(results)
    sides = {"large": side_summary(large, resamples=resamples, seed=seed),
             "small": side_summary(small, resamples=resamples, seed=seed)}
    pairs = list(zip(large, small, strict=True))
    only_large = sum(a.passed and not b.passed for a, b in pairs)
    only_small = sum(b.passed and not a.passed for a, b in pairs)
    diff_ci = bootstrap_ci([int(b.passed) - int(a.passed) for a, b in pairs], np.mean,
                           resamples=resamples, seed=seed)
    ratios = {name: ratio_summary(large, small, name, resamples=resamples, seed=seed) for name in FIGURES}
    depths = [r.depth_reached for r in small]
    # Children of one level that ran concurrently were all paid for before any verdict was known.
    together = int(run.config.get("parallel", 1) or 1) > 1
    return {
        "run_id": run.run_id,
        "tasks": len(pairs),
        "tasks_unpaired": unpaired,
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
            "ratios": ratios,  # large / small, median over tasks, bootstrap CI
            **{f"{key}_per_task": _per_task_pct(ratios[name]) for key, name in PCT_LESS.items()},
        },
        "quality": {
            "both_solved": sum(a.passed and b.passed for a, b in pairs),
            "only_large_solved": only_large,
            "only_small_solved": only_small,
            "neither_solved": sum(not a.passed and not b.passed for a, b in pairs),
            "mean_test_pass_ratio_diff": sides["small"]["mean_test_pass_ratio"]
            - sides["large"]["mean_test_pass_ratio"],
            "mcnemar_p": mcnemar_exact_p(only_large, only_small),
            "success_rate_diff_ci95": list(diff_ci) if diff_ci else None,  # paired bootstrap over tasks
        },
        "branching": {
            "mean_depth": sum(depths) / len(depths) if depths else 0.0,
            "max_depth": max(depths, default=0),
            "model_instances": sum(r.model_calls for r in small),
            "solved_at_depth": {str(d): sum(1 for r in small if r.passed and r.depth_reached == d)
                                for d in sorted(set(depths))},
            **branching_stats(small, run.config.get("max_depth")),
        },
        "equal_budget": {kind: equal_budget(large, small, kind, siblings_together=together)
                         for kind in BUDGET_KINDS},
        "budget_curves": {kind: {
            "small": budget_curve(small, kind, siblings_together=together),
            "large_mean_spend": sum(task_spend(r, kind) for r in large) / len(large) if large else 0.0,
        } for kind in BUDGET_KINDS},
        "statistics": {"bootstrap_resamples": resamples, "bootstrap_seed": seed, "interval": "95 %",
                       "siblings_counted_together": together},
        "load": run.load,
        "sandbox": sandbox_summary(run, results),
        "server_attribution": run.config.get("server_attribution"),
    }


def sandbox_summary(run: RunRecord, results: list[TaskResult]) -> dict[str, Any]:
    """Which backend ran the candidates, and whether it isolated them: a run on the process backend is said
    to be unisolated wherever its numbers are shown."""
    backends = sorted({r.method.get("sandbox_backend", "") for r in results} - {""})
    if not backends and run.config.get("sandbox_backend"):
        backends = [run.config["sandbox_backend"]]
    return {"backends": backends, "isolated": bool(backends) and "process" not in backends,
            "note": "; ".join(isolation_note(b) for b in backends) or "no candidate ran yet"}
