"""Visible and hidden tests per task: where each dataset's split comes from.

* MBPP: visible = `test_list` (the standard prompt shows them); hidden = `challenge_test_list` where a task
  has one, plus derived tests (tasks/derive.py).
* HumanEval: visible = the examples of the prompt's docstring where they parse (`>>> call` and its result
  on the next line, or `>>> call == value`), else the first assert of `check`; hidden = the other asserts
  of `check` (not those the examples already show) plus derived tests. Docstrings are not always right
  (HumanEval/47's median example, HumanEval/116's): `settle_examples` runs the reference against the
  examples in the sandbox and keeps only those it passes, so a visible test never fails a correct answer.
* built-in tasks: split by hand in builtin.py.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from sizeup.tasks.asserts import parse_test
from sizeup.tasks.types import Task

FLOAT_TOLERANCE = "1e-6"  # HumanEval's own checks compare floats to within 1e-6


def docstring_examples(stub: str, entry_point: str) -> list[str]:
    """The docstring's `>>>` examples of the entry point, as asserts (floats to within 1e-6)."""
    lines = stub.splitlines()
    found: list[str] = []
    i = 0
    while i < len(lines):
        text = lines[i].strip()
        i += 1
        if not text.startswith(">>> "):
            continue
        call = text[4:].split("#", 1)[0].strip()
        result: list[str] = []
        while (
            i < len(lines)
            and (line := lines[i].strip())
            and not line.startswith(">>>")
            and not line.startswith(('"""', "'''"))
        ):
            result.append(line)
            i += 1
        example = _example_assert(call, " ".join(result), entry_point)
        if example is not None:
            found.append(example)
    return found


def _example_assert(call: str, result: str, entry_point: str) -> str | None:
    try:
        expression = ast.parse(call, mode="eval").body
    except SyntaxError:
        return None
    if not result and isinstance(expression, ast.Compare):  # `>>> f(x) == y` with no output line
        source = f"assert {call}"
        parsed = parse_test(source, entry_point)
        return source if parsed is not None and parsed.expected_value()[0] else None
    if not (
        isinstance(expression, ast.Call) and isinstance(expression.func, ast.Name) and expression.func.id == entry_point
    ):
        return None
    try:
        value = ast.literal_eval(result)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    if isinstance(value, float) and math.isfinite(value):
        return f"assert abs({call} - {result}) < {FLOAT_TOLERANCE}"
    return f"assert {call} == {result}"


def split_humaneval(tests: list[str], stub: str, entry_point: str) -> tuple[list[str], list[str]]:
    """(visible, hidden) from the check's asserts and the docstring's examples."""
    examples = docstring_examples(stub, entry_point)
    if not examples:
        return tests[:1], tests[1:]
    shown = {_key(example, entry_point) for example in examples}
    hidden = [test for test in tests if _key(test, entry_point) not in shown or _key(test, entry_point) is None]
    return examples, hidden


def _key(test: str, entry_point: str) -> tuple[str, str] | None:
    """A test's call and expectation, normalised, to tell an assert that repeats an example."""
    parsed = parse_test(test, entry_point)
    if parsed is None:
        return None
    known, value = parsed.expected_value()
    return parsed.call, repr(value) if known else parsed.expected


def settle_examples(tasks: Iterable[Task], sandbox: object, workers: int = 2) -> list[Task]:
    """HumanEval tasks whose visible tests are docstring examples, with every example the reference fails
    dropped (and if none is left, the first hidden test shown instead). Other tasks are returned as they
    are. `sandbox` is a sizeup Sandbox; the reference runs there, never in this process."""
    from sizeup.sandbox.types import Limits, TestOutcome
    from sizeup.verdicts import Status

    limits = Limits(timeout_s=20, test_timeout_s=10)

    def settle(task: Task) -> Task:
        if task.source != "humaneval" or not task.reference or not task.tests:
            return task
        run = sandbox.run(task.reference, task.tests, limits, task.setup_code)  # type: ignore[attr-defined]
        if run.status not in (Status.PASSED, Status.FAILED):
            # Only a test the reference ran and failed is dropped. A run that did not get that far (the sandbox
            # failed, the machine was too slow) says nothing about the examples: the split would then depend on
            # the machine's load, so the import stops instead.
            raise ValueError(
                f"task {task.task_id}: the reference could not be run against its docstring examples "
                f"({run.status}: {' '.join(run.detail.split())[:200]}); import again"
            )
        kept = [t.source for t in run.tests if t.outcome is TestOutcome.PASSED]
        dropped = len(task.tests) - len(kept)
        if not dropped:
            return task
        hidden = list(task.hidden_tests)
        if not kept:
            kept, hidden = hidden[:1], hidden[1:]
        note = f"{dropped} docstring example(s) dropped from the visible tests: the reference fails them"
        return task.model_copy(
            update={
                "tests": kept,
                "hidden_tests": hidden,
                "hidden_note": "; ".join(filter(None, [task.hidden_note, note])),
            }
        )

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(settle, tasks))
