"""What a strategy is, and the one step every strategy shares: ask the model, run the answer."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from sizeup.models.extract import extract_code
from sizeup.models.types import GenerationParams, ModelClient, ModelError, Prompt, PromptStyle
from sizeup.records import Attempt
from sizeup.sandbox.types import Limits, Sandbox, Status
from sizeup.strategies.prompts import program_from
from sizeup.tasks.types import Task


@dataclass
class TreeOutcome:
    """What a strategy returns: every attempt, and which one it keeps."""

    attempts: list[Attempt]
    best: Attempt

    @property
    def depth_reached(self) -> int:
        return max(a.depth for a in self.attempts)


class Strategy(ABC):
    name: str = "abstract"

    def __init__(self, client: ModelClient, sandbox: Sandbox, *, limits: Limits = Limits(),
                 max_tokens: int = 384):
        self.client, self.sandbox, self.limits, self.max_tokens = client, sandbox, limits, max_tokens

    @abstractmethod
    def solve(self, task: Task) -> TreeOutcome: ...

    def attempt(self, task: Task, prompt: Prompt, attempt_id: str, parent: Attempt | None,
                seed: int | None, temperature: float) -> Attempt:
        """One node: generate, extract code, execute. A failed model call is recorded as a harness
        error on the node, never as a program failure."""
        record = Attempt(attempt_id=attempt_id, parent_id=parent.attempt_id if parent else None,
                         depth=parent.depth + 1 if parent else 0, seed=seed,
                         prompt=prompt.as_text(self.client.style))
        try:
            reply = self.client.generate(prompt, GenerationParams(max_tokens=self.max_tokens,
                                                                  temperature=temperature, seed=seed))
        except ModelError as err:
            record.status, record.error = Status.HARNESS_ERROR.value, str(err)
            return record
        record.response, record.finish_reason = reply.text, reply.finish_reason
        record.prompt_tokens, record.completion_tokens = reply.usage.prompt_tokens, reply.usage.completion_tokens
        record.ttft_s, record.gen_s = reply.usage.ttft_s, reply.usage.total_s
        record.usage_source = reply.usage.source
        if reply.usage.eval_s is not None:
            record.decode_s, record.decode_timed_by_server = reply.usage.eval_s, True
        elif reply.usage.ttft_s is not None:
            record.decode_s = reply.usage.total_s - reply.usage.ttft_s
        if self.client.style is PromptStyle.COMPLETION:
            # A base model continues the document: its reply starts inside the code block.
            code = extract_code((task.stub or "") + reply.text, task.entry_point)
        else:
            code = program_from(task, extract_code(reply.text, task.entry_point))
        record.code = code
        self._execute(task, record)
        return record

    def _execute(self, task: Task, record: Attempt) -> None:
        result = self.sandbox.run(record.code, task.tests, self.limits, setup_code=task.setup_code)
        record.status = result.status.value
        record.tests_passed, record.tests_total = result.tests_passed, result.tests_total
        record.feedback = result.feedback()
        record.exec_wall_s, record.exec_cpu_s = result.wall_s, result.cpu_s
        record.exec_peak_rss_mb = result.peak_rss_mb
        record.container_id, record.exec_figures = result.container_id, dict(result.figures)


def rank_key(attempt: Attempt) -> tuple:
    """Best first: passed, then most tests passed, then shallowest, then earliest."""
    return (attempt.status != Status.PASSED.value, -attempt.tests_passed, attempt.depth, attempt.attempt_id)


def best_of(attempts: list[Attempt]) -> Attempt:
    return min(attempts, key=rank_key)
