"""`best-of-n`: N independent samples of the first-attempt prompt, no feedback: the compute-matched
baseline for repair (repeated sampling; Brown et al. 2024 "Large Language Monkeys", Hassid et al. 2024).
If the adaptive arm beats it at the same number of calls, the feedback loop is what helped.

Sample i uses seed + i at the arm's temperature; samples go out `parallel` at a time, and the search stops
after the first batch that holds a passing sample. The kept answer is the best sample."""

from __future__ import annotations

from pydantic import Field

from sizeup.records import Attempt
from sizeup.strategies.base import EXHAUSTED, NO_TESTS, SOLVED, Job, Strategy, StrategyParams, solved
from sizeup.strategies.registry import register
from sizeup.tasks.types import Task


class BestOfNParams(StrategyParams):
    n: int = Field(default=8, ge=1, description="samples per task at most")
    parallel: int = Field(default=1, ge=1, description="samples sent at once")
    temperature: float = Field(default=0.8, ge=0, description="sampling temperature of every sample")


@register
class BestOfN(Strategy):
    """Up to n independent samples at a temperature; stops at the first that passes."""

    name = "best-of-n"
    Params = BestOfNParams
    params: BestOfNParams

    def search(self, task: Task) -> tuple[list[Attempt], str]:
        p = self.params
        prompt = self.prompter.first_attempt(task)
        attempts: list[Attempt] = []
        while len(attempts) < p.n:
            batch = min(p.parallel, p.n - len(attempts))
            jobs = [
                Job(prompt, str(i), None, seed=p.seed + i, temperature=p.temperature, kind="sample")
                for i in range(len(attempts), len(attempts) + batch)
            ]
            made, cut = self.run_jobs(task, jobs, p.parallel)
            attempts.extend(made)
            if solved(attempts):
                return attempts, SOLVED
            if not task.tests:
                return attempts, NO_TESTS
            if cut:
                return attempts, cut
        return attempts, EXHAUSTED
