"""Records that cross module boundaries: strategies produce them, the store keeps them,
analysis reads them. Pydantic so that every store can serialise them the same way."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_validator

from sizeup.verdicts import Status

# The seed's two arms: what `--large-model` / `--small-model` (and every store written before arms) mean.
LARGE, SMALL = "large", "small"


class Budget(BaseModel):
    """Per-task limits an arm's strategy enforces while it runs: it stops expanding before a call that could
    take it over one. None: no limit of that kind."""

    model_config = ConfigDict(extra="forbid")

    tokens: int | None = Field(default=None, ge=1)  # completion tokens over the task's calls
    calls: int | None = Field(default=None, ge=1)  # model calls
    cpu_s: float | None = Field(default=None, gt=0)  # CPU seconds of the arm's model servers during the task

    def is_set(self) -> bool:
        return any(v is not None for v in (self.tokens, self.calls, self.cpu_s))


class ArmSpec(BaseModel):
    """One configuration a run compares: a name, a strategy (by its registered name), the model(s) it calls,
    the strategy's parameters (validated by the strategy's own parameter model) and an optional budget."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    strategy: str
    models: list[str] = Field(min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)
    budget: Budget | None = None

    @property
    def label(self) -> str:
        return f"{self.name}: {self.strategy} ({' + '.join(self.models)})"


class Measured(StrEnum):
    """How a figure was obtained, stored beside it so nobody mistakes an estimate for a reading."""

    SAMPLED = "sampled"  # polled by the monitor thread (a lower bound for short spikes)
    KERNEL = "kernel"  # kernel counters (utime+stime, VmHWM, wait4)
    KERNEL_SUM = "kernel_sum"  # sum of per-process VmHWMs: an upper bound, their peaks need not coincide
    COUNTER = "counter"  # a hardware energy counter's delta (RAPL, NVML): whole packages/GPUs, not per process
    SERVER = "server"  # reported by the model server (token counts, durations)
    COUNTED = "counted"  # counted by sizeup from the stream
    NOT_MEASURABLE = "not_measurable"


class ResourceSummary(BaseModel):
    """What a set of processes spent over a window."""

    wall_s: float = 0.0
    cpu_s: float = 0.0
    peak_rss_mb: float = 0.0
    mean_cpu_pct: float = 0.0
    peak_cpu_pct: float = 0.0
    processes: int = 0  # distinct processes seen
    samples: int = 0
    method: dict[str, Measured] = Field(default_factory=dict)  # figure name -> how measured
    # Added later, so optional: None where not measured (or in records stored before they existed).
    sampled_peak_rss_mb: float | None = None  # the polled peak of the summed RSS, a lower bound
    gpu_mem_mb: float | None = None  # peak GPU memory of the watched processes (NVML, sampled)
    gpu_total_mem_mb: float | None = None  # peak used memory of all GPUs, every process (NVML, sampled)
    gpu_util_pct: float | None = None  # mean GPU utilisation over the window, averaged over GPUs (sampled)
    gpu_energy_j: float | None = None  # all GPUs, NVML's energy counter delta over the window
    cpu_energy_j: float | None = None  # all CPU packages, RAPL's energy counter delta over the window


def tree_order_key(depth: int, attempt_id: str) -> tuple[int, tuple[tuple[int, int | str], ...]]:
    """Depth, then the attempt id compared part by part as numbers, so "0.2" comes before "0.10": the order
    in which a strategy makes its attempts, and the order every store returns a tree in."""
    return depth, tuple((0, int(p)) if p.isdigit() else (1, p) for p in attempt_id.split("."))


def tree_order(attempt: Attempt) -> tuple[int, tuple[tuple[int, int | str], ...]]:
    return tree_order_key(attempt.depth, attempt.attempt_id)


def creation_order(attempts: list[Attempt]) -> list[Attempt]:
    """Attempts in the order the strategy made them: by `seq`; a tree stored before `seq` existed was made
    level by level by the seed's strategies, so its tree order is its creation order."""
    if attempts and all(a.seq is not None for a in attempts):
        return sorted(attempts, key=lambda a: a.seq)  # type: ignore[arg-type, return-value]
    return sorted(attempts, key=tree_order)


