"""`ab-mcts`: Adaptive Branching MCTS (Sakana AI, "Wider or Deeper?", arXiv 2503.04412) through TreeQuest's
ABMCTSA, which decides at every node, by Thompson sampling, whether to sample a new answer (wider) or refine
an existing one (deeper).

Generation from the root is a fresh attempt (`kind` "generate": a wider step); from a node, a repair of that
node with its visible-test feedback (`kind` "repair": a deeper step). A node's score is the share of visible
tests it passed (0 for errors, timeouts and harness errors). Several models are several actions: TreeQuest
chooses the model per expansion (its multi-LLM mode), and each node stores which. Trials are asked for in
batches of `parallel` and told in the order they were asked once the batch is done (so a run does not
depend on which call finished first). The search stops at a full visible pass, after `n`
nodes, or at the arm's budget.

Reproducibility: TreeQuest's Thompson sampling draws from NumPy's global generator and exposes no seed, so
it is seeded before every task from the arm's seed and the task id. With a deterministic model (greedy, or
a server honouring seeds) a run is then repeatable; TreeQuest's trial ids are time-based and are not stored.
"""

from __future__ import annotations

import time
import zlib
from typing import Any, Literal

from pydantic import Field

from sizeup.records import Attempt
from sizeup.strategies.base import EXHAUSTED, NO_TESTS, SOLVED, Job, Strategy, StrategyParams, solved
from sizeup.strategies.registry import register
from sizeup.tasks.types import Task
from sizeup.verdicts import Status


class ABMCTSParams(StrategyParams):
    n: int = Field(default=8, ge=1, description="nodes (model calls) per task at most")
    parallel: int = Field(default=1, ge=1, description="trials asked for and sent at once")
    temperature: float = Field(default=0.8, ge=0, description="sampling temperature of every node")
    posterior: Literal["beta", "gaussian"] = Field(default="beta", description="TreeQuest's score posterior")


def score(attempt: Attempt) -> float:
    """The share of visible tests passed; 0 for a program that did not run its tests."""
    if attempt.status in (Status.ERROR, Status.TIMEOUT, Status.MEMORY_EXCEEDED, Status.HARNESS_ERROR):
        return 0.0
    if attempt.status == Status.PASSED:
        return 1.0
    return attempt.tests_passed / attempt.tests_total if attempt.tests_total else 0.0


@register
class ABMCTS(Strategy):
    """AB-MCTS-A through TreeQuest: sample wider or refine deeper by Thompson sampling, until one passes."""

    name = "ab-mcts"
    Params = ABMCTSParams
    params: ABMCTSParams

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.bookkeeping_s = 0.0  # TreeQuest's own time (ask and tell) in the last search

    def search(self, task: Task) -> tuple[list[Attempt], str]:
        try:
            import numpy as np
            import treequest
        except ImportError:  # pragma: no cover - the extra is installed by `make setup`
            raise ValueError("the ab-mcts strategy needs TreeQuest: pip install 'sizeup[search]'") from None
        p = self.params
        np.random.seed(zlib.crc32(f"{p.seed}:{task.task_id}".encode()))  # TreeQuest's sampling is NumPy's
        algo: Any = treequest.ABMCTSA(dist_type=p.posterior)
        actions = [c.model for c in self.clients]
        self.bookkeeping_s = 0.0
        clock = time.perf_counter()
        state = algo.init_tree()
        self.bookkeeping_s += time.perf_counter() - clock
        attempts: list[Attempt] = []
        while len(attempts) < p.n:
            clock = time.perf_counter()
            state, trials = algo.ask_batch(state, min(p.parallel, p.n - len(attempts)), actions)
            self.bookkeeping_s += time.perf_counter() - clock
            jobs = [self._job(task, trial, len(attempts) + i) for i, trial in enumerate(trials)]
            made, cut = self.run_jobs(task, jobs, p.parallel)
            clock = time.perf_counter()
            for trial, attempt in zip(trials, made, strict=False):
                state = algo.tell(state, trial.trial_id, (attempt, score(attempt)))
            self.bookkeeping_s += time.perf_counter() - clock
            attempts.extend(made)
            if solved(attempts):
                return attempts, SOLVED
            if not task.tests:
                return attempts, NO_TESTS
            if cut:
                return attempts, cut
        return attempts, EXHAUSTED

    def _job(self, task: Task, trial: Any, index: int) -> Job:
        parent: Attempt | None = trial.parent_state
        seed = self.params.seed + index
        temperature, model = self.params.temperature, trial.action  # TreeQuest chose the model: an action
        if parent is None:  # from the root: a new answer (wider)
            return Job(self.prompter.first_attempt(task), str(index), None, seed, temperature, "generate", model)
        prompt = self.prompter.repair(task, parent.code, parent.feedback)  # from a node: refine it (deeper)
        return Job(prompt, f"{parent.attempt_id}.{index}", parent, seed, temperature, "repair", model)
