"""Equal-budget view: would an arm still have solved a task had it been stopped once it spent what the
baseline arm spent on that task? (After the fact, on stored trees; an arm run under a budget enforced
while it runs is the other way to compare at equal cost: see strategies/base.py.)

The stored attempt tree is replayed in the order it was made (its creation sequence; trees stored before
that was kept are replayed by depth, then attempt id: the order the seed's strategies made them in). Each
attempt's spend is added as it is replayed; the task counts as solved only if a passing attempt is reached
while the running total is still within the budget.

"Passing" is a held-out pass, as in the headline success (branching.node_solved): an attempt's own status
is its verdict on the visible tests only, and where the task has hidden tests only the kept answer
(`best_attempt_id`) was judged on them. So with hidden tests the replay must reach the kept answer, and the
task must have passed its hidden tests; an overfit node (visible passed, hidden failed) never counts, and an
arm's success at equal cost can never exceed its success as run.

A task whose spend in the budget's unit was not measured on either side (a model server sizeup could not
watch has no CPU figure; a server that reports no prompt tokens has no token figure) is left out of that
budget's comparison, and `tasks_not_measured` counts it.

Siblings: one by one when the run generated them one at a time (config `parallel` 1, the default), so a
capped run could have stopped at the first passing child. When children ran concurrently (`parallel` >
1) a level is charged in full before any of its verdicts is known, so a level counts together.

Budgets (what the baseline spent on the task, against the arm's running total):
* tokens: prompt + completion tokens of each call, exactly as stored.
* cpu_s: per-attempt model CPU is not stored (the server is measured per task), so the task's model-
  server CPU seconds are apportioned to its attempts by each call's generation wall time (gen_s): a
  CPU-bound server burns CPU while it reads the prompt as well as while it writes, which apportioning by
  completion tokens would miss (a long repair prompt would cost nothing). Falls back to completion
  tokens, then to equal shares, when gen_s is missing. Each attempt's sandbox CPU (stored) is added.
* gen_s: seconds waiting for the model, per call, as stored.
"""

from __future__ import annotations

from typing import Any, Literal

from sizeup.analysis.branching import node_solved
from sizeup.analysis.costs import cpu_measured, tokens_measured
from sizeup.analysis.stats import mcnemar_exact_p, wilson_interval
from sizeup.records import Attempt, TaskResult, creation_order

BudgetKind = Literal["tokens", "cpu_s", "gen_s"]
BUDGET_KINDS: tuple[BudgetKind, ...] = ("tokens", "cpu_s", "gen_s")


def replay_order(attempts: list[Attempt]) -> list[Attempt]:
    """Attempts in the order the strategy made them."""
    return creation_order(attempts)


def task_spend(result: TaskResult, kind: BudgetKind) -> float:
    """What an arm spent on a whole task, in the budget's unit (the baseline's spend is the other arm's cap).
    Check spend_measured first: an unmeasured part counts 0 here."""
    if kind == "tokens":
        return float(result.prompt_tokens + result.completion_tokens)
    if kind == "cpu_s":
        return result.server.cpu_s + result.sandbox_cpu_s
    return result.gen_s


def spend_measured(result: TaskResult, kind: BudgetKind) -> bool:
    """Whether a task's spend in this unit was measured: model-server CPU for cpu_s, prompt tokens for
    tokens (gen_s is timed by sizeup itself, always)."""
    if kind == "cpu_s":
        return cpu_measured(result)
    if kind == "tokens":
        return tokens_measured(result)
    return True


def attempt_spends(result: TaskResult, kind: BudgetKind) -> list[tuple[Attempt, float]]:
    """Each attempt with its spend, in replay order. A result stored without its tree counts as one
    attempt carrying the task's totals."""
    attempts = replay_order(result.attempts)
    if not attempts:
        whole = Attempt(attempt_id="0", status=result.status)
        return [(whole, task_spend(result, kind))]
    if kind == "tokens":
        return [(a, float(a.prompt_tokens + a.completion_tokens)) for a in attempts]
    if kind == "gen_s":
        return [(a, a.gen_s) for a in attempts]
    weights = [a.gen_s for a in attempts]
    if sum(weights) <= 0:
        weights = [float(a.completion_tokens) for a in attempts]
    if sum(weights) <= 0:
        weights = [1.0] * len(attempts)
    total = sum(weights)
    return [(a, result.server.cpu_s * w / total + a.exec_cpu_s) for a, w in zip(attempts, weights, strict=True)]


