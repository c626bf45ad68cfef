"""`adaptive`: attempt, test, and branch from the best failures until one passes (the seed's small side).

Depth 0 is one greedy attempt. While nothing passes and depth < max_depth, the best `beam` failing
candidates of the deepest level each get `branching` children, prompted with the parent's code and its
failing tests, sampled with distinct seeds so siblings differ. The children of one level run
concurrently (at most `parallel` at a time). The kept answer is the best node (most tests passed, then
shallowest). It sees the task's visible tests only: the runner judges the kept answer on the hidden ones
too, after the search.
"""

from __future__ import annotations

from pydantic import Field

from sizeup.records import Attempt
from sizeup.strategies.base import EXHAUSTED, NO_TESTS, SOLVED, Job, Strategy, StrategyParams, rank_key, solved
from sizeup.strategies.registry import register
from sizeup.tasks.types import Task
from sizeup.verdicts import Status


class AdaptiveParams(StrategyParams):
    max_depth: int = Field(default=2, ge=0, description="repair rounds after the first attempt")
    branching: int = Field(default=2, ge=1, description="children per expanded candidate")
    beam: int = Field(default=1, ge=1, description="failing candidates expanded per level")
    parallel: int = Field(default=1, ge=1, description="model calls of one level sent at once")
    temperature: float = Field(default=0.8, ge=0, description="sampling temperature of repairs")


@register
class AdaptiveBranching(Strategy):
    """Repair the best failures with their test feedback, level by level, until one passes."""

    name = "adaptive"
    Params = AdaptiveParams
    params: AdaptiveParams

    def search(self, task: Task) -> tuple[list[Attempt], str]:
        p = self.params
        root_job = Job(self.prompter.first_attempt(task), "0", None, seed=p.seed, temperature=0.0, kind="generate")
        attempts, cut = self.run_jobs(task, [root_job], parallel=1)
        level = attempts
        while not cut:
            if solved(attempts):
                return attempts, SOLVED
            if not task.tests:  # free-text tasks have no tests to learn from: one attempt is all
                return attempts, NO_TESTS
            if level[0].depth >= p.max_depth:
                return attempts, EXHAUSTED
            parents = sorted((a for a in level if a.status != Status.HARNESS_ERROR), key=rank_key)[: p.beam]
            if not parents:
                return attempts, EXHAUSTED
            # Every node gets its own seed (its place in the tree) so siblings sample differently.
            jobs = [
                Job(
                    self.prompter.repair(task, parent.code, parent.feedback),
                    f"{parent.attempt_id}.{i}",
                    parent,
                    seed=p.seed + len(attempts) + n,
                    temperature=p.temperature,
                    kind="repair",
                )
                for n, (parent, i) in enumerate((q, i) for q in parents for i in range(p.branching))
            ]
            level, cut = self.run_jobs(task, jobs, p.parallel)
            attempts.extend(level)
            if not level:
                break
        return attempts, SOLVED if solved(attempts) else (cut or EXHAUSTED)
