"""`single`: one greedy model call, one execution: the large model's side in the seed."""

from __future__ import annotations

from sizeup.records import Attempt
from sizeup.strategies.base import EXHAUSTED, SOLVED, Job, Strategy, StrategyParams, solved
from sizeup.strategies.registry import register
from sizeup.tasks.types import Task


class SingleParams(StrategyParams):
    pass


@register
class SingleShot(Strategy):
    """One greedy call with the standard prompt; its answer is kept whatever it scores."""

    name = "single"
    Params = SingleParams

    def search(self, task: Task) -> tuple[list[Attempt], str]:
        job = Job(self.prompter.first_attempt(task), "0", None, seed=self.params.seed, temperature=0.0, kind="generate")
        attempts, cut = self.run_jobs(task, [job], parallel=1)
        return attempts, cut or (SOLVED if solved(attempts) else EXHAUSTED)
