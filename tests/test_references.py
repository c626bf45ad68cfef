"""The harness self-test: every MBPP reference solution must pass its own tests in the process sandbox."""

from __future__ import annotations

from sizeup.sandbox import ProcessSandbox, Status, check_references
from sizeup.tasks import load_mbpp
from sizeup.tasks.types import Task


def test_every_mbpp_reference_passes(mbpp_path):
    tasks = list(load_mbpp(mbpp_path))
    assert len(tasks) == 974
    report = check_references(tasks, ProcessSandbox())
    print(f"\n{report.summary()}")
    for task_id, status, reason in report.failures:
        print(f"  {task_id}: {status.value}: {reason}")
    assert report.failures == []
    assert report.total == report.passed == 974 and report.skipped == 0
    assert report.backend == "process"


def test_report_counts_skipped_and_names_the_failing_test():
    def task(task_id: str, reference: str | None) -> Task:
        return Task(task_id=task_id, source="builtin", prompt="square", reference=reference,
                    tests=["assert square(2) == 4", "assert square(3) == 9"])

    tasks = [task("good", "def square(x):\n    return x * x\n"),
             task("bad", "def square(x):\n    return 4\n"),
             task("none", None)]
    report = check_references(tasks, ProcessSandbox(), workers=2)
    assert (report.total, report.passed, report.skipped) == (2, 1, 1)
    assert report.failures == [("bad", Status.FAILED, "assert square(3) == 9  # failed: AssertionError")]
    assert report.seconds > 0
