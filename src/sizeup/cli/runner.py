"""Runs the selected tasks on every arm and stores each result as soon as it is finished.

A crash loses at most the tasks in flight (one per worker: one task, or N with --workers N or N Ray actors):
`--resume RUN_ID` skips every (task, arm) already stored. The arms of a task run one after the other, never
at once, so each model server's CPU and memory during an arm's window can be attributed to that arm alone.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import secrets
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from typing import Any

import psutil
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from sizeup import __version__
from sizeup.cli.workers import this_worker
from sizeup.models import ModelClient, ModelError, make_client
from sizeup.models.types import COMPLETION_ONLY
from sizeup.monitor import Monitor, process
from sizeup.records import ArmSpec, Attempt, Measured, ResourceSummary, RunRecord, TaskResult
from sizeup.sandbox import Limits, Sandbox, TestOutcome, isolation_note, make_sandbox
from sizeup.sandbox.expect import PARENT
from sizeup.sandbox.timeouts import calibrate
from sizeup.store import Store
from sizeup.strategies import Strategy, parse_params, strategy_class
from sizeup.strategies.prompts import STANDARD, MbppThreeShot, Prompter
from sizeup.tasks import Task
from sizeup.verdicts import Status

# How a result's verdict was reached (TaskResult.method["verdict"], compare's `protocol`).
VISIBLE_HIDDEN = "visible-feedback/hidden-verdict"
TESTS_ARE_FEEDBACK = "tests-are-feedback"


@dataclass
class RunConfig:
    """Settings of a run that are not an arm's: where models are served, how candidates are run."""

    provider: str = "embedded"
    url: str | None = None
    timeout_s: float = 10.0
    memory_mb: int = 1024
    sandbox: str = "auto"
    image: str | None = None  # docker sandbox image
    pull: bool = False
    n_ctx: int | None = None
    n_threads: int | None = None
    api_key_env: str = "OPENAI_API_KEY"
    server_pid: int | None = None
    baseline: str | None = None  # the arm the others are compared with (None: the first)
    protocol: str = "standard"  # the prompts: standard, or mbpp-3shot (Austin et al. 2021)
    workers: int = 1  # worker processes (or Ray actors), each with its own model servers and CPUs
    executor: str = "local"  # local processes, or ray
    ray_address: str | None = None  # a Ray cluster's address (None: start or join a local one)

    @classmethod
    def from_dict(cls, data: dict) -> RunConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def environment() -> dict:
    try:
        import llama_cpp

        llama_version = llama_cpp.__version__
    except ImportError:
        llama_version = None
    return {
        "sizeup": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "llama_cpp_python": llama_version,
    }


def dataset_hash(tasks: list[Task]) -> str:
    digest = hashlib.sha256()
    for task in tasks:
        digest.update(task.model_dump_json().encode())
    return digest.hexdigest()[:16]


# Whether concurrent branches are really served at once depends on the server, not on sizeup.
SERVER_CONCURRENCY = {
    "embedded": "the embedded llama.cpp server answers one request at a time (they queue)",
    "ollama": "Ollama serves OLLAMA_NUM_PARALLEL requests per model at once (default 1): set it where "
    "`ollama serve` starts, and mind that memory grows with it",
}