def _charged_steps(result: TaskResult, kind: BudgetKind, siblings_together: bool) -> list[tuple[bool, float]]:
    """(any attempt of the step is a held-out pass, running total at the end of the step), step by step."""
    steps: list[tuple[bool, float]] = []
    running, depth = 0.0, None
    for attempt, spend in attempt_spends(result, kind):
        running += spend
        # A result stored without its tree is one step carrying the task's verdict.
        passed = node_solved(result, attempt) if result.attempts else result.passed
        if siblings_together and steps and attempt.depth == depth:
            steps[-1] = (steps[-1][0] or passed, running)
        else:
            steps.append((passed, running))
        depth = attempt.depth
    return steps


def first_pass_spend(result: TaskResult, kind: BudgetKind, *, siblings_together: bool = False) -> float | None:
    """Running total at which the replay first reaches a held-out passing attempt; None if none, or if the
    task's spend in this unit was not measured (a partial count is no figure)."""
    if not spend_measured(result, kind):
        return None
    return next((total for passed, total in _charged_steps(result, kind, siblings_together) if passed), None)


def solved_within(result: TaskResult, budget: float, kind: BudgetKind, *, siblings_together: bool = False) -> bool:
    spent = first_pass_spend(result, kind, siblings_together=siblings_together)
    # A relative tolerance so that a tree equal to the budget is not lost to float rounding.
    return spent is not None and spent <= budget * (1 + 1e-9)


def equal_budget(
    base: list[TaskResult],
    arm: list[TaskResult],
    kind: BudgetKind,
    *,
    names: tuple[str, str],
    siblings_together: bool = False,
) -> dict[str, Any]:
    """Success of an arm capped, task by task, at the baseline's spend on that task, paired with the
    baseline's (uncapped) result, on the tasks whose spend was measured on both sides (`tasks`;
    `tasks_not_measured` the others, None in `per_task`). Keys are named after the arms (`names` =
    baseline, arm): for the seed's two, `small_success_rate`, `only_large_solved`, ..."""
    b, a = names
    pairs = [(x, s) for x, s in zip(base, arm, strict=True) if spend_measured(x, kind) and spend_measured(s, kind)]
    capped = [solved_within(s, task_spend(x, kind), kind, siblings_together=siblings_together) for x, s in pairs]
    n, solved = len(capped), sum(capped)
    only_base = sum(x.passed and not c for (x, _), c in zip(pairs, capped, strict=True))
    only_arm = sum(c and not x.passed for (x, _), c in zip(pairs, capped, strict=True))
    per_task: dict[str, bool | None] = {s.task_id: None for s in arm}
    per_task.update({s.task_id: c for (_, s), c in zip(pairs, capped, strict=True)})
    return {
        "kind": kind,
        "tasks": n,
        "tasks_not_measured": len(arm) - n,
        f"{a}_solved": solved,
        f"{a}_success_rate": solved / n if n else None,  # None: no task measured in this unit
        f"{a}_success_rate_ci95": list(wilson_interval(solved, n)) if n else None,
        f"{b}_solved": sum(x.passed for x, _ in pairs),
        f"only_{b}_solved": only_base,
        f"only_{a}_solved": only_arm,
        "mcnemar_p": mcnemar_exact_p(only_base, only_arm),
        "per_task": per_task,
    }


def budget_curve(
    results: list[TaskResult], kind: BudgetKind, *, siblings_together: bool = False
) -> list[tuple[float, float]]:
    """Success rate of an arm as a function of one per-task cap on its spend: (cap, rate) at every cap
    where a task becomes solved (a held-out pass), starting from (0, 0) and ending at the largest task's full
    spend. Over the tasks whose spend was measured; empty when none was."""
    results = [r for r in results if spend_measured(r, kind)]
    n = len(results)
    if not n:
        return []
    reached = sorted(
        s for s in (first_pass_spend(r, kind, siblings_together=siblings_together) for r in results) if s is not None
    )
    curve = [(0.0, 0.0)] + [(spend, (i + 1) / n) for i, spend in enumerate(reached)]
    full = max(task_spend(r, kind) for r in results)
    return curve + [(max(full, curve[-1][0]), curve[-1][1])]
