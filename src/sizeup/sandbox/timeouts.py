"""Timeouts that scale with the reference solution's own run time, as EvalPlus does: each test may take
max(floor, factor × the reference's time), so a task whose correct answer needs 3 s is not judged against a
1 s limit, while the floor keeps fast tasks from getting millisecond limits that a busy machine would miss."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from sizeup.sandbox.types import Limits, Sandbox, Status

if TYPE_CHECKING:
    from sizeup.tasks.types import Task

FACTOR = 4.0  # EvalPlus's DEFAULT_GT_TIME_LIMIT_FACTOR


def calibrate(task: Task, sandbox: Sandbox, base: Limits = Limits(), *, factor: float = FACTOR) -> Limits:
    """The limits to judge candidates for `task` with. The floors are `base`'s own: each test gets
    max(base.test_timeout_s, factor × the reference's slowest test) and the whole run
    max(base.timeout_s, factor × the reference's whole run).

    The reference runs once, on the visible and hidden tests together (the held-out judgement runs them all
    under these limits), under `factor` times the base limits, so a slow but correct reference is timed
    rather than cut off. Without a reference, or when it does not pass (its time then says nothing about a
    correct program), `base` comes back unchanged."""
    if task.reference is None or not task.tests:
        return base
    generous = replace(base, timeout_s=base.timeout_s * factor, test_timeout_s=base.test_timeout_s * factor)
    run = sandbox.run(task.reference, [*task.tests, *task.hidden_tests], generous, task.setup_code)
    if run.status is not Status.PASSED:
        return base
    slowest = max(test.seconds for test in run.tests)
    return replace(
        base,
        test_timeout_s=max(base.test_timeout_s, factor * slowest),
        timeout_s=max(base.timeout_s, factor * run.wall_s),
    )
