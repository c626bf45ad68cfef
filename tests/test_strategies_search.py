"""ab-mcts (TreeQuest) and decompose, deterministically: a scripted model client and the real sandbox."""

from __future__ import annotations

import random
import threading
import time

import pytest

from sizeup.models.types import PromptStyle
from sizeup.records import Budget
from sizeup.sandbox import ProcessSandbox
from sizeup.strategies import STRATEGIES
from sizeup.strategies.ab_mcts import ABMCTS, ABMCTSParams
from sizeup.strategies.decompose import Decompose, DecomposeParams, PlanError, parse_plan
from sizeup.tasks import Task
from sizeup.verdicts import Status
from test_strategies_scripted import FAIL, HALF, PASS, TASK, Scripted


@pytest.fixture(scope="module")
def sandbox():
    with ProcessSandbox() as box:
        yield box


def shape(outcome) -> list[tuple]:
    return [(a.attempt_id, a.parent_id, a.kind, a.model, a.status) for a in outcome.attempts]


def test_both_strategies_are_registered_by_name():
    assert {"ab-mcts", "decompose"} <= set(STRATEGIES)


def test_ab_mcts_is_reproducible_and_stops_at_the_first_pass(sandbox):
    script = lambda prompt, seed, model: PASS if seed == 5 else HALF if seed % 2 else FAIL  # noqa: E731
    first = ABMCTS(Scripted("m", script), sandbox, ABMCTSParams(n=10, seed=0, max_tokens=10)).solve(TASK)
    again = ABMCTS(Scripted("m", script), sandbox, ABMCTSParams(n=10, seed=0, max_tokens=10)).solve(TASK)
    assert shape(first) == shape(again)  # NumPy seeded per task: TreeQuest's choices repeat
    assert first.stopped_by == "solved" and first.best.status == Status.PASSED
    assert len(first.attempts) == 6 and first.attempts[-1].seed == 5
    kinds = {a.kind for a in first.attempts}
    assert kinds <= {"generate", "repair"} and "generate" in kinds
    for node in first.attempts:  # wider steps hang from the root, deeper ones from the node they refine
        assert (node.kind == "generate") == (node.parent_id is None)


def test_ab_mcts_runs_n_nodes_without_a_pass_and_refines_the_best(sandbox):
    outcome = ABMCTS(Scripted("m", lambda p, s, m: HALF), sandbox, ABMCTSParams(n=8, max_tokens=10)).solve(TASK)
    assert len(outcome.attempts) == 8 and outcome.stopped_by == "exhausted"
    assert any(a.kind == "repair" for a in outcome.attempts)  # half-passing nodes draw refinements


def test_ab_mcts_tells_in_order_whatever_order_the_results_arrive_in(sandbox):
    def slow(order_seed: int):
        rng = random.Random(order_seed)

        def script(prompt, seed, model):
            time.sleep(rng.uniform(0, 0.05))  # replies come back in a different order each run
            return HALF if seed % 3 else FAIL

        return script

    outcomes = [
        ABMCTS(Scripted("m", slow(k)), sandbox, ABMCTSParams(n=9, parallel=3, max_tokens=10)).solve(TASK)
        for k in (1, 2)
    ]
    assert shape(outcomes[0]) == shape(outcomes[1])


def test_ab_mcts_stops_at_its_budget(sandbox):
    outcome = ABMCTS(
        Scripted("m", lambda p, s, m: FAIL), sandbox, ABMCTSParams(n=10, max_tokens=10), budget=Budget(calls=3)
    ).solve(TASK)
    assert len(outcome.attempts) == 3 and outcome.stopped_by == "budget_calls"


def test_ab_mcts_chooses_among_models_as_actions(sandbox):
    a, b = Scripted("a", lambda p, s, m: FAIL), Scripted("b", lambda p, s, m: HALF)
    outcome = ABMCTS([a, b], sandbox, ABMCTSParams(n=12, max_tokens=10)).solve(TASK)
    models = [node.model for node in outcome.attempts]
    assert set(models) == {"a", "b"} and len(a.calls) + len(b.calls) == 12
    assert models.count("b") > models.count("a")  # the model whose nodes score better is chosen more