class Runner:
    def __init__(
        self, store: Store, config: RunConfig, arms: list[ArmSpec] | None = None, console: Console | None = None
    ):
        self.store, self.config, self.arms = store, config, list(arms or [])
        self.progress_s = 0.0  # time spent writing progress records for live views
        self.console = console or Console(stderr=True)

    def run(self, tasks: list[Task], resume: RunRecord | None = None, updates: dict[str, Any] | None = None) -> str:
        """Run (or, given the stored run, resume) every arm of every task not yet stored. A resumed run keeps
        its own settings, but for `updates` (where things are now: server_pid, ray_address), stored too."""
        if resume is not None:
            resume.config.update(updates or {})
            self.config = RunConfig.from_dict(resume.config)
            self.arms = list(resume.arms)
        if not self.arms:
            raise ValueError("a run needs at least one arm")
        self.prompter = make_prompter(self.config.protocol, self.store)
        # Settings that cannot work stop with one line before anything is stored or any server started.
        check_budgets(self.arms, self.config)
        if self.pooled:
            # The workers open their own sandboxes; the driver opens none (it would run nothing in it).
            cpu_sets = self._cpu_sets()
            if self.config.executor == "local":
                check_sandbox(self.config.sandbox)  # the workers' machine is this one
            return self._run(tasks, resume, None, cpu_sets)
        # The sandbox first: a backend that cannot run here (--sandbox isolated without bubblewrap) stops
        # with one line before anything is stored or any model server started.
        with make_sandbox(self.config.sandbox, image=self.config.image) as sandbox:
            self._say_sandbox(sandbox.name)
            return self._run(tasks, resume, sandbox)

    @property
    def pooled(self) -> bool:
        """Whether the tasks run on worker processes or Ray actors rather than in this process."""
        return self.config.workers > 1 or self.config.executor != "local"

    def _cpu_sets(self) -> list[list[int]]:
        from sizeup.cli.workers import split_cpus

        if self.config.executor == "ray":
            from sizeup.cli.ray_pool import ray_cpu_sets

            return ray_cpu_sets(self.config.workers, self.config.ray_address)
        if self.config.executor != "local":
            raise ValueError(f"--executor {self.config.executor}: local or ray")
        return split_cpus(self.config.workers)

    def _run(
        self,
        tasks: list[Task],
        resume: RunRecord | None,
        sandbox: Sandbox | None,
        cpu_sets: list[list[int]] | None = None,
    ) -> str:
        run = self._open_run(tasks, resume)
        clients: dict[str, ModelClient] = {}  # each client as it is made: whatever happens, closed below
        error: BaseException | None = None
        try:
            done = self.store.finished(run.run_id)
            todo = [t for t in tasks if any((t.task_id, arm.name) not in done for arm in self.arms)]
            if not todo:
                self.console.print(f"run {run.run_id}: nothing left to do")
            elif sandbox is None:
                self._run_pool(run, todo, done, cpu_sets or [])
            else:
                run.config["sandbox_backend"] = sandbox.name
                run.config["sandbox_isolation"] = isolation_note(sandbox.name)
                # Pools (isolated workers, docker containers) start once; their cost is kept apart.
                run.config["sandbox_startup_s"] = getattr(sandbox, "startup_s", None)
                self._start_models(run, clients)
                self.store.save_run(run)
                self._loop(run, todo, done, clients, sandbox)
            run.status = "finished"
        except KeyboardInterrupt as err:
            error, run.status = err, "interrupted"
            self.console.print(f"[yellow]interrupted; continue with: sizeup run --resume {run.run_id}")
            raise
        except BaseException as err:  # a model or worker error, a store error, a bad setting: never left `running`
            error, run.status = err, "failed"
            raise
        finally:
            close_all(clients)
            try:
                self.store.save_run(run)
            except Exception:  # noqa: BLE001 - the store failing too: the first error is the one to report
                if error is None:
                    raise
        return run.run_id

    def _say_sandbox(self, backend: str) -> None:
        style = "bold yellow" if backend == "process" else None
        self.console.print(f"sandbox: {isolation_note(backend)}", style=style, markup=False)

    def _open_run(self, tasks: list[Task], resume: RunRecord | None) -> RunRecord:
        if resume is not None:
            run = resume
            run.status = "running"
            return run
        run_id = datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)
        run = RunRecord(
            run_id=run_id,
            config=asdict(self.config),
            environment=environment(),
            task_ids=[t.task_id for t in tasks],
            arms=self.arms,
        )
        run.environment["dataset_hash"] = dataset_hash(tasks)
        self.store.save_run(run)
        return run

    def _start_models(self, run: RunRecord, clients: dict[str, ModelClient]) -> dict[str, ModelClient]:
        """One client per distinct model, shared by the arms that use it, loaded and warmed up once. Each is put
        in `clients` as soon as it is made, so that the caller closes every server started, whatever fails."""
        cfg = self.config
        run.config["server_concurrency"] = SERVER_CONCURRENCY.get(cfg.provider, "set by the server")
        if cfg.provider == "ollama" and cfg.n_threads:
            self.console.print(
                f"note: Ollama num_thread {cfg.n_threads}: a model resident with another thread "
                "count is reloaded (new runner) by the warm-up, and that load is recorded",
                markup=False,
            )
        parallel = max(int(arm.params.get("parallel", 1)) for arm in self.arms)
        if parallel > 1 and cfg.provider in SERVER_CONCURRENCY:
            self.console.print(
                f"[yellow]note: parallel {parallel} sends calls at once, but {SERVER_CONCURRENCY[cfg.provider]}"
            )
        for model in dict.fromkeys(m for arm in self.arms for m in arm.models):
            with self.console.status(f"starting model {model} ({cfg.provider})"):
                client = make_client(
                    cfg.provider,
                    model,
                    url=cfg.url,
                    pull=cfg.pull,
                    n_ctx=cfg.n_ctx,
                    n_threads=cfg.n_threads,
                    api_key_env=cfg.api_key_env,
                    server_pid=cfg.server_pid,
                )
                clients[model] = client
                load = {
                    "provider": cfg.provider,
                    **client.load_info(),
                    "processes": client.attribution(),
                    "prompt_style": client.style.value,
                }
            # Checked as soon as the model is up (an Ollama runner is known once the model is loaded), before
            # the next server starts: a CPU budget must be able to see every server of its arm.
            for arm in self.arms:
                if model in arm.models and arm.budget is not None and arm.budget.cpu_s is not None:
                    if not client.server_pids():
                        raise ValueError(
                            f"arm {arm.name}: a CPU budget needs a local model server to measure; "
                            f"model {model}: {client.attribution()}"
                        )
            if model in run.load:  # a resumed run: keep the first start, list the restarts
                run.load.setdefault("restarts", []).append({"model": model, **load})
            else:
                run.load[model] = load
        run.config["server_attribution"] = server_attribution(self.arms, clients)
        if run.config["server_attribution"] != "per_arm":
            self.console.print(f"[yellow]note: {run.config['server_attribution']}")
        return clients

    def strategy(self, arm: ArmSpec, clients: dict[str, ModelClient], sandbox: Sandbox, limits: Limits) -> Strategy:
        cls = strategy_class(arm.strategy)
        return cls(
            [clients[m] for m in arm.models],
            sandbox,
            parse_params(arm.strategy, arm.params),
            limits=limits,
            budget=arm.budget,
            cpu_meter=cpu_meter(arm, clients),
            prompter=self.prompter,
        )

    def _loop(
        self, run: RunRecord, todo: list[Task], done: set, clients: dict[str, ModelClient], sandbox: Sandbox
    ) -> None:
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
        )
        worker = this_worker()  # one worker: this process, on the CPUs it may use, pinned by nobody
        with Progress(*columns, console=self.console, transient=False) as progress:
            bar = progress.add_task(f"run {run.run_id}", total=len(todo))
            base = Limits(timeout_s=self.config.timeout_s, memory_mb=self.config.memory_mb)
            for task in todo:
                # EvalPlus-style: a task whose reference is slow gets proportionally more time.
                limits = calibrate(task, sandbox, base)
                for arm in self.arms:
                    if (task.task_id, arm.name) in done:
                        continue
                    progress.update(bar, description=f"{task.task_id} [{arm.name}]")
                    self.publish(run.run_id, {"kind": "start", "task_id": task.task_id, "arm": arm.name})
                    result = self.solve(run.run_id, task, arm, clients, sandbox, limits)
                    result.worker = worker
                    self.store.save_result(result)
                run.config["progress_writes_s"] = round(self.progress_s, 4)
                progress.advance(bar)

    def publish(self, run_id: str, record: dict[str, Any]) -> None:
        """A progress record for live views (sizeup dashboard); its cost is counted in progress_s."""
        if self.store is None:  # a worker: only the driver writes
            return
        started = time.perf_counter()
        try:
            self.store.save_progress(run_id, {**record, "at": time.time()})
        except Exception:  # noqa: BLE001 - a live view must never stop a run
            pass
        self.progress_s += time.perf_counter() - started

    def _run_pool(self, run: RunRecord, todo: list[Task], done: set, cpu_sets: list[list[int]]) -> None:
        """The tasks on several workers (local processes or Ray actors); results stored as they come back."""
        from sizeup.cli.workers import LocalPool, WorkerSpec, parse_results

        cfg = self.config
        shots = [t.model_dump() for t in getattr(self.prompter, "shots", [])]
        specs = [
            WorkerSpec(
                i,
                cpus,
                run.run_id,
                asdict(cfg),
                [a.model_dump() for a in self.arms],
                len(cpu_sets),
                shots,
            )
            for i, cpus in enumerate(cpu_sets)
        ]
        pool: Any
        if cfg.executor == "ray":
            from sizeup.cli.ray_pool import RayPool

            pool = RayPool(specs, cfg.ray_address)
        else:
            pool = LocalPool(specs)

        def started(index: int, body: dict[str, str]) -> None:  # the live view's task in flight, per worker
            self.publish(run.run_id, {"kind": "start", **body, "worker": index})

        pool.on_start = started
        try:
            with self.console.status(f"starting {len(specs)} workers ({cfg.executor})"):
                ready = pool.start()
            run.load["workers"] = ready
            run.config["concurrency"] = len(specs)
            # The sandbox is the workers': said as they report it (Ray nodes may differ under --sandbox auto).
            backends = list(dict.fromkeys(r["sandbox_backend"] for r in ready))
            run.config["sandbox_backend"] = " + ".join(backends)
            run.config["sandbox_isolation"] = "; ".join(isolation_note(b) for b in backends)
            startups = [r["sandbox_startup_s"] for r in ready if r.get("sandbox_startup_s") is not None]
            run.config["sandbox_startup_s"] = max(startups) if startups else None  # they start side by side
            for backend in backends:
                self._say_sandbox(backend)
            run.config["server_attribution"] = ready[0]["server_attribution"]
            if cfg.provider != "embedded":
                run.config["server_attribution"] += (
                    f"; {len(specs)} workers share the server: a task's server "
                    "figures include the other workers' concurrent tasks"
                )
            self.store.save_run(run)
            items = [
                (t.model_dump_json(), [a.name for a in self.arms if (t.task_id, a.name) not in done]) for t in todo
            ]
            pool.submit_all(items)
            with self._progress() as progress:
                bar = progress.add_task(f"run {run.run_id} on {len(specs)} workers", total=len(items))
                for bodies in pool.results(len(items)):
                    for result in parse_results(bodies):
                        self.store.save_result(result)
                    run.config["progress_writes_s"] = round(self.progress_s, 4)
                    progress.advance(bar)
        finally:
            pool.stop()

    def _progress(self) -> Progress:
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
        )
        return Progress(*columns, console=self.console, transient=False)

    def solve(
        self, run_id: str, task: Task, arm: ArmSpec, clients: dict[str, ModelClient], sandbox: Sandbox, limits: Limits
    ) -> TaskResult:
        strategy = self.strategy(arm, clients, sandbox, limits)
        arm_clients = [clients[m] for m in arm.models]
        # A server shared by several models (`ollama serve`) is measured apart from the models' own processes,
        # without its children (the models' runners): its figures belong to no arm.
        shared = sorted({pid for c in arm_clients for pid in c.shared_server_pids()})
        watch_shared = Monitor(shared, hz=5, descendants=False, gpu=False, cpu_energy=False) if shared else None

        def tick(cpu_pct: float, rss_mb: float) -> None:
            self.publish(
                run_id,
                {
                    "kind": "sample",
                    "task_id": task.task_id,
                    "arm": arm.name,
                    "cpu_pct": round(cpu_pct, 1),
                    "rss_mb": round(rss_mb, 1),
                },
            )

        with Monitor(lambda: arm_pids(arm, clients), on_tick=tick) as monitor, watch_shared or nullcontext():
            outcome = strategy.solve(task)
        attempts, best = outcome.attempts, outcome.best
        failed_calls = [a.error for a in attempts if a.error]
        if failed_calls:
            # A result with a failed model call would measure the harness, not the arm: stop the run
            # without storing this task, so that --resume redoes it once the server is back.
            raise ModelError(
                f"arm {arm.name} ({' + '.join(arm.models)}): {failed_calls[0]} "
                f"(stopped; continue with: sizeup run --resume {run_id})"
            )
        processes = "; ".join(dict.fromkeys(c.attribution() for c in arm_clients))
        held_out = judge_held_out(task, best, sandbox, limits)
        return TaskResult(
            run_id=run_id,
            task_id=task.task_id,
            arm=arm.name,
            model=" + ".join(arm.models),
            strategy=arm.strategy,
            status=held_out.status,
            tests_passed=held_out.tests_passed,
            tests_total=held_out.tests_total,
            visible_status=best.status,
            visible_passed=best.tests_passed,
            visible_total=best.tests_total,
            hidden_passed=held_out.hidden_passed,
            hidden_total=held_out.hidden_total,
            tests_parent_compared=held_out.parent_compared,
            best_attempt_id=best.attempt_id,
            depth_reached=outcome.depth_reached,
            model_calls=len(attempts),
            stopped_by=outcome.stopped_by,
            strategy_overhead_s=outcome.bookkeeping_s,
            budget=arm.budget,
            wall_s=monitor.summary.wall_s,
            prompt_tokens=sum(a.prompt_tokens for a in attempts),
            completion_tokens=sum(a.completion_tokens for a in attempts),
            ttft_s=attempts[0].ttft_s,
            gen_s=sum(a.gen_s for a in attempts),
            server=monitor.summary,
            shared_server=watch_shared.summary if watch_shared else None,
            sandbox_executions=sum(a.executed for a in attempts),
            sandbox_cpu_s=sum(a.exec_cpu_s for a in attempts),
            sandbox_peak_rss_mb=max((a.exec_peak_rss_mb for a in attempts), default=0.0),
            sandbox_wall_s=sum(a.exec_wall_s for a in attempts),
            attempts=attempts,
            sandbox_containers=len({a.container_id for a in attempts if a.container_id}),
            sandbox_figures=sandbox_figures(attempts),
            decode_tokens_per_s=decode_rate(attempts),
            method={
                **figure_methods(attempts, monitor.summary),
                "model_processes": processes,
                "verdict": VISIBLE_HIDDEN if task.hidden_tests else TESTS_ARE_FEEDBACK,
                "sandbox_backend": sandbox.name,
                "sandbox_limits": f"{limits.timeout_s:g} s per run, {limits.test_timeout_s:g} s per test, "
                f"{limits.memory_mb} MB",
            },
        )


