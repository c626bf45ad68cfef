"""The harness self-test: every MBPP reference solution must pass its own tests, in each sandbox backend."""

from __future__ import annotations

import pytest

from requirements import need
from sizeup.sandbox import IsolatedSandbox, Limits, ProcessSandbox, Status, check_references, unavailable_reason
from sizeup.tasks import load_mbpp
from sizeup.tasks.types import Task


@pytest.fixture(params=["process", "isolated"])
def sandbox(request):
    if request.param == "process":
        yield ProcessSandbox()
        return
    reason = unavailable_reason()
    need("the isolated sandbox", "SIZEUP_REQUIRE_BWRAP", not reason, reason)
    with IsolatedSandbox() as isolated:
        yield isolated


def test_every_mbpp_reference_passes(mbpp_path, sandbox):
    tasks = list(load_mbpp(mbpp_path))
    assert len(tasks) == 974
    # MBPP 123 alone takes ~3 s here, and the machine is shared: room enough that a busy moment is no failure.
    report = check_references(tasks, sandbox, Limits(timeout_s=60, test_timeout_s=30))
    print(f"\n{report.summary()}")
    for task_id, status, reason in report.failures:
        print(f"  {task_id}: {status.value}: {reason}")
    assert report.failures == []
    assert report.total == report.passed == 974 and report.skipped == 0
    assert report.backend == sandbox.name


def test_report_counts_skipped_and_names_the_failing_test(sandbox):
    def task(task_id: str, reference: str | None) -> Task:
        return Task(
            task_id=task_id,
            source="builtin",
            prompt="square",
            reference=reference,
            tests=["assert square(2) == 4", "assert square(3) == 9"],
        )

    tasks = [
        task("good", "def square(x):\n    return x * x\n"),
        task("bad", "def square(x):\n    return 4\n"),
        task("none", None),
    ]
    report = check_references(tasks, sandbox, workers=2)
    assert (report.total, report.passed, report.skipped) == (2, 1, 1)
    assert report.failures == [
        ("bad", Status.FAILED, "assert square(3) == 9  # failed: AssertionError: the call returned 4")
    ]
    assert report.parent_compared == 4 and report.parent_compared_share == 1.0
    assert report.seconds > 0
