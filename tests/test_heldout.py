"""Held-out tests: where visible and hidden tests come from, derived tests with the reference as oracle,
and runs whose searches never see a hidden test while their verdicts cover them."""

from __future__ import annotations

import pytest

from sizeup.analysis import compare
from sizeup.cli.runner import RunConfig, Runner
from sizeup.models import register_provider
from sizeup.records import ArmSpec
from sizeup.sandbox import Limits, ProcessSandbox
from sizeup.sandbox.types import Execution
from sizeup.store import open_store
from sizeup.tasks import Task, builtin_tasks, load_humaneval_package, load_mbpp
from sizeup.tasks.asserts import Check, parse_test
from sizeup.tasks.derive import derive_tests, mutate, with_derived
from sizeup.tasks.heldout import docstring_examples, settle_examples
from sizeup.verdicts import Status
from test_strategies_scripted import Scripted


@pytest.fixture(scope="module")
def sandbox():
    with ProcessSandbox() as box:
        yield box


@pytest.fixture(scope="module")
def humaneval() -> dict[str, Task]:
    return {t.task_id: t for t in load_humaneval_package()}


@pytest.fixture(scope="module")
def mbpp(mbpp_path) -> dict[str, Task]:
    return {t.task_id: t for t in load_mbpp(mbpp_path)}


def test_the_assert_forms_parse_into_a_call_and_an_expectation():
    eq = parse_test("assert add(1, [2, 3]) == (4, 'x')", "add")
    assert (eq.func, eq.call, eq.args, eq.check, eq.expected) == (
        "add",
        "add(1, [2, 3])",
        ("1", "[2, 3]"),
        Check.EQUAL,
        "(4, 'x')",
    )
    assert eq.literal_args() == ([1, [2, 3]], {})
    flipped = parse_test("assert 5 == add(2, 3)", "add")
    assert flipped.call == "add(2, 3)" and flipped.expected == "5"
    humaneval = parse_test("candidate = median\nassert candidate([5]) == 5", "median")
    assert humaneval.func == "median" and humaneval.call == "median([5])"
    assert parse_test("assert f(1) is True", "f").check is Check.TRUE
    assert parse_test("assert not f(1)", "f").check is Check.FALSE
    close = parse_test("assert math.isclose(f(2), 3.14, rel_tol=0.001)", "f")
    assert close.check is Check.CLOSE and close.tolerance == {"rel_tol": "0.001"}
    assert parse_test("assert set(f(1)) == set([1, 2])", "f").check is Check.SET_EQUAL
    within = parse_test("assert abs(f(1) - 0.5) < 1e-6", "f")
    assert within.check is Check.ABS_WITHIN and within.to_source("f(2)", "0.25") == "assert abs(f(2) - 0.25) < 1e-06"
    for unparsed in ("assert int(f(1)) == 3", "for x in range(3):\n    assert f(x)", "assert f(1) == f(2)"):
        assert parse_test(unparsed, "f") is None


def test_mutations_keep_type_and_shape():
    import random

    rng = random.Random(0)
    for value in (7, 0, -3, 2.5, "hello", (1, "a", 3.0), [1, 2, 3], {"a": 1, "b": [2]}, {1, 2}, True):
        for _ in range(20):
            moved = mutate(value, rng)
            assert type(moved) is type(value)
            if isinstance(value, tuple):
                assert len(moved) == len(value)
            if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                assert moved >= 0


def test_humaneval_shows_the_docstrings_examples_and_holds_out_the_rest(humaneval):
    task = humaneval["HumanEval/0"]
    assert task.tests == [
        "assert has_close_elements([1.0, 2.0, 3.0], 0.5) == False",
        "assert has_close_elements([1.0, 2.8, 3.0, 4.0, 5.0, 2.0], 0.3) == True",
    ]
    assert len(task.hidden_tests) == 7 and all("candidate" in t for t in task.hidden_tests)
    assert docstring_examples(humaneval["HumanEval/2"].stub, "truncate_number") == [
        "assert abs(truncate_number(3.5) - 0.5) < 1e-6"
    ]
    # No example in its docstring: the first assert of check is shown, the others held out.
    no_examples = next(t for t in humaneval.values() if ">>>" not in (t.stub or "") and len(t.hidden_tests) > 1)
    assert len(no_examples.tests) == 1 and "candidate" in no_examples.tests[0]


def test_a_docstring_example_the_reference_fails_is_never_a_visible_test(humaneval, sandbox):
    # HumanEval/47's docstring says median([-10, 4, 6, 1000, 10, 20]) is 15.0; the reference says 8.0.
    task = humaneval["HumanEval/47"]
    assert any("15.0" in t for t in task.tests)
    (settled,) = settle_examples([task], sandbox)
    assert not any("15.0" in t for t in settled.tests) and settled.tests
    assert "dropped" in settled.hidden_note


