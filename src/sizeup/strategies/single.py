"""The large side: one model call, one execution."""

from __future__ import annotations

from sizeup.strategies.base import Strategy, TreeOutcome
from sizeup.strategies.prompts import first_attempt
from sizeup.tasks.types import Task


class SingleShot(Strategy):
    name = "single"

    def __init__(self, *args, seed: int = 0, **kwargs):
        super().__init__(*args, **kwargs)
        self.seed = seed

    def solve(self, task: Task) -> TreeOutcome:
        root = self.attempt(task, first_attempt(task), "0", None, seed=self.seed, temperature=0.0)
        return TreeOutcome([root], root)