class Attempt(BaseModel):
    """One node of an attempt tree: one model call and one sandbox execution."""

    attempt_id: str  # "0", "0.1", "0.1.0": the path from the root
    parent_id: str | None = None
    depth: int = 0
    seed: int | None = None
    prompt: str = ""
    response: str = ""
    code: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    ttft_s: float | None = None
    gen_s: float = 0.0
    decode_s: float | None = None  # time spent generating after the first token (server's, when it says)
    decode_timed_by_server: bool = False  # decode_s is the server's own timing (Ollama's eval_duration)
    usage_source: str = ""  # models.Usage.source: how the token counts were obtained
    finish_reason: str | None = None
    status: Status = Status.HARNESS_ERROR  # until the sandbox has judged it
    tests_passed: int = 0
    tests_total: int = 0
    feedback: str = ""
    exec_wall_s: float = 0.0
    exec_cpu_s: float = 0.0
    exec_peak_rss_mb: float = 0.0
    container_id: str = ""  # docker backend: the container that ran it
    exec_figures: dict[str, float] = Field(default_factory=dict)  # backend-specific figures (container, ...)
    tests_parent_compared: int = 0  # of its tests, those judged outside the program's process
    error: str = ""  # harness error of the model call, if any
    # Added with arms (None or "" in trees stored before): the order the strategy made the node in, when its
    # call started and its execution ended (seconds from the task's start), the model that made it, and why.
    seq: int | None = None
    start_s: float | None = None
    end_s: float | None = None
    model: str = ""
    # "generate" (a fresh answer), "repair" (a fix of its parent), "sample" (best-of-n), and decompose's
    # "plan", "implement", "compose".
    kind: str = ""
    executed: bool = True  # False for a call whose reply is not a program (a plan, one helper): no sandbox run
    note: str = ""  # what a strategy says of the node (a plan it could not use, the part a repair fixes)


class TaskResult(BaseModel):
    """One arm's outcome on one task, with its whole attempt tree and what it cost."""

    run_id: str
    task_id: str
    # The arm's name; stores written before arms call it `side` (large / small), and read as such.
    arm: str = Field(validation_alias=AliasChoices("arm", "side"))
    model: str  # the arm's model(s), joined by " + "
    strategy: str
    status: Status  # verdict of the kept candidate on every test, visible and hidden
    tests_passed: int = 0  # visible + hidden
    tests_total: int = 0
    # The kept candidate on the visible tests alone (what the strategy saw), and on the hidden ones (None:
    # the task has none). A task is solved only when both pass. Results stored before held-out tests have
    # only `status`: their visible verdict is that status.
    visible_status: Status | None = None
    visible_passed: int | None = None
    visible_total: int | None = None
    hidden_passed: int | None = None
    hidden_total: int | None = None
    # Of the verdict's tests, those whose expectation never entered the program's process (the rest ran in it).
    tests_parent_compared: int | None = None
    best_attempt_id: str | None = None
    depth_reached: int = 0
    model_calls: int = 0
    wall_s: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    ttft_s: float | None = None  # first call's time to first token
    gen_s: float = 0.0  # time spent waiting for the model
    decode_tokens_per_s: float | None = None  # completion tokens / decode time, over the task's calls
    server: ResourceSummary = Field(default_factory=ResourceSummary)  # the model's own server processes
    # A server process shared by several models (`ollama serve`), measured apart and charged to no side.
    shared_server: ResourceSummary | None = None
    sandbox_executions: int = 0
    sandbox_cpu_s: float = 0.0
    sandbox_peak_rss_mb: float = 0.0
    sandbox_wall_s: float = 0.0
    sandbox_containers: int = 0  # distinct containers that ran this task's candidates (docker backend)
    sandbox_figures: dict[str, float] = Field(default_factory=dict)  # backend-specific, aggregated per task
    attempts: list[Attempt] = Field(default_factory=list)
    method: dict[str, str] = Field(default_factory=dict)  # figure name -> how it was measured
    finished_at: str = Field(default_factory=lambda: datetime.now(UTC).isoformat())
    # Why the strategy stopped: "solved", "exhausted" (its own limit: depth, n), "single", "no_tests", or
    # "budget_tokens" / "budget_calls" / "budget_cpu_s" (the arm's budget). "" in results stored before.
    stopped_by: str = ""
    strategy_overhead_s: float | None = None  # the search algorithm's own bookkeeping (ab-mcts: TreeQuest), timed
    # Which worker made it: `id`, the `cpus` its processes could run on, whether sizeup `pinned` it to them
    # alone (--workers N: yes; a Ray actor or a one-worker run: no), Ray's `resources` for an actor, its `node`
    # (host, CPU model, cores, GPU or None) and the run's `concurrency` (workers at once; 1 for a one-worker
    # run, whose worker is id 0, this process). None only in results stored before workers existed.
    worker: dict[str, Any] | None = None
    budget: Budget | None = None  # the budget the arm ran under, if any

    @property
    def passed(self) -> bool:
        return self.status == Status.PASSED

    @property
    def visible_pass(self) -> bool:
        return (self.visible_status or self.status) == Status.PASSED

    @property
    def overfit(self) -> bool:
        """Passes the tests it was shown, fails the ones it was not (a held-out run that sizeup itself failed,
        a harness error, is no verdict on the program)."""
        return self.visible_pass and self.status not in (Status.PASSED, Status.HARNESS_ERROR)

    @property
    def test_pass_ratio(self) -> float:
        return self.tests_passed / self.tests_total if self.tests_total else 0.0