def make_prompter(protocol: str, store: Store) -> Prompter:
    if protocol == "standard":
        return STANDARD
    if protocol == MbppThreeShot.name:
        shots = {t.task_id: t for t in store.list_tasks(task_ids=list(MbppThreeShot.SHOT_IDS), source="mbpp")}
        missing = [i for i in MbppThreeShot.SHOT_IDS if i not in shots]
        if missing:
            raise ValueError(
                f"--protocol mbpp-3shot needs MBPP tasks {', '.join(missing)} as shots in {store.url}: "
                "import mbpp.jsonl first"
            )
        return MbppThreeShot([shots[i] for i in MbppThreeShot.SHOT_IDS])
    raise ValueError(f"unknown protocol {protocol!r}: standard or mbpp-3shot")


def protocol_tasks(protocol: str, tasks: list[Task]) -> list[Task]:
    """The tasks a protocol evaluates: mbpp-3shot runs MBPP's test split (ids 11-510), never its shots."""
    if protocol != MbppThreeShot.name:
        return tasks
    return [
        t
        for t in tasks
        if t.source == "mbpp"
        and t.task_id.isdigit()
        and int(t.task_id) in MbppThreeShot.TEST_SPLIT
        and t.task_id not in MbppThreeShot.SHOT_IDS
    ]