def test_ab_mcts_bookkeeping_is_timed(sandbox):
    strategy = ABMCTS(Scripted("m", lambda p, s, m: FAIL), sandbox, ABMCTSParams(n=4, max_tokens=10))
    strategy.solve(TASK)
    outcome = strategy.solve(TASK)
    assert 0 < strategy.bookkeeping_s < 5 and outcome.bookkeeping_s == strategy.bookkeeping_s


# -- decompose ---------------------------------------------------------------------------------------------

QUAD = Task(
    task_id="t/quad",
    source="test",
    prompt="Write quadruple(x), four times x.",
    entry_point="quadruple",
    tests=["assert quadruple(1) == 4", "assert quadruple(3) == 12"],
)
PLAN = "Helpers:\n1. def double(x): returns two times x\n"
DOUBLE = "```python\ndef double(x):\n    return 2 * x\n```"
BROKEN_DOUBLE = "```python\ndef double(x):\n    return x / undefined_name\n```"
COMPOSE = "```python\ndef quadruple(x):\n    return double(double(x))\n```"


def decomposer(plan: str = PLAN, double: str = DOUBLE, fixed: str = DOUBLE, compose: str = COMPOSE):
    calls: list[str] = []
    lock = threading.Lock()

    def script(prompt, seed, model):
        text = prompt.user
        kind = (
            "plan"
            if "List 1 to" in text
            else "fix"
            if "This helper for the task" in text
            else "implement"
            if "Write the Python function `def" in text
            else "compose"
            if "already defined" in text
            else "other"
        )
        with lock:
            calls.append(kind)
        reply = {"plan": plan, "implement": double, "fix": fixed, "compose": compose}.get(kind)
        return reply.strip("`").removeprefix("python\n") if reply else "def quadruple(x):\n    return 4 * x"

    return script, calls


def test_parse_plan_reads_helpers_and_refuses_what_cannot_be_used():
    helpers = parse_plan("1. def double(x): twice x\n- def half(x: int) -> float: x / 2\nnoise", "quadruple", 3)
    assert [(h.name, h.args, h.purpose) for h in helpers] == [("double", "x", "twice x"), ("half", "x: int", "x / 2")]
    for bad, why in (
        ("I cannot help.", "no helper"),
        ("def quadruple(x): itself", "task's own function"),
        ("def f(x): a\ndef f(y): b", "twice"),
    ):
        with pytest.raises(PlanError, match=why):
            parse_plan(bad, "quadruple", 3)


def test_decompose_plans_implements_and_composes(sandbox):
    script, calls = decomposer()
    outcome = Decompose(Scripted("m", script), sandbox, DecomposeParams(max_tokens=10)).solve(QUAD)
    assert calls == ["plan", "implement", "compose"]
    assert [(a.attempt_id, a.kind, a.executed) for a in outcome.attempts] == [
        ("0", "plan", False),
        ("0.double", "implement", False),
        ("0.compose", "compose", True),
    ]
    assert outcome.best.attempt_id == "0.compose" and outcome.best.status == Status.PASSED
    assert outcome.stopped_by == "solved" and "def double" in outcome.best.code


def test_a_base_models_helper_body_gets_its_signature_back(sandbox):
    """A completion-style model continues `def double(x):` and so replies with the body alone."""
    script, calls = decomposer(double="    return 2 * x\n")
    client = Scripted("base", script)
    client.style = PromptStyle.COMPLETION
    outcome = Decompose(client, sandbox, DecomposeParams(max_tokens=10)).solve(QUAD)
    assert calls == ["plan", "implement", "compose"]
    assert outcome.best.status == Status.PASSED, outcome.best.feedback
    assert "def double(x):\n    return 2 * x" in outcome.best.code


