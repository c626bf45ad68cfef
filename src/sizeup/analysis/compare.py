"""The comparison of a run's arms: one baseline against each other arm, on quality, cost, and what
branching did.

`arms` summarises every arm on the tasks all arms finished; `pairs` gives each (baseline, arm) pair's
paired test. `pair_details` holds everything about each pair on the tasks both finished, and the first
pair's details also sit at the top level: for the seed's two arms that is `sides.large`, `sides.small`,
`efficiency`, `quality`, `branching`, as `sizeup compare --json` always had them.

Efficiency figures are "the arm relative to the baseline": a positive `time_pct_faster` means the arm
took less wall time in total than the baseline; a positive `memory_pct_less` means its model server's peak
memory was lower; `success_rate_diff` is arm minus baseline. The `*_per_task` figures derive the same
percentages from the median of per-task baseline / arm ratios (`ratios`), with intervals. Keys that name a
side carry the arms' names (`only_large_solved`, `small_success_rate`, ...).

A figure that could not be measured is None (null in JSON, "n/a" or "not measured" in the tables), never
0: success rates of an arm with no task compared yet; visible-test success and overfit in runs whose tasks
have no hidden tests; the model server's CPU and memory where sizeup could not watch it (a remote server);
token totals where the server reported no prompt tokens.
"""

from __future__ import annotations

from collections import Counter
from statistics import median
from typing import Any

import numpy as np

from sizeup.analysis.branching import branching_stats, finite_or_none, pass_at_k_over_nodes, tree_shape
from sizeup.analysis.budget import BUDGET_KINDS, budget_curve, equal_budget, spend_measured, task_spend
from sizeup.analysis.costs import (
    FIGURES,
    cost_per_solved,
    cpu_measured,
    median_with_ci,
    pct_less_from_ratio,
    peak_measured,
    ratio_summary,
    tokens_measured,
)
from sizeup.analysis.costs import (
    cpu_s as cpu_s_of,
)
from sizeup.analysis.stats import DEFAULT_RESAMPLES, DEFAULT_SEED, bootstrap_ci, mcnemar_exact_p, wilson_interval
from sizeup.records import ArmSpec, RunRecord, TaskResult
from sizeup.sandbox import isolation_note

__all__ = ["arm_names", "compare", "paired", "side_summary", "wilson_interval"]

# Efficiency key -> the figure whose per-task ratio it is derived from.
PCT_LESS = {
    "time_pct_faster": "wall_s",
    "memory_pct_less": "peak_rss_mb",
    "cpu_pct_less": "cpu_s",
    "tokens_pct_less": "tokens",
    "gpu_memory_pct_less": "gpu_mem_mb",
    "energy_pct_less": "energy_j",
}


def _pct_less(base: float | None, arm: float | None) -> float | None:
    return None if base is None or arm is None or base <= 0 else 100.0 * (base - arm) / base


def _diff(base: float | None, arm: float | None) -> float | None:
    return None if base is None or arm is None else arm - base


def arm_names(run: RunRecord, results: list[TaskResult]) -> list[str]:
    """The run's arms in order, and any arm only the results name (a store edited by hand)."""
    return list(dict.fromkeys([*(arm.name for arm in run.arms), *(r.arm for r in results)]))


def paired(results: list[TaskResult], first: str, second: str) -> tuple[list[TaskResult], list[TaskResult], int]:
    """Two arms' results on the tasks both finished, in the same task order, and how many tasks only one
    of them finished."""
    by_arm = {name: {r.task_id: r for r in results if r.arm == name} for name in (first, second)}
    common = [t for t in by_arm[first] if t in by_arm[second]]
    unpaired = len(set(by_arm[first]) ^ set(by_arm[second]))
    return [by_arm[first][t] for t in common], [by_arm[second][t] for t in common], unpaired


def common_tasks(results: list[TaskResult], names: list[str]) -> list[str]:
    """Tasks every named arm finished, in the order they were first stored."""
    finished = [{r.task_id for r in results if r.arm == name} for name in names]
    return [t for t in dict.fromkeys(r.task_id for r in results) if all(t in f for f in finished)]


