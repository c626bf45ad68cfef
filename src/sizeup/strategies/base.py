"""What a strategy is, and the steps every strategy shares: ask a model, run the answer, stay in budget.

A strategy is registered by name with one typed parameter model (strategies/registry.py); its parameter
model's defaults are the only defaults. It gets the arm's model clients (several models: each node's model
is chosen round-robin, see `Strategy.client_for`), the sandbox, the limits of one execution, and the arm's
per-task budget, which `Spend` enforces while the tree grows.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from sizeup.models.types import GenerationParams, ModelClient, ModelError, Prompt
from sizeup.records import Attempt, Budget, tree_order_key
from sizeup.sandbox.expect import PARENT
from sizeup.sandbox.types import Limits, Sandbox
from sizeup.strategies.program import candidate_program
from sizeup.strategies.prompts import STANDARD, Prompter
from sizeup.tasks.types import Task
from sizeup.verdicts import Status

# Why a strategy stopped (TaskResult.stopped_by).
SOLVED, EXHAUSTED, NO_TESTS = "solved", "exhausted", "no_tests"


class StrategyParams(BaseModel):
    """Parameters every strategy has. Subclasses add their own; unknown names are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_tokens: int = Field(default=384, ge=1, description="completion tokens per model call")
    seed: int = Field(default=0, description="seed of the first call; every other node gets its own")


@dataclass
class TreeOutcome:
    """What a strategy returns: every attempt in the order it was made, the one it keeps, and why it stopped."""

    attempts: list[Attempt]
    best: Attempt
    stopped_by: str
    bookkeeping_s: float | None = None  # the search algorithm's own time (TreeQuest's ask and tell), if timed

    @property
    def depth_reached(self) -> int:
        return max(a.depth for a in self.attempts)


