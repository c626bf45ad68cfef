"""Every strategy rule, deterministically: a scripted model client (its reply is a function of the prompt, the
seed and which model it is) driving the real process sandbox, and the runner storing what the strategies made.

The task's two tests pass for `answer = 2` and fail otherwise; `answer = 1` passes one of the two, so a
script can make any node fail, half-pass or pass by the code it returns."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from sizeup.cli.runner import RunConfig, Runner
from sizeup.models import ModelError, register_provider
from sizeup.models.types import Completion, GenerationParams, ModelClient, Prompt, PromptStyle, Usage
from sizeup.records import ArmSpec, Budget
from sizeup.sandbox import ProcessSandbox
from sizeup.store import open_store
from sizeup.strategies import (
    AdaptiveBranching,
    AdaptiveParams,
    BestOfN,
    BestOfNParams,
    SingleParams,
    SingleShot,
    best_of,
)
from sizeup.tasks import Task
from sizeup.verdicts import Status

TASK = Task(
    task_id="t/scripted",
    source="test",
    prompt="Define answer.",
    entry_point=None,
    tests=["assert answer >= 1", "assert answer == 2"],
)
FAIL, HALF, PASS = "answer = 0", "answer = 1", "answer = 2"

Script = Callable[[Prompt, int | None, str], str]


class Scripted(ModelClient):
    """Replies `script(prompt, seed, model)` as a fenced block (raw for a completion-style client); records
    every call. Raises ModelError for a reply of "!error"."""

    provider = "scripted"

    def __init__(self, model: str, script: Script, tokens: int = 4):
        self.model, self.script, self.tokens = model, script, tokens
        self.style = PromptStyle.CHAT
        self.calls: list[tuple[int | None, float, str]] = []  # (seed, temperature, kind of prompt)
        self._lock = threading.Lock()

    def generate(self, prompt: Prompt, params: GenerationParams = GenerationParams()) -> Completion:
        with self._lock:
            self.calls.append(
                (params.seed, params.temperature, "repair" if "does not pass yet" in prompt.user else "first")
            )
        code = self.script(prompt, params.seed, self.model)
        if code == "!error":
            raise ModelError(f"{self.model}: the server went away")
        # A chat model fences its code; a base model continues the document, which ends where code begins.
        return Completion(
            code if self.style is PromptStyle.COMPLETION else f"```python\n{code}\n```",
            Usage(prompt_tokens=10, completion_tokens=self.tokens, total_s=0.01, source="server"),
            "stop",
        )


def always(code: str) -> Script:
    return lambda prompt, seed, model: code


@pytest.fixture(scope="module")
def sandbox():
    with ProcessSandbox() as box:
        yield box


def adaptive(client, sandbox, **params) -> AdaptiveBranching:
    return AdaptiveBranching(client, sandbox, AdaptiveParams(max_tokens=10, **params))


def test_single_is_one_greedy_call(sandbox):
    client = Scripted("m", always(HALF))
    outcome = SingleShot(client, sandbox, SingleParams(seed=7)).solve(TASK)
    assert [a.attempt_id for a in outcome.attempts] == ["0"] and client.calls == [(7, 0.0, "first")]
    assert outcome.best.status == Status.FAILED and outcome.best.tests_passed == 1
    assert outcome.stopped_by == "exhausted"


def test_adaptive_expands_the_best_failure_with_distinct_seeds_until_max_depth(sandbox):
    client = Scripted("m", always(FAIL))
    outcome = adaptive(client, sandbox, max_depth=2, branching=3, seed=5).solve(TASK)
    assert [a.attempt_id for a in outcome.attempts] == ["0", "0.0", "0.1", "0.2", "0.0.0", "0.0.1", "0.0.2"]
    seeds = [seed for seed, _, _ in client.calls]
    assert len(set(seeds)) == 7 and seeds[0] == 5  # every node samples with a seed of its own
    assert [t for _, t, _ in client.calls] == [0.0] + [0.8] * 6  # the root greedy, repairs sampled
    assert [a.seq for a in outcome.attempts] == list(range(7))
    assert [a.kind for a in outcome.attempts] == ["generate"] + ["repair"] * 6
    assert outcome.stopped_by == "exhausted" and outcome.depth_reached == 2


def test_adaptive_stops_at_the_first_pass_and_keeps_it(sandbox):
    # The root fails; the second child passes: no grandchildren are made.
    script = lambda prompt, seed, model: PASS if seed == 2 else FAIL  # noqa: E731 - seeds: root 0, children 1, 2
    outcome = adaptive(Scripted("m", script), sandbox, max_depth=3, branching=2).solve(TASK)
    assert [a.attempt_id for a in outcome.attempts] == ["0", "0.0", "0.1"]
    assert outcome.best.attempt_id == "0.1" and outcome.stopped_by == "solved"


def test_a_beam_of_two_expands_the_two_best_failures(sandbox):
    # Children: 0.0 half-passes, 0.1 fails, 0.2 half-passes: the beam keeps 0.0 and 0.2, best first.
    by_seed = {1: HALF, 2: FAIL, 3: HALF}
    script = lambda prompt, seed, model: by_seed.get(seed, FAIL)  # noqa: E731
    outcome = adaptive(Scripted("m", script), sandbox, max_depth=2, branching=3, beam=2).solve(TASK)
    parents = [a.parent_id for a in outcome.attempts if a.depth == 2]
    assert parents == ["0.0"] * 3 + ["0.2"] * 3


def test_harness_error_parents_are_never_expanded(sandbox):
    # The first child's model call fails: it is a harness error, and the beam of two takes the others.
    script = lambda prompt, seed, model: "!error" if seed == 1 else FAIL  # noqa: E731
    outcome = adaptive(Scripted("m", script), sandbox, max_depth=2, branching=3, beam=2).solve(TASK)
    broken = next(a for a in outcome.attempts if a.attempt_id == "0.0")
    assert broken.status == Status.HARNESS_ERROR and "went away" in broken.error
    assert {a.parent_id for a in outcome.attempts if a.depth == 2} == {"0.1", "0.2"}


def test_more_than_ten_siblings_keep_their_order_and_the_earliest_equal_one_is_kept(sandbox):
    client = Scripted("m", always(HALF))
    outcome = adaptive(client, sandbox, max_depth=1, branching=12).solve(TASK)
    assert [a.attempt_id for a in outcome.attempts][1:] == [f"0.{i}" for i in range(12)]
    assert outcome.best.attempt_id == "0"  # all half-pass: the shallowest, then the first made
    tied = [a.model_copy(update={"seq": None}) for a in outcome.attempts if a.depth == 1]
    assert best_of(list(reversed(tied))).attempt_id == "0.0"  # ids compared as numbers: "0.2" before "0.10"


def test_best_of_n_samples_independently_and_stops_at_the_first_pass(sandbox):
    client = Scripted("m", lambda prompt, seed, model: PASS if seed == 13 else FAIL)
    outcome = BestOfN(client, sandbox, BestOfNParams(n=8, seed=10, max_tokens=10)).solve(TASK)
    assert [a.attempt_id for a in outcome.attempts] == ["0", "1", "2", "3"]
    assert all(a.parent_id is None and a.depth == 0 and a.kind == "sample" for a in outcome.attempts)
    assert [c for c in client.calls] == [(s, 0.8, "first") for s in (10, 11, 12, 13)]  # no feedback
    assert outcome.best.attempt_id == "3" and outcome.stopped_by == "solved"


def test_best_of_n_in_batches_finishes_the_batch_it_passed_in(sandbox):
    client = Scripted("m", lambda prompt, seed, model: PASS if seed == 4 else FAIL)
    outcome = BestOfN(client, sandbox, BestOfNParams(n=9, parallel=3, max_tokens=10)).solve(TASK)
    assert len(outcome.attempts) == 6 and outcome.stopped_by == "solved"  # batches 0-2 and 3-5


def test_best_of_n_without_a_pass_makes_all_n(sandbox):
    outcome = BestOfN(Scripted("m", always(HALF)), sandbox, BestOfNParams(n=5, max_tokens=10)).solve(TASK)
    assert len(outcome.attempts) == 5 and outcome.stopped_by == "exhausted"


def test_a_calls_budget_stops_the_tree_at_the_call_that_would_pass_it(sandbox):
    strategy = AdaptiveBranching(
        Scripted("m", always(FAIL)),
        sandbox,
        AdaptiveParams(max_depth=3, branching=2, max_tokens=10),
        budget=Budget(calls=4),
    )
    outcome = strategy.solve(TASK)
    assert [a.attempt_id for a in outcome.attempts] == ["0", "0.0", "0.1", "0.0.0"]
    assert outcome.stopped_by == "budget_calls"


def test_a_token_budget_reserves_max_tokens_per_call_and_never_passes(sandbox):
    # 4 tokens a reply, 10 reserved per call, budget 35: root (4), two children (12), two grandchildren (20),
    # then (35 - 20) // 10 = 1 more call.
    strategy = AdaptiveBranching(
        Scripted("m", always(FAIL), tokens=4),
        sandbox,
        AdaptiveParams(max_depth=5, branching=2, max_tokens=10),
        budget=Budget(tokens=35),
    )
    outcome = strategy.solve(TASK)
    assert [a.attempt_id for a in outcome.attempts] == ["0", "0.0", "0.1", "0.0.0", "0.0.1", "0.0.0.0"]
    assert sum(a.completion_tokens for a in outcome.attempts) == 24 <= 35
    assert outcome.stopped_by == "budget_tokens"


def test_a_cpu_budget_reserves_the_mean_call(sandbox):
    # A meter that says each finished call cost 1 CPU-second: budget 2.5 lets the root and one child run.
    client = Scripted("m", always(FAIL))
    meter = lambda: float(len(client.calls))  # noqa: E731
    strategy = AdaptiveBranching(
        client,
        sandbox,
        AdaptiveParams(max_depth=3, branching=2, max_tokens=10),
        budget=Budget(cpu_s=2.5),
        cpu_meter=meter,
    )
    outcome = strategy.solve(TASK)
    assert [a.attempt_id for a in outcome.attempts] == ["0", "0.0"]
    assert outcome.stopped_by == "budget_cpu_s"


def test_several_models_take_the_nodes_round_robin_and_each_node_says_which(sandbox):
    first, second = Scripted("a", always(FAIL)), Scripted("b", always(FAIL))
    outcome = AdaptiveBranching(
        [first, second], sandbox, AdaptiveParams(max_depth=2, branching=2, max_tokens=10)
    ).solve(TASK)
    assert [a.model for a in outcome.attempts] == ["a", "b", "a", "b", "a"]
    assert (len(first.calls), len(second.calls)) == (3, 2)


def test_best_of_n_over_two_models_alternates(sandbox):
    models = [Scripted("a", always(FAIL)), Scripted("b", lambda prompt, seed, model: PASS if seed == 3 else FAIL)]
    outcome = BestOfN(models, sandbox, BestOfNParams(n=6, max_tokens=10)).solve(TASK)
    assert [a.model for a in outcome.attempts] == ["a", "b", "a", "b"] and outcome.best.model == "b"


# -- the runner -----------------------------------------------------------------------------------------

# "broken" answers the warm-up call ("Hi") and fails every call of a task.
SCRIPTS: dict[str, Script] = {
    "passer": always(PASS),
    "half": always(HALF),
    "broken": lambda prompt, seed, model: PASS if prompt.user == "Hi" else "!error",
}


@register_provider("scripted")
def _scripted(model: str, settings) -> ModelClient:
    return Scripted(model, SCRIPTS[model])


def test_the_runner_stores_every_arm_in_order_and_refuses_a_task_whose_call_failed(tmp_path):
    arms = [
        ArmSpec(name="big", strategy="single", models=["half"]),
        ArmSpec(name="bon", strategy="best-of-n", models=["half", "passer"], params={"n": 4}),
        ArmSpec(name="rep", strategy="adaptive", models=["half"], params={"max_depth": 1}, budget=Budget(calls=2)),
    ]
    with open_store(f"sqlite:///{tmp_path / 's.db'}") as store:
        run_id = Runner(store, RunConfig(provider="scripted", sandbox="process"), arms).run([TASK])
        results = {r.arm: r for r in store.results(run_id)}
        assert list(results) == ["big", "bon", "rep"]
        assert results["bon"].passed and results["bon"].model == "half + passer"
        assert [a.model for a in results["bon"].attempts] == ["half", "passer"]
        assert results["rep"].stopped_by == "budget_calls" and results["rep"].model_calls == 2
        assert results["rep"].budget == Budget(calls=2)
        assert store.get_run(run_id).arms == arms
        broken = [
            ArmSpec(name="ok", strategy="single", models=["passer"]),
            ArmSpec(name="bad", strategy="single", models=["broken"]),
        ]
        with pytest.raises(ModelError, match="arm bad \\(broken\\): broken: the server went away"):
            Runner(store, RunConfig(provider="scripted", sandbox="process"), broken).run([TASK])
        failed = store.list_runs()[0]
        assert failed.status == "failed"
        assert [r.arm for r in store.results(failed.run_id)] == ["ok"]  # the failed call's task is not stored


def test_a_cpu_budget_holds_with_calls_sent_at_once(sandbox):
    # Six samples at once, each call costing 1 CPU-second (the meter counts calls made): with nothing to
    # estimate from before the first call ends, it goes alone; then the calls that fit the rest go.
    client = Scripted("m", always(FAIL))
    meter = lambda: float(len(client.calls))  # noqa: E731
    strategy = BestOfN(
        client, sandbox, BestOfNParams(n=6, max_tokens=10, parallel=6), budget=Budget(cpu_s=3.0), cpu_meter=meter
    )
    outcome = strategy.solve(TASK)
    assert len(outcome.attempts) == 3 and outcome.stopped_by == "budget_cpu_s"