class RunRecord(BaseModel):
    """A run: its arms, its configuration and the machine it ran on."""

    run_id: str
    started_at: str = Field(default_factory=lambda: datetime.now(UTC).isoformat())
    config: dict[str, Any] = Field(default_factory=dict)
    environment: dict[str, Any] = Field(default_factory=dict)
    task_ids: list[str] = Field(default_factory=list)
    status: str = "running"  # running, finished, interrupted, failed
    load: dict[str, Any] = Field(default_factory=dict)  # model load / warm-up, per model, kept apart
    arms: list[ArmSpec] = Field(default_factory=list)  # in order; the first is the default baseline

    @model_validator(mode="after")
    def _seed_arms(self) -> RunRecord:
        """A run stored before arms existed had the seed's two: large single-shot, small adaptive."""
        if not self.arms and ("large_model" in self.config or "small_model" in self.config):
            cfg = self.config
            adaptive: dict[str, Any] = {
                k: cfg[k]
                for k in ("max_depth", "branching", "beam", "parallel", "temperature", "seed", "max_tokens")
                if k in cfg
            }
            single: dict[str, Any] = {k: cfg[k] for k in ("seed", "max_tokens") if k in cfg}
            self.arms = [
                ArmSpec(name=LARGE, strategy="single", models=[cfg.get("large_model") or "?"], params=single),
                ArmSpec(name=SMALL, strategy="adaptive", models=[cfg.get("small_model") or "?"], params=adaptive),
            ]
        return self

    def arm(self, name: str) -> ArmSpec | None:
        return next((arm for arm in self.arms if arm.name == name), None)


def node_solved(result: TaskResult, attempt: Attempt) -> bool:
    """Whether a node of `result`'s tree counts as a held-out pass: it passed, and where the task has hidden
    tests it is the kept answer (the only node judged on them) and the task passed them too."""
    if result.hidden_total:
        return attempt.attempt_id == result.best_attempt_id and result.passed
    return attempt.status == Status.PASSED


def result_shape(result: TaskResult) -> dict[str, Any]:
    """One tree's shape: wider steps (new answers from the root), deeper steps (repairs of a node), its
    depth and widest fan-out, and what made its first held-out passing node (kind and model), in creation
    order: a node that only passed the visible tests is not credited."""
    children = Counter(a.parent_id for a in result.attempts)
    first = next((a for a in creation_order(result.attempts) if a.executed and node_solved(result, a)), None)
    return {
        "wider": sum(a.parent_id is None for a in result.attempts),
        "deeper": sum(a.kind == "repair" for a in result.attempts),
        "depth": max((a.depth for a in result.attempts), default=0),
        "width": max(children.values(), default=0),
        "first_pass_from": f"{first.kind or 'node'} by {first.model or '?'}" if first else None,
    }


def server_measured(result: TaskResult, name: str) -> bool:
    """Whether the model server's figure `name` (cpu_s, peak_rss_mb) was measured: not a server sizeup
    could not watch. An empty method (results stored before methods were) cannot say otherwise: measured."""
    return result.server.method.get(name) != Measured.NOT_MEASURABLE


def tokens_measured(result: TaskResult) -> bool:
    """Whether prompt and completion tokens were both known (a server that reports no usage leaves only the
    completion countable)."""
    return result.method.get("prompt_tokens") != Measured.NOT_MEASURABLE.value