@dataclass(frozen=True)
class HeldOut:
    status: Status
    tests_passed: int
    tests_total: int
    hidden_passed: int | None
    hidden_total: int | None
    parent_compared: int


def judge_held_out(task: Task, best: Attempt, sandbox: Sandbox, limits: Limits) -> HeldOut:
    """The kept answer's verdict on visible + hidden tests: one more execution, after the search, whose
    results go nowhere near a prompt (the strategy only ever saw the visible tests). Without hidden tests
    the verdict is the visible one, as before held-out tests existed."""
    if not best.executed and task.tests:
        # The search ended (its budget) before any program was made: a plan or a helper is no answer, and a
        # task with tests that got none has failed them, not gone "unverified".
        n_hidden = len(task.hidden_tests) or None
        return HeldOut(Status.FAILED, 0, len(task.tests) + len(task.hidden_tests), 0 if n_hidden else None, n_hidden, 0)
    if not task.hidden_tests:
        return HeldOut(best.status, best.tests_passed, best.tests_total, None, None, best.tests_parent_compared)
    if best.status == Status.HARNESS_ERROR:
        # Nothing to run the hidden tests on: the verdict still covers them, none passed, and the totals say
        # so alike (tests_total counts the visible and the hidden tests, as hidden_total counts the hidden).
        return HeldOut(
            best.status,
            best.tests_passed,
            len(task.tests) + len(task.hidden_tests),
            0,
            len(task.hidden_tests),
            best.tests_parent_compared,
        )
    run = sandbox.run(best.code, [*task.tests, *task.hidden_tests], limits, setup_code=task.setup_code)
    hidden = run.tests[len(task.tests) :]
    return HeldOut(
        run.status,
        run.tests_passed,
        run.tests_total,
        sum(t.outcome is TestOutcome.PASSED for t in hidden),
        len(task.hidden_tests),
        sum(t.mode == PARENT for t in run.tests),
    )