def test_an_unusable_plan_falls_back_to_a_direct_attempt_and_says_why(sandbox):
    script, calls = decomposer(plan="Sure! First, think about it.")
    outcome = Decompose(Scripted("m", script), sandbox, DecomposeParams(max_tokens=10)).solve(QUAD)
    plan, direct = outcome.attempts[:2]
    assert "no helper" in plan.note and direct.kind == "generate" and direct.executed
    assert direct.status == Status.PASSED and calls[:2] == ["plan", "other"]


def test_a_failing_helper_is_repaired_without_planning_again(sandbox):
    script, calls = decomposer(double=BROKEN_DOUBLE)
    outcome = Decompose(Scripted("m", script), sandbox, DecomposeParams(max_tokens=10)).solve(QUAD)
    assert calls == ["plan", "implement", "compose", "fix"]
    composed, repair = outcome.attempts[2:]
    assert composed.status != Status.PASSED and "NameError" in composed.feedback
    assert repair.note == "repairs double" and repair.parent_id == composed.attempt_id
    assert repair.status == Status.PASSED and outcome.stopped_by == "solved"


def test_a_composition_that_repeats_a_helper_does_not_shadow_the_helpers_repair(sandbox):
    # The compose reply brings its own copy of the broken helper: kept in the composition, it would be defined
    # after the repaired helper and override it, and every repair of the helper would change nothing.
    repeating = "```python\ndef double(x):\n    return x / undefined_name\n\n" + COMPOSE.removeprefix("```python\n")
    script, calls = decomposer(double=BROKEN_DOUBLE, compose=repeating)
    outcome = Decompose(Scripted("m", script), sandbox, DecomposeParams(max_tokens=10)).solve(QUAD)
    assert calls == ["plan", "implement", "compose", "fix"]
    assert outcome.attempts[-1].status == Status.PASSED and outcome.attempts[-1].code.count("def double") == 1


def test_repairs_that_do_not_help_lead_to_a_new_plan_within_max_calls(sandbox):
    script, calls = decomposer(double=BROKEN_DOUBLE, fixed=BROKEN_DOUBLE)
    outcome = Decompose(
        Scripted("m", script), sandbox, DecomposeParams(max_tokens=10, replan_after=2, max_calls=9)
    ).solve(QUAD)
    assert calls[:6] == ["plan", "implement", "compose", "fix", "fix", "plan"]
    assert len(calls) <= 9 and outcome.stopped_by == "exhausted"
    model_calls, executions = len(outcome.attempts), sum(a.executed for a in outcome.attempts)
    assert executions < model_calls  # plans and helpers are calls without a sandbox run


def test_compare_and_export_give_each_tree_building_arms_shape(tmp_path):
    import test_strategies_scripted  # noqa: F401 - registers the "scripted" provider
    from sizeup.analysis import compare
    from sizeup.cli.runner import RunConfig, Runner
    from sizeup.records import ArmSpec
    from sizeup.store import open_store
    from sizeup.store.transfer import export_run

    arms = [
        ArmSpec(name="one", strategy="single", models=["half"]),
        ArmSpec(name="mcts", strategy="ab-mcts", models=["half", "passer"], params={"n": 6}),
    ]
    with open_store(f"sqlite:///{tmp_path / 's.db'}") as store:
        run_id = Runner(store, RunConfig(provider="scripted", sandbox="process"), arms).run([TASK, QUAD])
        data = compare(store.get_run(run_id), store.results(run_id))
        export_run(store, run_id, "jsonl", tmp_path / "rows.jsonl")
    one, mcts = data["arms"]
    assert "tree_shape" not in one and mcts["strategy"] == "ab-mcts"
    assert one["strategy_overhead_pct"] is None and 0 < mcts["strategy_overhead_pct"] < 100
    shape = mcts["tree_shape"]
    assert set(shape) >= {"wider", "deeper", "max_depth", "max_width", "first_pass_from"}
    assert shape["wider"] >= 2 and sum(shape["first_pass_from"].values()) == mcts["solved"]
    assert all(key.endswith("by passer") for key in shape["first_pass_from"])
    rows = (tmp_path / "rows.jsonl").read_text().splitlines()
    assert all('"wider_steps"' in row and '"first_pass_from"' in row for row in rows)
