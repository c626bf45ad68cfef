"""Self-test: run each task's known-good solution against its own tests. Anything short of 100% is a
harness or dataset problem, found before it silently fails the models' correct answers."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sizeup.sandbox.expect import PARENT
from sizeup.sandbox.types import Execution, Limits, Sandbox, Status, TestOutcome
from sizeup.sandbox.verdict import DEFAULT_LIMITS

if TYPE_CHECKING:
    from sizeup.tasks.types import Task


@dataclass
class ReferenceReport:
    total: int  # tasks with a reference, all of them run (visible and hidden tests together)
    passed: int
    failures: list[tuple[str, Status, str]] = field(default_factory=list)  # (task_id, status, reason)
    seconds: float = 0.0
    backend: str = ""
    skipped: int = 0  # tasks without a reference
    visible_total: int = 0  # tests, over all tasks
    visible_passed: int = 0
    hidden_total: int = 0
    hidden_passed: int = 0
    parent_compared: int = 0  # tests judged outside the program's process (sandbox/expect.py)
    parent_compared_share: float = 0.0  # of all tests run

    def summary(self) -> str:
        return f"{self.passed}/{self.total} references passed in {self.seconds:.1f} s on {self.backend!r}" + (
            f" ({self.skipped} without a reference)" if self.skipped else ""
        )


def _reason(execution: Execution) -> str:
    """One line: the first test that did not pass, else the run's own detail."""
    for test in execution.tests:
        if test.outcome not in (TestOutcome.PASSED, TestOutcome.NOT_RUN):
            return f"{test.source.strip()[:120]}  # {test.outcome.value}: {test.message}".rstrip(": ")
    return execution.detail or execution.status.value


def check_references(
    tasks: Iterable[Task], sandbox: Sandbox, limits: Limits = DEFAULT_LIMITS, workers: int | None = None
) -> ReferenceReport:
    start = time.perf_counter()
    tasks = list(tasks)
    runnable = [t for t in tasks if t.reference is not None]

    def check(task: Task) -> Execution:
        return sandbox.run(task.reference or "", [*task.tests, *task.hidden_tests], limits, task.setup_code)

    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        executions = list(pool.map(check, runnable))
    failures: list[tuple[str, Status, str]] = [
        (task.task_id, ex.status, _reason(ex))
        for task, ex in zip(runnable, executions, strict=True)
        if ex.status is not Status.PASSED
    ]
    passed_tests = [[t.outcome is TestOutcome.PASSED for t in ex.tests] for ex in executions]
    visible = [(len(task.tests), ok[: len(task.tests)]) for task, ok in zip(runnable, passed_tests, strict=True)]
    hidden = [(len(task.hidden_tests), ok[len(task.tests) :]) for task, ok in zip(runnable, passed_tests, strict=True)]
    modes = [t.mode for ex in executions for t in ex.tests]
    parent = sum(mode == PARENT for mode in modes)
    return ReferenceReport(
        parent_compared=parent,
        parent_compared_share=parent / len(modes) if modes else 0.0,
        visible_total=sum(n for n, _ in visible),
        visible_passed=sum(sum(ok) for _, ok in visible),
        hidden_total=sum(n for n, _ in hidden),
        hidden_passed=sum(sum(ok) for _, ok in hidden),
        total=len(runnable),
        passed=len(runnable) - len(failures),
        failures=failures,
        seconds=time.perf_counter() - start,
        backend=sandbox.name,
        skipped=len(tasks) - len(runnable),
    )
