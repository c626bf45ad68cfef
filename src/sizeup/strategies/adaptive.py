"""The small side: attempt, test, and branch from the best failures until one passes.

Depth 0 is one greedy attempt. While nothing passes and depth < max_depth, the best `beam` failing
candidates of the deepest level each get `branching` children, prompted with the parent's code and its
failing tests, sampled with distinct seeds so siblings differ. The children of one level run
concurrently (at most `parallel` at a time). The kept answer is the best node (most tests passed, then
shallowest). Hidden tests are not held back: the task's tests are both the feedback and the verdict,
as in the seed; record that in reports.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from sizeup.records import Attempt
from sizeup.sandbox.types import Status
from sizeup.strategies.base import Strategy, TreeOutcome, best_of, rank_key
from sizeup.strategies.prompts import first_attempt, repair
from sizeup.tasks.types import Task


class AdaptiveBranching(Strategy):
    name = "adaptive"

    def __init__(self, *args, max_depth: int = 2, branching: int = 2, beam: int = 1, parallel: int = 1,
                 temperature: float = 0.8, seed: int = 0, **kwargs):
        super().__init__(*args, **kwargs)
        if max_depth < 0 or branching < 1 or beam < 1 or parallel < 1:
            raise ValueError("max_depth >= 0, branching >= 1, beam >= 1 and parallel >= 1 are required")
        self.max_depth, self.branching, self.beam = max_depth, branching, beam
        self.parallel, self.temperature, self.seed = parallel, temperature, seed

    def solve(self, task: Task) -> TreeOutcome:
        root = self.attempt(task, first_attempt(task), "0", None, seed=self.seed, temperature=0.0)
        attempts, level = [root], [root]
        # Free-text tasks have no tests to learn from: one attempt is all that can be judged.
        while task.tests and not _solved(attempts) and level[0].depth < self.max_depth:
            parents = sorted((a for a in level if a.status != Status.HARNESS_ERROR.value), key=rank_key)
            parents = parents[: self.beam]
            if not parents:
                break
            # Every node gets its own seed (its index in the tree) so siblings sample differently.
            jobs = [(p, f"{p.attempt_id}.{i}", self.seed + len(attempts) + n)
                    for n, (p, i) in enumerate((p, i) for p in parents for i in range(self.branching))]
            with ThreadPoolExecutor(max_workers=self.parallel) as pool:
                level = list(pool.map(lambda job: self._child(task, *job), jobs))
            attempts.extend(level)
        return TreeOutcome(attempts, best_of(attempts))

    def _child(self, task: Task, parent: Attempt, attempt_id: str, seed: int) -> Attempt:
        return self.attempt(task, repair(task, parent.code, parent.feedback), attempt_id, parent,
                            seed=seed, temperature=self.temperature)


def _solved(attempts: list[Attempt]) -> bool:
    return any(a.status == Status.PASSED.value for a in attempts)
