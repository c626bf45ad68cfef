"""Which configuration reaches the success I need at the lowest cost? The Pareto front of stored runs' arms
(success rate against per-task median cost, on the tasks all of them finished) and the cheapest
configuration that meets a target: at its point estimate, and at a one-sided lower confidence bound.

A configuration is an arm of a run; it is named by the arm's name where that is unique among the runs given,
else "RUN:ARM". Costs are per-task medians (skewed figures: one task that runs to the token limit should not
decide) with a bootstrap interval, over the tasks where the cost was measured (`cost_measured_tasks`).
Success rates have two-sided Wilson intervals at the confidence asked for (`success_ci`); "at 95 %
confidence of at least X" uses the one-sided Wilson lower bound at that confidence
(`success_lower_bound`, z = 1.645 for 95 %), which is higher than the two-sided interval's lower end.

A configuration whose cost was not measured on any task (a remote model server sizeup could not watch has no
CPU or memory figure) is left out of the front and of the choice, never ranked as free: `not_measured` names
it, and the explanation says when it would have met the target.
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
    z_one_sided = _z_one_sided(confidence)
    out = []
    for config, results in configs.items():
        n, solved = len(results), sum(r.passed for r in results)
        # costs.figure is None where the figure was not measured: those tasks are left out, never counted 0.
        values = [v for v in (figure(r, name) for r in results) if v is not None]
        ci = bootstrap_ci(values, np.median, resamples=resamples, seed=seed, level=confidence)
        first = results[0] if results else None
        out.append(
            {
                "config": config,
                "tasks": n,
                "solved": solved,
                "success_rate": solved / n if n else None,
                "success_ci": list(wilson_interval(solved, n, z=z)),
                "success_lower_bound": wilson_interval(solved, n, z=z_one_sided)[0],
                "cost_median": float(np.median(values)) if values else None,
                "cost_ci": list(ci) if ci else None,
                "cost_measured_tasks": len(values),
                "model": first.model if first else None,
                "strategy": first.strategy if first else None,
            }
        )
    return out


def _z(confidence: float) -> float:
    """Two-sided: the interval holds the rate with this confidence."""
    from scipy.stats import norm

    return float(norm.ppf(0.5 + confidence / 2))


def _z_one_sided(confidence: float) -> float:
    """One-sided: the rate is at least the lower bound with this confidence."""
    from scipy.stats import norm

    return float(norm.ppf(confidence))


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
    """The cheapest configuration with a measured cost reaching `target`, at the point estimate and at the
    one-sided lower confidence bound."""
    if cost not in COSTS:
        raise ValueError(f"--cost {cost}: one of {', '.join(COSTS)}")
    if not 0 <= target <= 1:
        raise ValueError(f"--target {target}: a success rate between 0 and 1")
    rows = summarise(configurations(runs, source_of, source), cost, confidence)
    if not rows or not rows[0]["tasks"]:
        raise ValueError("no task was finished by every configuration of these runs")
    measured = [r for r in rows if r["cost_median"] is not None]
    unmeasured = [r for r in rows if r["cost_median"] is None]
    point = min((r for r in measured if r["success_rate"] >= target), key=lambda r: r["cost_median"], default=None)
    bound = min(
        (r for r in measured if r["success_lower_bound"] >= target), key=lambda r: r["cost_median"], default=None
    )

    # The most successful; among equals a measured cost before an unmeasured one, then the cheapest.
    def nearness(r: dict[str, Any]) -> tuple[float, bool, float]:
        return (r["success_rate"], r["cost_median"] is not None, -(r["cost_median"] or 0.0))

    closest = max(rows, key=nearness)
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
        "not_measured": [r["config"] for r in unmeasured],
        "explanation": explain(
            point, bound, closest, target, cost, confidence, unmeasured, max(measured, key=nearness, default=None)
        ),
    }


def describe(row: dict[str, Any], cost: str, *, with_cost: bool = True) -> str:
    _, unit, words = COSTS[cost]
    ci = row["success_ci"]
    text = (
        f"`{row['config']}` ({row['model']}, {row['strategy']}) reaches {fmt.pct(row['success_rate'])} "
        f"[{100 * ci[0]:.0f}–{100 * ci[1]:.0f}]"
    )
    if not with_cost:
        return text
    if row["cost_median"] is None:
        return f"{text} at a cost in {words} that was not measured"
    return f"{text} at {fmt.num(row['cost_median'])} {unit} per task"


def explain(
    point: dict | None,
    bound: dict | None,
    closest: dict,
    target: float,
    cost: str,
    confidence: float,
    unmeasured: list[dict[str, Any]] | None = None,
    closest_measured: dict | None = None,
) -> str:
    words = COSTS[cost][2]
    goal = f"{100 * target:.0f} %"
    level = f"{100 * confidence:.0f} %"
    reaching = [r for r in unmeasured or [] if r["success_rate"] >= target]
    unranked = (
        f" Reaching {goal} but not ranked, as the cost in {words} was not measured (a model server sizeup could "
        "not watch, such as a remote one): " + "; ".join(describe(r, cost, with_cost=False) for r in reaching) + "."
        if reaching
        else ""
    )
    if point is None:
        if reaching:  # it is reached, only not by a configuration whose cost could be ranked
            text = f"No configuration with a measured cost reaches {goal}." + unranked
            if closest_measured is not None:
                text += f" Of those measured, the closest is {describe(closest_measured, cost)}."
            return text
        return (
            f"No configuration reaches {goal}; the closest is {describe(closest, cost)}. Try a larger model, "
            "more repair rounds or samples, or a lower target."
        )
    text = f"The cheapest in {words} at the point estimate: {describe(point, cost)}."
    one_sided = f"(a one-sided {level} Wilson lower bound)"
    if bound is None:
        text += (
            f" At {level} confidence of at least {goal} {one_sided}, none qualifies: every bound lies below it "
            "(more tasks would raise them)."
        )
    elif bound["config"] == point["config"]:
        text += (
            f" It also reaches {goal} at {level} confidence: its one-sided lower bound is "
            f"{fmt.pct(bound['success_lower_bound'])}."
        )
    else:
        text += (
            f" At {level} confidence of at least {goal} {one_sided}, choose {describe(bound, cost)} "
            f"(lower bound {fmt.pct(bound['success_lower_bound'])})."
        )
    return text + unranked
