"""Which configuration reaches the success I need at the lowest cost? The Pareto front of stored runs' arms
(success rate against per-task median cost, on the tasks all of them finished) and the cheapest
configuration that meets a target: at its point estimate, and at the lower end of its interval.

A configuration is an arm of a run; it is named by the arm's name where that is unique among the runs given,
else "RUN:ARM". Costs are per-task medians (skewed figures: one task that runs to the token limit should not
decide) with a bootstrap interval; success rates have Wilson intervals at the confidence asked for.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from sizeup.analysis import fmt
from sizeup.analysis.costs import figure
from sizeup.analysis.stats import DEFAULT_RESAMPLES, DEFAULT_SEED, bootstrap_ci, wilson_interval
from sizeup.records import RunRecord, TaskResult

# --cost NAME -> (the costs.FIGURES figure, unit, words)
COSTS = {
    "cpu": ("cpu_s", "CPU-s", "CPU-seconds"),
    "tokens": ("tokens", "tokens", "tokens"),
    "memory": ("peak_rss_mb", "MB", "model peak memory"),
    "energy": ("energy_j", "J", "energy"),
    "wall": ("wall_s", "s", "wall seconds"),
}


def configurations(
    runs: list[tuple[RunRecord, list[TaskResult]]], source_of: dict[str, str] | None = None, source: str | None = None
) -> dict[str, list[TaskResult]]:
    """Each (run, arm)'s results on the tasks every configuration finished, named for people."""
    raw: dict[tuple[str, str], list[TaskResult]] = {}
    for run, results in runs:
        for result in results:
            if source is None or (source_of or {}).get(result.task_id) == source:
                raw.setdefault((run.run_id, result.arm), []).append(result)
    common = set.intersection(*({r.task_id for r in rs} for rs in raw.values())) if raw else set()
    clash = Counter(arm for _, arm in raw)
    return {
        (arm if clash[arm] == 1 else f"{run_id}:{arm}"): sorted(
            (r for r in rs if r.task_id in common), key=lambda r: r.task_id
        )
        for (run_id, arm), rs in raw.items()
    }


def summarise(
    configs: dict[str, list[TaskResult]],
    cost: str,
    confidence: float,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> list[dict[str, Any]]:
    name, _, _ = COSTS[cost]
    z = _z(confidence)
    out = []
    for config, results in configs.items():
        n, solved = len(results), sum(r.passed for r in results)
        values = [v for v in (figure(r, name) for r in results) if v is not None]
        ci = bootstrap_ci(values, np.median, resamples=resamples, seed=seed, level=confidence)
        first = results[0] if results else None
        out.append(
            {
                "config": config,
                "tasks": n,
                "solved": solved,
                "success_rate": solved / n if n else 0.0,
                "success_ci": list(wilson_interval(solved, n, z=z)),
                "cost_median": float(np.median(values)) if values else None,
                "cost_ci": list(ci) if ci else None,
                "cost_measured_tasks": len(values),
                "model": first.model if first else None,
                "strategy": first.strategy if first else None,
            }
        )
    return out


def _z(confidence: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(0.5 + confidence / 2))


def pareto_front(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The configurations no other beats on both: at least as successful and at most as costly, one strictly.
    A configuration whose cost was never measured is left out of the front."""
    measured = [r for r in rows if r["cost_median"] is not None]

    def dominated(row: dict[str, Any]) -> bool:
        return any(
            o["success_rate"] >= row["success_rate"]
            and o["cost_median"] <= row["cost_median"]
            and (o["success_rate"] > row["success_rate"] or o["cost_median"] < row["cost_median"])
            for o in measured
            if o is not row
        )

    return sorted((r for r in measured if not dominated(r)), key=lambda r: r["cost_median"])


def recommend(
    runs: list[tuple[RunRecord, list[TaskResult]]],
    target: float,
    cost: str = "cpu",
    confidence: float = 0.95,
    source: str | None = None,
    source_of: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The cheapest configuration reaching `target`, at the point estimate and at the interval's lower end."""
    if cost not in COSTS:
        raise ValueError(f"--cost {cost}: one of {', '.join(COSTS)}")
    if not 0 <= target <= 1:
        raise ValueError(f"--target {target}: a success rate between 0 and 1")
    rows = summarise(configurations(runs, source_of, source), cost, confidence)
    if not rows or not rows[0]["tasks"]:
        raise ValueError("no task was finished by every configuration of these runs")
    measured = [r for r in rows if r["cost_median"] is not None]
    point = min((r for r in measured if r["success_rate"] >= target), key=lambda r: r["cost_median"], default=None)
    bound = min((r for r in measured if r["success_ci"][0] >= target), key=lambda r: r["cost_median"], default=None)
    closest = max(rows, key=lambda r: (r["success_rate"], -(r["cost_median"] or 0.0)))
    return {
        "target": target,
        "cost": cost,
        "confidence": confidence,
        "tasks": rows[0]["tasks"],
        "configurations": rows,
        "front": pareto_front(rows),
        "choice_point": point["config"] if point else None,
        "choice_bound": bound["config"] if bound else None,
        "closest": closest["config"],
        "explanation": explain(point, bound, closest, target, cost, confidence),
    }


def describe(row: dict[str, Any], cost: str) -> str:
    _, unit, _ = COSTS[cost]
    ci = row["success_ci"]
    return (
        f"`{row['config']}` ({row['model']}, {row['strategy']}) reaches {fmt.pct(row['success_rate'])} "
        f"[{100 * ci[0]:.0f}–{100 * ci[1]:.0f}] at {fmt.num(row['cost_median'])} {unit} per task"
    )


def explain(point: dict | None, bound: dict | None, closest: dict, target: float, cost: str, confidence: float) -> str:
    words = COSTS[cost][2]
    goal = f"{100 * target:.0f} %"
    if point is None:
        return (
            f"No configuration reaches {goal}; the closest is {describe(closest, cost)}. Try a larger model, "
            "more repair rounds or samples, or a lower target."
        )
    text = f"The cheapest in {words} at the point estimate: {describe(point, cost)}."
    if bound is None:
        text += (
            f" At {100 * confidence:.0f} % confidence of at least {goal}, none qualifies: every interval "
            "reaches below it (more tasks would narrow them)."
        )
    elif bound["config"] == point["config"]:
        text += f" It also reaches {goal} at {100 * confidence:.0f} % confidence (its interval's lower end)."
    else:
        text += f" At {100 * confidence:.0f} % confidence of at least {goal}, choose {describe(bound, cost)}."
    return text
