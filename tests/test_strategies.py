"""The strategies on a real bundled model and the real process sandbox (small token limits): integration
tests. Every rule of every strategy is also tested deterministically with a scripted client in
test_strategies_scripted.py."""

from __future__ import annotations

import threading

import pytest

from sizeup.models import GenerationParams, ModelClient
from sizeup.sandbox import Limits, ProcessSandbox
from sizeup.strategies import AdaptiveBranching, AdaptiveParams, SingleParams, SingleShot
from sizeup.tasks import Task

# Contradictory tests no program can pass together: the verdict is certain, so the tree shape is too.
IMPOSSIBLE = Task(
    task_id="t/impossible",
    source="test",
    prompt="Write a function magic() that returns a number.",
    entry_point="magic",
    tests=["assert magic() == 1", "assert magic() == 2"],
)
# Tests any loadable program passes (extraction trims the reply to code that parses).
TRIVIAL = Task(
    task_id="t/trivial", source="test", prompt="Write a function one() that returns 1.", tests=["assert 1 == 1"]
)


@pytest.fixture(scope="module")
def sandbox():
    with ProcessSandbox() as box:
        yield box


def test_single_shot_is_one_call_one_execution(large_client, sandbox):
    outcome = SingleShot(large_client, sandbox, SingleParams(max_tokens=48)).solve(IMPOSSIBLE)
    (root,) = outcome.attempts
    assert outcome.best is root
    assert root.attempt_id == "0" and root.parent_id is None and root.depth == 0
    assert root.prompt_tokens > 0 and root.completion_tokens > 0 and root.gen_s > 0
    assert root.status in ("failed", "error")  # the program's fault, never the harness's
    assert root.seq == 0 and root.model == large_client.model and root.kind == "generate"
    assert outcome.stopped_by == "exhausted"
    assert root.tests_total == 2 or root.status == "error"


def test_adaptive_branches_from_failures_until_max_depth(small_client, sandbox):
    strategy = AdaptiveBranching(
        small_client,
        sandbox,
        AdaptiveParams(max_depth=2, branching=2, beam=1, max_tokens=40),
        limits=Limits(timeout_s=5),
    )
    outcome = strategy.solve(IMPOSSIBLE)
    ids = [a.attempt_id for a in outcome.attempts]
    assert len(ids) == 5 and ids[0] == "0"  # 1 root + 2 children + 2 grandchildren of the best child
    assert outcome.depth_reached == 2
    children = [a for a in outcome.attempts if a.depth == 1]
    assert {c.parent_id for c in children} == {"0"}
    assert len({c.seed for c in outcome.attempts}) == 5  # every node samples with its own seed
    root = outcome.attempts[0]
    for child in children:  # the repair prompt carries the parent's code and its failures
        assert "magic()" in child.prompt and root.feedback.splitlines()[0][:30] in child.prompt
    grandchildren = [a for a in outcome.attempts if a.depth == 2]
    assert len({g.parent_id for g in grandchildren}) == 1
    assert grandchildren[0].parent_id in {c.attempt_id for c in children}
    best = outcome.best  # most tests passed, then shallowest
    assert best.tests_passed == max(a.tests_passed for a in outcome.attempts)
    assert best.depth == min(a.depth for a in outcome.attempts if a.tests_passed == best.tests_passed)


def test_adaptive_stops_at_the_first_pass(small_client, sandbox):
    outcome = AdaptiveBranching(small_client, sandbox, AdaptiveParams(max_depth=3, max_tokens=40)).solve(TRIVIAL)
    assert [a.attempt_id for a in outcome.attempts] == ["0"]
    assert outcome.best.status == "passed"


def test_free_text_task_is_unverified_and_not_branched(small_client, sandbox):
    task = Task(task_id="freetext/x", source="freetext", prompt="Print hello.")
    outcome = AdaptiveBranching(small_client, sandbox, AdaptiveParams(max_depth=2, max_tokens=24)).solve(task)
    assert len(outcome.attempts) == 1
    assert outcome.best.status in ("unverified", "error", "timeout")
    assert outcome.best.status != "passed"


class InFlight(ModelClient):
    """The real model, counting how many of the strategy's calls are in flight at once."""

    def __init__(self, client: ModelClient):
        self.client, self.model, self.style = client, client.model, client.style
        self._lock = threading.Lock()
        self.now = self.most = 0

    def generate(self, prompt, params=None):
        with self._lock:
            self.now += 1
            self.most = max(self.most, self.now)
        try:
            return self.client.generate(prompt, params or GenerationParams())
        finally:
            with self._lock:
                self.now -= 1


@pytest.mark.parametrize("parallel", [1, 3])
def test_children_of_a_level_run_concurrently_when_asked(small_client, sandbox, parallel):
    client = InFlight(small_client)
    strategy = AdaptiveBranching(
        client, sandbox, AdaptiveParams(max_depth=1, branching=3, parallel=parallel, max_tokens=16)
    )
    outcome = strategy.solve(IMPOSSIBLE)
    assert [a.attempt_id for a in outcome.attempts] == ["0", "0.0", "0.1", "0.2"]
    # The server answers one request at a time, so the three children's requests wait there, in flight.
    assert client.most == parallel