def check_budgets(arms: list[ArmSpec], config: RunConfig) -> None:
    """Budgets a run cannot enforce, refused before anything starts. A CPU budget is checked against the
    CPU the arm's model servers have used; a server every worker shares (Ollama, an OpenAI-compatible one:
    one process for all) runs other workers' tasks at the same time, so with more than one worker its CPU
    is not the arm's alone."""
    concurrency = config.workers
    if concurrency <= 1 or config.provider == "embedded":  # embedded: each worker has servers of its own
        return
    for arm in arms:
        if arm.budget is not None and arm.budget.cpu_s is not None:
            raise ValueError(
                f"arm {arm.name}: a CPU budget cannot be enforced with --workers {concurrency} on a shared "
                f"{config.provider} server (its CPU during a task includes the other workers' tasks); "
                "use --workers 1, or --provider embedded, or a token or call budget"
            )


def check_sandbox(name: str) -> None:
    """A sandbox backend that cannot run on this machine, said in one line without opening it (the workers
    open their own): an unknown name, or --sandbox isolated without bubblewrap. make_sandbox raises its
    own error for both before it starts anything."""
    from sizeup.sandbox import BACKENDS, unavailable_reason

    if name not in ("auto", "docker", *BACKENDS) or (name == "isolated" and unavailable_reason()):
        make_sandbox(name)


