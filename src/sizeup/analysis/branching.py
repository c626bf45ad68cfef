"""What branching did: how deep trees went, where solutions were found, how many model instances (calls)
a task took, and pass@k over the nodes of the trees.

A node counts as solved only when it would be a held-out pass, like the headline's success: a node's own
status is its verdict on the visible tests (what the search saw), and where the task has hidden tests only the
kept answer (`best_attempt_id`) was judged on them. So with hidden tests the one node that can count is the
kept one, and only if the task passed; without them a node counts when it passed its (visible = all) tests.
A node that passed the visible tests and was never judged on hidden ones is not counted: the figures over
nodes are then lower bounds, never the overfit-inflated visible figures."""

from __future__ import annotations

from collections import Counter
from statistics import median
from typing import Any

from sizeup.analysis.fmt import missing
from sizeup.analysis.stats import mean_pass_at_k, wilson_interval
from sizeup.records import TaskResult, node_solved, result_shape

PASS_AT_K = (1, 2, 5, 10)


def first_pass_depth(result: TaskResult) -> int | None:
    """Shallowest depth holding a held-out passing node (node_solved); a tree-less result that passed counts
    as depth 0."""
    depths = [a.depth for a in result.attempts if node_solved(result, a)]
    if depths:
        return min(depths)
    return 0 if result.passed and not result.attempts else None


def node_samples(result: TaskResult) -> tuple[int, int]:
    """(nodes, held-out passing nodes) of a task's tree, treating every executed node as a sample."""
    executed = [a for a in result.attempts if a.executed]  # a plan or helper call is no candidate program
    if not executed:
        return (1, int(result.passed))
    return (len(executed), sum(node_solved(result, a) for a in executed))


def pass_at_k_over_nodes(results: list[TaskResult]) -> dict[str, float]:
    """Mean unbiased pass@k with every node of a task's tree as one sample, for k up to the largest
    tree (NaN for a k some task has fewer nodes for). For an adaptive tree the nodes are not
    independent draws (children see their parent's failures, and a tree stops when a node passes), so
    pass@1 here reads as "the share of model calls that produced passing code", not a sampling rate."""
    samples = [node_samples(r) for r in results]
    largest = max((n for n, _ in samples), default=0)
    return {str(k): mean_pass_at_k(samples, k) for k in PASS_AT_K if k == 1 or k <= largest}


def branching_stats(results: list[TaskResult], max_depth: int | None = None) -> dict[str, Any]:
    """Depth reached, depth of the first solution, success had the tree stopped at each depth, and calls
    per task, for one side's results."""
    n = len(results)
    reached = Counter(r.depth_reached for r in results)
    first = [first_pass_depth(r) for r in results]
    top = max([max_depth or 0, *reached.keys()], default=0)
    by_depth = {}
    for d in range(top + 1):
        solved = sum(1 for f in first if f is not None and f <= d)
        by_depth[str(d)] = {
            "solved": solved,
            "success_rate": solved / n if n else None,  # None: no task to count
            "success_rate_ci95": list(wilson_interval(solved, n)),
        }
    calls = [r.model_calls for r in results]
    samples = [node_samples(r) for r in results]
    return {
        "depth_reached": {str(d): reached.get(d, 0) for d in range(top + 1)},
        "first_pass_depth": {str(d): sum(1 for f in first if f == d) for d in range(top + 1)},
        "success_if_stopped_at_depth": by_depth,
        "calls_per_task": {
            "mean": sum(calls) / n if n else None,
            "median": median(calls) if calls else None,
            "max": max(calls, default=0),  # a number even with no task: callers compare it
            "distribution": dict(sorted(Counter(map(str, calls)).items(), key=lambda kv: int(kv[0]))),
        },
        "nodes": sum(n for n, _ in samples),
        "passing_nodes": sum(c for _, c in samples),
        "pass_at_k_nodes": {k: finite_or_none(v) for k, v in pass_at_k_over_nodes(results).items()},
    }


def finite_or_none(value: float | None) -> float | None:
    """NaN (an undefined estimate) as None, so that dicts of results serialise as strict JSON."""
    return None if missing(value) else value


def tree_shape(results: list[TaskResult]) -> dict[str, Any]:
    """An arm's trees together: `wider`/`deeper` = counts of new-answer and refine steps, the deepest and
    widest tree, and for the tasks solved, where the first passing node came from."""
    shapes = [result_shape(r) for r in results]
    return {
        "wider": sum(s["wider"] for s in shapes),
        "deeper": sum(s["deeper"] for s in shapes),
        "max_depth": max((s["depth"] for s in shapes), default=0),
        "max_width": max((s["width"] for s in shapes), default=0),
        "depth_distribution": dict(sorted(Counter(str(s["depth"]) for s in shapes).items())),
        "width_distribution": dict(sorted(Counter(str(s["width"]) for s in shapes).items())),
        "first_pass_from": dict(sorted(Counter(s["first_pass_from"] for s in shapes if s["first_pass_from"]).items())),
    }