def test_examples_are_kept_when_the_reference_could_not_be_run(humaneval):
    # A sandbox that failed (a harness error) judged nothing: no example is dropped, the import stops.
    class FailingSandbox:
        def run(self, code, tests, limits, setup_code=None):
            return Execution.none_run(Status.HARNESS_ERROR, tests, "the launcher could not start")

    with pytest.raises(ValueError, match="HumanEval/47: the reference could not be run .*harness_error"):
        settle_examples([humaneval["HumanEval/47"]], FailingSandbox())


def test_builtin_tasks_hold_out_their_last_two_tests():
    for task in builtin_tasks():
        assert len(task.hidden_tests) == 2 and len(task.tests) >= 3


def test_derived_tests_pass_the_reference_are_reproducible_and_stay_hidden(mbpp, sandbox):
    tasks = [mbpp[str(i)] for i in range(2, 12)]
    first = derive_tests(tasks, sandbox, per_task=6, seed=3)
    again = derive_tests(tasks, sandbox, per_task=6, seed=3)
    assert [d.tests for d in first.derived] == [d.tests for d in again.derived]  # same seed, same tests
    assert first.with_at_least(5) >= 8
    other = derive_tests(tasks[:3], sandbox, per_task=6, seed=4)
    assert [d.tests for d in other.derived] != [d.tests for d in first.derived[:3]]
    for task, derived in zip(tasks, first.derived, strict=True):
        updated = with_derived(task, derived, 3)
        assert updated.tests == task.tests and set(derived.tests) <= set(updated.hidden_tests)
        run = sandbox.run(task.reference, [*updated.tests, *updated.hidden_tests], Limits(timeout_s=20))
        assert run.status is Status.PASSED, (task.task_id, run.feedback())
        assert "seed 3" in updated.hidden_note
        assert with_derived(updated, derived, 3).hidden_tests == updated.hidden_tests  # re-deriving replaces


# A test-gaming answer: the asserted outputs for the asserted inputs, garbage for anything else.
GAMING = {
    "2": "def similar_elements(a, b):\n    return {((3, 4, 5, 6), (5, 7, 4, 10)): (4, 5), "
    "((1, 2, 3, 4), (5, 4, 3, 7)): (3, 4), ((11, 12, 14, 13), (17, 15, 14, 13)): (13, 14)}.get((a, b), ())",
    "3": "def is_not_prime(n):\n    return {2: False, 10: True, 35: True}.get(n, False)",
    "8": "def square_nums(nums):\n    table = {(1, 2, 3, 4, 5, 6, 7, 8, 9, 10): [1, 4, 9, 16, 25, 36, 49, 64, 81, 100],"
    " (10, 20, 30): [100, 400, 900], (12, 15): [144, 225]}\n    return table.get(tuple(nums), [])",
}


def test_a_test_gaming_answer_passes_the_visible_tests_and_fails_the_hidden_ones(mbpp, sandbox):
    tasks = [mbpp[task_id] for task_id in GAMING]
    report = derive_tests(tasks, sandbox, per_task=10, seed=0)
    for task, derived in zip(tasks, report.derived, strict=True):
        task = with_derived(task, derived, 0)
        visible = sandbox.run(GAMING[task.task_id], task.tests, Limits(timeout_s=10))
        both = sandbox.run(GAMING[task.task_id], [*task.tests, *task.hidden_tests], Limits(timeout_s=10))
        assert visible.status is Status.PASSED, task.task_id
        assert both.status is Status.FAILED, task.task_id


HIDDEN = ["assert double(21) == 42", "assert double(-4) == -8"]
TASK = Task(
    task_id="t/double",
    source="test",
    prompt="Write double(x).",
    entry_point="double",
    tests=["assert double(1) == 2", "assert double(0) == 0"],
    hidden_tests=HIDDEN,
)
# Passes the visible tests only; the adaptive arm keeps repairing it (its feedback would carry failing tests).
GAMED = "def double(x):\n    return {1: 2, 0: 0}.get(x, 7)"
CORRECT = "def double(x):\n    return 2 * x"
HALF = "def double(x):\n    return 2"


@register_provider("heldout-script")
def _provider(model: str, settings) -> Scripted:
    code = {"gamer": GAMED, "solver": CORRECT, "half": HALF}[model]
    return Scripted(model, lambda prompt, seed, m: code)