def close_all(clients: dict[str, ModelClient]) -> None:
    """Stop every model server started, each even if another one's close fails."""
    for client in clients.values():
        try:
            client.close()
        except Exception:  # noqa: BLE001 - the next server must still be stopped
            pass


def arm_pids(arm: ArmSpec, clients: dict[str, ModelClient]) -> list[int]:
    """The processes charged to an arm: every one of its models' own server processes."""
    return sorted({pid for model in arm.models for pid in clients[model].server_pids()})


def cpu_meter(arm: ArmSpec, clients: dict[str, ModelClient]) -> Callable[[], float] | None:
    """CPU seconds the arm's model servers (with their children) have used so far, from the kernel: what a
    CPU budget is checked against between calls. None where nothing local is known."""
    if arm.budget is None or arm.budget.cpu_s is None:
        return None

    def used() -> float:
        readings = (process.read_stat(pid) for pid in process.tree(arm_pids(arm, clients)))
        return sum(r.cpu_s for r in readings if r is not None)

    return used


def server_attribution(arms: list[ArmSpec], clients: dict[str, ModelClient]) -> str:
    """Whether each arm's server figures are its own. Arms run one after the other, so the CPU of a server
    serving several arms' models is still each arm's own; its memory holds every model it serves and is
    not attributable to one arm."""
    pids = {arm.name: set(arm_pids(arm, clients)) for arm in arms}
    if not any(pids.values()):
        return "not_measurable: no local server process (a remote server's host figures are out of reach)"
    for i, first in enumerate(arms):
        for second in arms[i + 1 :]:
            if set(first.models) != set(second.models) and pids[first.name] & pids[second.name]:
                return (
                    f"shared: one server process serves arms {first.name} and {second.name} with different "
                    "models; CPU per arm is the arm's own (arms never run at once), peak memory holds every "
                    "model it serves and is not attributable to one arm"
                )
    return "per_arm"