def side_summary(
    results: list[TaskResult], *, resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED
) -> dict[str, Any]:
    n = len(results)
    solved = sum(r.passed for r in results)
    walls = [r.wall_s for r in results]
    ttfts = [r.ttft_s for r in results if r.ttft_s is not None]
    statuses: dict[str, int] = {}
    for r in results:
        statuses[r.status] = statuses.get(r.status, 0) + 1
    # Visible-test success and overfit exist only where a task had hidden tests; overfit is counted over
    # those tasks (a task without hidden tests cannot be seen to overfit).
    hidden = [r for r in results if r.hidden_total]
    visible = sum(r.visible_pass for r in results)
    overfit = sum(r.overfit for r in hidden)
    mean_ratio = sum(r.test_pass_ratio for r in results) / n if n else None
    # Totals of a figure some task did not measure would be partial sums: None instead.
    cpu_ok, peak_ok, tokens_ok = (all(ok(r) for r in results) for ok in (cpu_measured, peak_measured, tokens_measured))
    model_cpu = sum(r.server.cpu_s for r in results) if cpu_ok else None
    wall_total = sum(walls)
    first = results[0] if results else None
    return {
        "model": first.model if first else None,
        "strategy": first.strategy if first else None,
        "stopped_by": dict(sorted(Counter(r.stopped_by or "not recorded" for r in results).items())),
        "tasks": n,
        "solved": solved,
        # Held out: every test, visible and hidden, passed. None (and the interval [0, 1]) with no task yet.
        "success_rate": solved / n if n else None,
        "success_rate_ci95": list(wilson_interval(solved, n)),
        # The tests the arm was shown passed; None where no task had hidden tests (it would be success_rate).
        "visible_success_rate": visible / n if hidden else None,
        "visible_success_rate_ci95": list(wilson_interval(visible, n)) if hidden else None,
        # Passed what it was shown, failed what it was not, of the tasks with hidden tests; None without any.
        "overfit_rate": overfit / len(hidden) if hidden else None,
        "overfit_rate_ci95": list(wilson_interval(overfit, len(hidden))) if hidden else None,
        "overfit": overfit,
        "tasks_with_hidden_tests": len(hidden),
        # Verdict tests judged outside the program's process; the rest ran in it (None: not recorded).
        "parent_compared_share": _parent_share(results),
        "mean_test_pass_ratio": mean_ratio,
        "mean_test_pass_ratio_ci95": list(wilson_interval((mean_ratio or 0.0) * n, n)),
        "wall_s_median": median(walls) if walls else None,
        "wall_s_total": wall_total,
        "model_peak_rss_mb": max((r.server.peak_rss_mb for r in results), default=None) if peak_ok else None,
        "model_cpu_s": model_cpu,
        "model_mean_cpu_pct": 100.0 * model_cpu / wall_total if model_cpu is not None and wall_total else None,
        **shared_server_summary(results),
        "prompt_tokens": sum(r.prompt_tokens for r in results) if tokens_ok else None,
        "completion_tokens": sum(r.completion_tokens for r in results),
        "model_calls": sum(r.model_calls for r in results),
        "ttft_s_median": median(ttfts) if ttfts else None,
        "gen_s_total": sum(r.gen_s for r in results),
        "sandbox_executions": sum(r.sandbox_executions for r in results),
        "sandbox_cpu_s": sum(r.sandbox_cpu_s for r in results),
        "sandbox_peak_rss_mb": max((r.sandbox_peak_rss_mb for r in results), default=None),
        "sandbox_backends": sorted({r.method.get("sandbox_backend", "") for r in results} - {""}),
        **container_summary(results),
        "statuses": statuses,
        "cpu_s_total": sum(r.server.cpu_s + r.sandbox_cpu_s for r in results) if cpu_ok else None,
        "tokens_total": sum(r.prompt_tokens + r.completion_tokens for r in results) if tokens_ok else None,
        "cost_per_solved": cost_per_solved(results),
        "per_task_median": {name: median_with_ci(results, name, resamples=resamples, seed=seed) for name in FIGURES},
        # None, not NaN, where k exceeds a task's samples: `sizeup compare --json` must stay valid JSON.
        "pass_at_k_nodes": {k: finite_or_none(v) for k, v in pass_at_k_over_nodes(results).items()},
    }


def _parent_share(results: list[TaskResult]) -> float | None:
    recorded = [r for r in results if r.tests_parent_compared is not None]
    total = sum(r.tests_total for r in recorded)
    return sum(r.tests_parent_compared or 0 for r in recorded) / total if total else None