def test_no_hidden_test_reaches_a_prompt_or_a_feedback_and_the_verdict_covers_them(tmp_path):
    arms = [
        ArmSpec(name="gamer", strategy="single", models=["gamer"]),
        ArmSpec(name="solver", strategy="single", models=["solver"]),
        ArmSpec(name="half", strategy="adaptive", models=["half"], params={"max_depth": 2}),
    ]
    with open_store(f"sqlite:///{tmp_path / 's.db'}") as store:
        run_id = Runner(store, RunConfig(provider="heldout-script", sandbox="process"), arms).run([TASK])
        results = {r.arm: r for r in store.results(run_id)}
        run = store.get_run(run_id)
    for result in results.values():
        for attempt in result.attempts:
            for text in (attempt.prompt, attempt.feedback):
                assert "double(21)" not in text and "double(-4)" not in text
        assert result.hidden_total == 2 and result.method["verdict"] == "visible-feedback/hidden-verdict"
    gamer, solver = results["gamer"], results["solver"]
    assert gamer.visible_status == Status.PASSED and gamer.status == Status.FAILED and gamer.overfit
    assert gamer.hidden_passed == 0 and (gamer.visible_passed, gamer.visible_total) == (2, 2)
    assert solver.passed and not solver.overfit and solver.hidden_passed == 2
    data = compare(run, list(results.values()))
    assert data["protocol"] == "visible-feedback/hidden-verdict"
    by_arm = {arm["name"]: arm for arm in data["arms"]}
    assert by_arm["gamer"]["success_rate"] == 0 and by_arm["gamer"]["visible_success_rate"] == 1
    assert by_arm["gamer"]["overfit_rate"] == 1 and by_arm["solver"]["success_rate"] == 1


def test_tasks_without_hidden_tests_keep_the_seeds_verdict(tmp_path):
    plain = TASK.model_copy(update={"hidden_tests": []})
    with open_store(f"sqlite:///{tmp_path / 's.db'}") as store:
        run_id = Runner(
            store,
            RunConfig(provider="heldout-script", sandbox="process"),
            [ArmSpec(name="gamer", strategy="single", models=["gamer"])],
        ).run([plain])
        (result,) = store.results(run_id)
        run = store.get_run(run_id)
    assert result.passed and result.hidden_total is None and result.method["verdict"] == "tests-are-feedback"
    assert compare(run, [result])["protocol"] == "tests-are-feedback"


def test_the_mbpp_3shot_protocol_prompts_with_three_solved_tasks_and_runs_the_test_split(mbpp):
    from sizeup.cli.runner import protocol_tasks
    from sizeup.strategies.prompts import MbppThreeShot

    prompter = MbppThreeShot([mbpp["2"], mbpp["3"], mbpp["4"]])
    prompt = prompter.first_attempt(mbpp["11"])
    assert prompt.completion.count("[BEGIN]") == 4 and prompt.completion.count("[DONE]") == 3
    assert prompt.completion.endswith(mbpp["11"].tests[-1] + "\n[BEGIN]\n") and prompt.stop == ("[DONE]",)
    assert (mbpp["2"].reference or "").strip() in prompt.completion and prompt.user == prompt.completion
    assert prompter.clean("[BEGIN]\ndef f():\n    return 1\n[DONE]\nmore") == "def f():\n    return 1"
    selected = {t.task_id for t in protocol_tasks("mbpp-3shot", list(mbpp.values()))}
    assert len(selected) == 500 and {"11", "510"} <= selected and not {"2", "3", "4", "10", "511"} & selected


def test_a_search_that_made_no_program_failed_its_tests(sandbox):
    from sizeup.cli.runner import judge_held_out
    from sizeup.records import Attempt

    plan = Attempt(attempt_id="0", depth=0, kind="plan", status=Status.UNVERIFIED, executed=False)
    task = builtin_tasks()[0]
    held = judge_held_out(task, plan, sandbox, Limits())
    assert (held.status, held.tests_passed, held.hidden_passed) == (Status.FAILED, 0, 0)
    assert held.tests_total == len(task.tests) + len(task.hidden_tests)


def test_mutated_sets_give_the_same_test_text_whatever_the_string_hash_seed():
    import os
    import subprocess
    import sys

    code = (
        "import random\nfrom sizeup.tasks.derive import mutate, stable_repr\nrng = random.Random(3)\n"
        "print([stable_repr(mutate({'apple', 'kiwi', 'fig', 'plum', 'pear'}, rng)) for _ in range(8)])"
    )
    texts = {
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": str(h)}
        ).stdout
        for h in range(5)
    }
    assert len(texts) == 1 and "apple" in texts.pop()