def sandbox_figures(attempts: list[Attempt]) -> dict[str, float]:
    """A task's backend-specific figures: peaks and container totals are maxima (a warm container's
    counters cover its whole life), everything else (CPU, starts, kills) adds up over executions."""
    merged: dict[str, float] = {}
    for attempt in attempts:
        for name, value in attempt.exec_figures.items():
            peak = "peak" in name or name.endswith("_mb") or name.endswith("_total_s")
            merged[name] = max(merged.get(name, value), value) if peak else merged.get(name, 0.0) + value
    return merged


def decode_rate(attempts: list[Attempt]) -> float | None:
    """Completion tokens per second of decoding (after the first token), over a task's calls."""
    timed = [(a.decode_s, a.completion_tokens) for a in attempts if a.decode_s and a.completion_tokens > 1]
    seconds = sum(decode for decode, _ in timed)
    # The first token arrives at TTFT; the decode phase produces the other n - 1.
    return sum(tokens - 1 for _, tokens in timed) / seconds if seconds > 0 else None


def figure_methods(attempts: list[Attempt], server: ResourceSummary) -> dict[str, str]:
    """How each stored figure was measured, so that nobody takes a count for a reading or a sample for
    a kernel high-water mark."""
    sources = {a.usage_source for a in attempts}
    tokens = "server" if sources == {"server"} else "counted_by_sizeup"
    from_server = bool(attempts) and all(a.decode_timed_by_server for a in attempts)
    return {
        "prompt_tokens": Measured.NOT_MEASURABLE.value if COMPLETION_ONLY in sources else tokens,
        "completion_tokens": tokens,
        "ttft_s": "client_stream (request sent -> first non-empty chunk)",
        "decode_tokens_per_s": "server_timings" if from_server else "client_stream (total - ttft)",
        **{
            f"model_{name}": str(how.value if isinstance(how, Measured) else how) for name, how in server.method.items()
        },
        "sandbox_cpu_s": "kernel (wait4 utime+stime of each execution)",
        "sandbox_peak_rss_mb": "kernel (the child's VmHWM)",
        "model_load": "apart, in the run record (server start + warm-up call)",
    }


def dumps(data: object) -> str:
    return json.dumps(data, indent=2, default=str)