def _per_task_pct(ratio: dict[str, Any]) -> dict[str, Any]:
    ci = ratio["ci95"]
    return {
        "median": pct_less_from_ratio(ratio["median"]),
        "ci95": [pct_less_from_ratio(ci[0]), pct_less_from_ratio(ci[1])] if ci else None,
    }


def shared_server_summary(results: list[TaskResult]) -> dict[str, Any]:
    """A server process shared by several models (`ollama serve`), measured during this side's tasks but
    charged to no side: reported beside the side's own figures, never added to them."""
    shared = [r.shared_server for r in results if r.shared_server is not None]
    if not shared:
        return {}
    return {
        "shared_server_peak_rss_mb": max(s.peak_rss_mb for s in shared),
        "shared_server_cpu_s": sum(s.cpu_s for s in shared),
    }


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


def compare(
    run: RunRecord,
    results: list[TaskResult],
    *,
    baseline: str | None = None,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> dict[str, Any]:
    """The numbers behind `sizeup compare` and `sizeup report`: every arm, and the baseline against each."""
    names = arm_names(run, results)
    if not names:
        raise ValueError(f"run {run.run_id} has no arms and no results")
    base = baseline or run.config.get("baseline") or names[0]
    if base not in names:
        raise ValueError(f"baseline {base!r} is none of run {run.run_id}'s arms ({', '.join(names)})")
    common = common_tasks(results, names)
    by_arm = {name: {r.task_id: r for r in results if r.arm == name} for name in names}
    arms = [
        arm_summary(
            run.arm(name) or _spec_from_results(name, results),
            [by_arm[name][t] for t in common],
            resamples=resamples,
            seed=seed,
        )
        for name in names
    ]
    details = [
        pair_detail(run, results, base, other, resamples=resamples, seed=seed) for other in names if other != base
    ]
    out: dict[str, Any] = {
        "run_id": run.run_id,
        "baseline": base,
        "tasks_all_arms": len(common),
        "arms": arms,
        "pairs": [
            {
                "baseline": base,
                "arm": d["arm"],
                "tasks": d["tasks"],
                "mcnemar_p": d["quality"]["mcnemar_p"],
                "success_diff": d["efficiency"]["success_rate_diff"],
                "success_diff_ci": d["quality"]["success_rate_diff_ci95"],
            }
            for d in details
        ],
        "pair_details": details,
    }
    if details:  # the first pair at the top level: the seed's two-arm keys
        out.update({k: v for k, v in details[0].items() if k not in ("run_id",)})
    else:  # one arm: nothing to pair it with
        only = [by_arm[base][t] for t in common]
        out.update(
            {
                "tasks": len(only),
                "tasks_unpaired": 0,
                "sides": {base: side_summary(only, resamples=resamples, seed=seed)},
            }
        )
    out.update(
        {
            "protocol": protocol(results),
            "load": run.load,
            "sandbox": sandbox_summary(run, results),
            "nodes": node_summary(results, names),
            "server_attribution": run.config.get("server_attribution"),
            "statistics": {
                "bootstrap_resamples": resamples,
                "bootstrap_seed": seed,
                "interval": "95 %",
                **(
                    {"siblings_counted_together": details[0]["statistics"]["siblings_counted_together"]}
                    if details
                    else {}
                ),
            },
        }
    )
    return out


def node_of(result: TaskResult) -> str:
    """The host a result was made on (its worker's node), or "unknown" for results stored before workers."""
    node = (result.worker or {}).get("node") or {}
    return str(node.get("host") or "unknown")


def node_summary(results: list[TaskResult], names: list[str]) -> list[dict[str, Any]]:
    """Each node's share of the run, per arm: tasks, success and median costs of the results made there.
    Every arm of a task runs on one worker, so a task's arms are always compared on the same node; across
    nodes, costs differ with the hardware, which is why they are grouped here and not pooled."""
    nodes: dict[str, list[TaskResult]] = {}
    for result in results:
        nodes.setdefault(node_of(result), []).append(result)
    out = []
    for host, here in sorted(nodes.items()):
        facts = next(((r.worker or {}).get("node") or {} for r in here if r.worker), {})
        arms = {}
        for name in names:
            mine = [r for r in here if r.arm == name]
            if not mine:
                continue
            cpu = [c for c in (cpu_s_of(r) for r in mine) if c is not None]
            arms[name] = {
                "tasks": len(mine),
                "passed": sum(r.passed for r in mine),
                "success_rate": sum(r.passed for r in mine) / len(mine),
                "wall_s_median": median(r.wall_s for r in mine),
                "cpu_s_median": median(cpu) if cpu else None,  # None: the model server's CPU was not measured
            }
        out.append(
            {
                "host": host,
                "cpu_model": facts.get("cpu_model"),
                "cores": facts.get("cores"),
                "gpu": facts.get("gpu"),
                "tasks": len({r.task_id for r in here}),
                "arms": arms,
            }
        )
    return out


def _spec_from_results(name: str, results: list[TaskResult]) -> ArmSpec:
    """An arm the run record does not describe (a store edited by hand): what its results say of it."""
    first = next(r for r in results if r.arm == name)
    return ArmSpec(name=name, strategy=first.strategy or "?", models=first.model.split(" + ") or ["?"])


def arm_summary(spec: ArmSpec, results: list[TaskResult], *, resamples: int, seed: int) -> dict[str, Any]:
    """One arm on the tasks every arm finished: the stable keys of `compare --json`'s `arms`, then every
    figure of side_summary."""
    side = side_summary(results, resamples=resamples, seed=seed)
    medians = side["per_task_median"]
    calls = [r.model_calls for r in results]
    return {
        "name": spec.name,
        "strategy": spec.strategy,
        "models": spec.models,
        "params": spec.params,
        "budget": spec.budget.model_dump(exclude_none=True) if spec.budget else None,
        "tasks": side["tasks"],
        "success_rate": side["success_rate"],
        "success_ci": side["success_rate_ci95"],
        "mean_test_pass_ratio": side["mean_test_pass_ratio"],
        "cpu_s_median": medians["cpu_s"]["median"],
        "cpu_s_median_ci": medians["cpu_s"]["ci95"],
        "tokens_median": medians["tokens"]["median"],
        "tokens_median_ci": medians["tokens"]["ci95"],
        "model_peak_rss_mb_median": medians["peak_rss_mb"]["median"],
        "model_peak_rss_mb_median_ci": medians["peak_rss_mb"]["ci95"],
        "model_calls_mean": sum(calls) / len(calls) if calls else None,
        "over_budget": sum(over_budget(r) for r in results),
        # The search algorithm's own time (TreeQuest's ask/tell) against the arm's wall time, where timed.
        "strategy_overhead_pct": _overhead_pct(results),
        # For arms that build trees (every strategy but single): how wide and deep they grew.
        **({"tree_shape": tree_shape(results)} if spec.strategy != "single" else {}),
        **{k: v for k, v in side.items() if k not in ("model", "strategy")},
    }


def _overhead_pct(results: list[TaskResult]) -> float | None:
    timed = [r for r in results if r.strategy_overhead_s is not None]
    wall = sum(r.wall_s for r in timed)
    return 100.0 * sum(r.strategy_overhead_s or 0.0 for r in timed) / wall if timed and wall > 0 else None


def over_budget(result: TaskResult) -> bool:
    """Whether a result spent more than its enforced budget allowed (tokens and calls are exact; a CPU
    budget is enforced from the mean call, so it can be passed by part of one call)."""
    budget = result.budget
    if budget is None:
        return False
    return (budget.tokens is not None and result.completion_tokens > budget.tokens) or (
        budget.calls is not None and result.model_calls > budget.calls
    )


def pair_detail(
    run: RunRecord, results: list[TaskResult], b: str, a: str, *, resamples: int, seed: int
) -> dict[str, Any]:
    """The baseline `b` against arm `a` on the tasks both finished."""
    base, arm, unpaired = paired(results, b, a)
    sides = {
        b: side_summary(base, resamples=resamples, seed=seed),
        a: side_summary(arm, resamples=resamples, seed=seed),
    }
    pairs = list(zip(base, arm, strict=True))
    only_base = sum(x.passed and not y.passed for x, y in pairs)
    only_arm = sum(y.passed and not x.passed for x, y in pairs)
    diff_ci = bootstrap_ci([int(y.passed) - int(x.passed) for x, y in pairs], np.mean, resamples=resamples, seed=seed)
    ratios = {name: ratio_summary(base, arm, name, resamples=resamples, seed=seed) for name in FIGURES}
    depths = [r.depth_reached for r in arm]
    spec = run.arm(a)
    params = spec.params if spec else {}
    # Children of one level that ran concurrently were all paid for before any verdict was known.
    together = int(params.get("parallel", 1) or 1) > 1
    names = (b, a)
    return {
        "run_id": run.run_id,
        "baseline": b,
        "arm": a,
        "tasks": len(pairs),
        "tasks_unpaired": unpaired,
        "sides": sides,
        "efficiency": {
            "direction": f"{a} relative to {b}; positive = {a} used less / did better",
            "time_pct_faster": _pct_less(sides[b]["wall_s_total"], sides[a]["wall_s_total"]),
            "memory_pct_less": _pct_less(sides[b]["model_peak_rss_mb"], sides[a]["model_peak_rss_mb"]),
            "cpu_pct_less": _pct_less(sides[b]["model_cpu_s"], sides[a]["model_cpu_s"]),
            "tokens_pct_less": _pct_less(sides[b]["tokens_total"], sides[a]["tokens_total"]),
            "success_rate_diff": _diff(sides[b]["success_rate"], sides[a]["success_rate"]),
            "ratios": ratios,  # baseline / arm, median over tasks, bootstrap CI
            **{f"{key}_per_task": _per_task_pct(ratios[name]) for key, name in PCT_LESS.items()},
        },
        "quality": {
            "both_solved": sum(x.passed and y.passed for x, y in pairs),
            f"only_{b}_solved": only_base,
            f"only_{a}_solved": only_arm,
            "neither_solved": sum(not x.passed and not y.passed for x, y in pairs),
            "mean_test_pass_ratio_diff": _diff(sides[b]["mean_test_pass_ratio"], sides[a]["mean_test_pass_ratio"]),
            "mcnemar_p": mcnemar_exact_p(only_base, only_arm),
            "success_rate_diff_ci95": list(diff_ci) if diff_ci else None,  # paired bootstrap over tasks
        },
        "branching": {
            "mean_depth": sum(depths) / len(depths) if depths else None,
            "max_depth": max(depths, default=0),
            "model_instances": sum(r.model_calls for r in arm),
            "solved_at_depth": {
                str(d): sum(1 for r in arm if r.passed and r.depth_reached == d) for d in sorted(set(depths))
            },
            **branching_stats(arm, params.get("max_depth")),
        },
        "equal_budget": {
            kind: equal_budget(base, arm, kind, names=names, siblings_together=together) for kind in BUDGET_KINDS
        },
        "budget_curves": {
            kind: {
                a: budget_curve(arm, kind, siblings_together=together),
                f"{b}_mean_spend": _mean_spend(base, kind),
            }
            for kind in BUDGET_KINDS
        },
        "statistics": {"siblings_counted_together": together},
    }


def _mean_spend(results: list[TaskResult], kind: Any) -> float | None:
    """Mean spend per task over the tasks it was measured on; None when it was measured on none."""
    spends = [task_spend(r, kind) for r in results if spend_measured(r, kind)]
    return sum(spends) / len(spends) if spends else None


def protocol(results: list[TaskResult]) -> str:
    """`visible-feedback/hidden-verdict` when the verdicts covered hidden tests the arms never saw,
    `tests-are-feedback` when the tests that steered the search also judged it (no hidden tests)."""
    with_hidden = sum(bool(r.hidden_total) for r in results)
    if results and with_hidden == len(results):
        return "visible-feedback/hidden-verdict"
    if not with_hidden:
        return "tests-are-feedback"
    return f"mixed: {with_hidden} of {len(results)} results had hidden tests"


def sandbox_summary(run: RunRecord, results: list[TaskResult]) -> dict[str, Any]:
    """Which backend ran the candidates, and whether it isolated them: a run on the process backend is said
    to be unisolated wherever its numbers are shown."""
    backends = sorted({r.method.get("sandbox_backend", "") for r in results} - {""})
    if not backends and run.config.get("sandbox_backend"):
        backends = [run.config["sandbox_backend"]]
    return {
        "backends": backends,
        "isolated": bool(backends) and "process" not in backends,
        "note": "; ".join(isolation_note(b) for b in backends) or "no candidate ran yet",
    }