class Spend:
    """One task's spending against the arm's budget, shared by concurrent siblings.

    A call is allowed only if it cannot take the task over budget: calls count exactly; completion tokens
    reserve each call's max_tokens until its real count is known; CPU seconds (of the arm's model servers,
    read from the kernel by `cpu_meter`) reserve the mean CPU of the calls finished so far, for the calls in
    flight too, and the first call goes alone (there is no mean before it), so a CPU budget is overrun by
    about the difference between the calls made and that mean at most."""

    def __init__(self, budget: Budget | None, max_tokens: int, cpu_meter: Callable[[], float] | None):
        self.budget, self.max_tokens, self._meter = budget, max_tokens, cpu_meter
        self._lock = threading.Lock()
        self.calls = 0  # started
        self.own_calls: int | None = None  # a strategy's own cap on calls (decompose's max_calls): "exhausted"
        self.finished = 0
        self.tokens = 0  # completion tokens of finished calls, plus max_tokens per call in flight
        self._cpu_start = cpu_meter() if cpu_meter is not None and budget and budget.cpu_s else 0.0

    def cpu_s(self) -> float:
        return self._meter() - self._cpu_start if self._meter is not None else 0.0

    def reserve(self, wanted: int) -> tuple[int, str | None]:
        """How many of `wanted` further calls fit, and the budget kind that stopped the rest (None: all fit)."""
        with self._lock:
            allowed, reason = wanted, None
            budget = self.budget
            if budget is not None and budget.calls is not None and self.calls + allowed > budget.calls:
                allowed, reason = max(0, budget.calls - self.calls), "budget_calls"
            if self.own_calls is not None and self.calls + allowed > self.own_calls:
                allowed, reason = max(0, self.own_calls - self.calls), "exhausted"
            if budget is not None and budget.tokens is not None:
                fit = max(0, (budget.tokens - self.tokens) // self.max_tokens)
                if fit < allowed:
                    allowed, reason = fit, "budget_tokens"
            if budget is not None and budget.cpu_s is not None and not self.calls:
                allowed = min(allowed, 1)  # nothing to estimate a call's CPU from yet: the first call goes alone
            elif budget is not None and budget.cpu_s is not None and self.finished:
                spent = self.cpu_s()
                per_call = spent / self.finished
                # Calls in flight will spend about the mean too (what they have spent so far is in `spent`).
                in_flight = (self.calls - self.finished) * per_call
                fit = int((budget.cpu_s - spent - in_flight) // per_call) if per_call > 0 else allowed
                if fit < allowed:
                    allowed, reason = max(0, fit), "budget_cpu_s"
            self.calls += allowed
            self.tokens += allowed * self.max_tokens
            return allowed, reason

    def settle(self, completion_tokens: int) -> None:
        """A call finished: its reservation becomes its real token count."""
        with self._lock:
            self.finished += 1
            self.tokens += completion_tokens - self.max_tokens


@dataclass(frozen=True)
class Job:
    """One node to make: its prompt, place in the tree, sampling and what kind of step it is."""

    prompt: Prompt
    attempt_id: str
    parent: Attempt | None
    seed: int | None
    temperature: float
    kind: str
    model: str | None = None  # the model to ask (a search that chooses it); None: round-robin by creation order
    execute: bool = True  # False for a call whose reply is no program (a plan): no sandbox run


class Strategy(ABC):
    name: ClassVar[str] = "abstract"
    Params: ClassVar[type[StrategyParams]] = StrategyParams

    def __init__(
        self,
        clients: ModelClient | Sequence[ModelClient],
        sandbox: Sandbox,
        params: StrategyParams | None = None,
        *,
        limits: Limits = Limits(),
        budget: Budget | None = None,
        cpu_meter: Callable[[], float] | None = None,
        prompter: Prompter = STANDARD,
    ):
        self.clients = [clients] if isinstance(clients, ModelClient) else list(clients)
        if not self.clients:
            raise ValueError(f"strategy {self.name} needs at least one model")
        self.sandbox, self.limits, self.budget = sandbox, limits, budget
        self.params = params if params is not None else self.Params()
        if not isinstance(self.params, self.Params):
            raise TypeError(f"strategy {self.name} takes {self.Params.__name__}, not {type(self.params).__name__}")
        self._cpu_meter = cpu_meter
        self.prompter = prompter
        self._lock = threading.Lock()
        self._seq = 0
        self._started = 0.0
        self.spend = Spend(None, self.params.max_tokens, None)

    @property
    def client(self) -> ModelClient:
        return self.clients[0]

    def solve(self, task: Task) -> TreeOutcome:
        """Grow the task's tree from nothing; every node is numbered in the order it is made."""
        self._seq, self._started = 0, time.perf_counter()
        self.spend = Spend(self.budget, self.params.max_tokens, self._cpu_meter)
        attempts, stopped_by = self.search(task)
        attempts = sorted(attempts, key=lambda a: a.seq if a.seq is not None else -1)
        return TreeOutcome(attempts, best_of(attempts), stopped_by, getattr(self, "bookkeeping_s", None))

    @abstractmethod
    def search(self, task: Task) -> tuple[list[Attempt], str]:
        """Make the tree: every attempt, and why the search stopped (SOLVED, EXHAUSTED, NO_TESTS, budget_*)."""

    def client_for(self, seq: int) -> ModelClient:
        """Round-robin over the arm's models by creation order: every model gets the same share of nodes,
        deterministically. (A bandit on observed pass rates would need more nodes than one task's tree has
        to learn anything, and would make runs depend on the order tasks come in.)"""
        return self.clients[seq % len(self.clients)]

    def client_named(self, model: str) -> ModelClient:
        return next(c for c in self.clients if c.model == model)

    def run_jobs(self, task: Task, jobs: list[Job], parallel: int) -> tuple[list[Attempt], str | None]:
        """As many of the jobs as the budget allows, at most `parallel` at a time, in job order. Returns the
        attempts and the budget kind that cut the list short (None if all ran)."""
        allowed, reason = self.spend.reserve(len(jobs))
        jobs = jobs[:allowed]
        if not jobs:
            return [], reason
        with self._lock:
            numbered = [(self._seq + i, job) for i, job in enumerate(jobs)]
            self._seq += len(jobs)
        if parallel <= 1 or len(numbered) == 1:
            return [self.make(task, job, seq) for seq, job in numbered], reason
        with ThreadPoolExecutor(max_workers=min(parallel, len(numbered))) as pool:
            return list(pool.map(lambda item: self.make(task, item[1], item[0]), numbered)), reason

    def make(self, task: Task, job: Job, seq: int) -> Attempt:
        """One node of the job's kind; a strategy with kinds of its own (a plan) overrides this."""
        return self.attempt(task, job, seq)

    def call(self, job: Job, seq: int) -> tuple[Attempt, str | None]:
        """The model call of a node: its record, and the reply's text (None when the call failed: the node
        is then a harness error, never a program failure)."""
        client = self.client_for(seq) if job.model is None else self.client_named(job.model)
        parent = job.parent
        record = Attempt(
            attempt_id=job.attempt_id,
            parent_id=parent.attempt_id if parent else None,
            depth=parent.depth + 1 if parent else 0,
            seed=job.seed,
            seq=seq,
            kind=job.kind,
            model=client.model,
            prompt=job.prompt.as_text(client.style),
            start_s=time.perf_counter() - self._started,
        )
        try:
            reply = client.generate(
                job.prompt,
                GenerationParams(max_tokens=self.params.max_tokens, temperature=job.temperature, seed=job.seed),
            )
        except ModelError as err:
            self.spend.settle(0)
            record.status, record.error = Status.HARNESS_ERROR, str(err)
            record.executed = job.execute  # a failed plan or part is still no program: never run, never kept
            record.end_s = time.perf_counter() - self._started
            return record, None
        self.spend.settle(reply.usage.completion_tokens)
        record.response, record.finish_reason = reply.text, reply.finish_reason
        record.prompt_tokens, record.completion_tokens = reply.usage.prompt_tokens, reply.usage.completion_tokens
        record.ttft_s, record.gen_s = reply.usage.ttft_s, reply.usage.total_s
        record.usage_source = reply.usage.source
        if reply.usage.eval_s is not None:
            record.decode_s, record.decode_timed_by_server = reply.usage.eval_s, True
        elif reply.usage.ttft_s is not None:
            record.decode_s = reply.usage.total_s - reply.usage.ttft_s
        if not job.execute:  # a plan or a part: a reply, no program of its own to run
            record.status, record.executed = Status.UNVERIFIED, False
            record.end_s = time.perf_counter() - self._started
        return record, reply.text

    def attempt(self, task: Task, job: Job, seq: int) -> Attempt:
        """One node: generate, extract code, execute."""
        record, text = self.call(job, seq)
        if text is None or not job.execute:
            return record
        client = self.client_named(record.model)
        record.code = candidate_program(task, self.prompter.clean(text), client.style)
        self.execute(task, record)
        return record

    def execute(self, task: Task, record: Attempt) -> None:
        self._execute(task, record)
        record.end_s = time.perf_counter() - self._started

    def _execute(self, task: Task, record: Attempt) -> None:
        result = self.sandbox.run(record.code, task.tests, self.limits, setup_code=task.setup_code)
        record.status = result.status
        record.tests_passed, record.tests_total = result.tests_passed, result.tests_total
        record.feedback = result.feedback()
        record.exec_wall_s, record.exec_cpu_s = result.wall_s, result.cpu_s
        record.exec_peak_rss_mb = result.peak_rss_mb
        record.container_id, record.exec_figures = result.container_id, dict(result.figures)
        record.tests_parent_compared = sum(t.mode == PARENT for t in result.tests)


def rank_key(attempt: Attempt) -> tuple:
    """Best first: passed, then most tests passed, then shallowest, then earliest made (ids compared as
    numbers where no creation order is stored: "0.2" before "0.10")."""
    made = attempt.seq if attempt.seq is not None else -1
    return (
        attempt.status != Status.PASSED,
        -attempt.tests_passed,
        attempt.depth,
        made,
        tree_order_key(attempt.depth, attempt.attempt_id),
    )


def best_of(attempts: list[Attempt]) -> Attempt:
    """The kept answer: the best node that is a program (plans and parts are not). Only when the search made
    no program at all (its budget ended first) is the best of the rest returned, which the runner judges as a
    failure of every test (runner.judge_held_out)."""
    return min([a for a in attempts if a.executed] or attempts, key=rank_key)


def solved(attempts: list[Attempt]) -> bool:
    return any(a.status == Status.PASSED and a.executed for a in attempts)
