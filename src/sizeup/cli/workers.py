"""Running a run's tasks on several workers: processes on this machine (`--workers N`) or Ray actors across
machines (`--executor ray`, in ray_pool.py).

A worker is pinned to a CPU set of its own (os.sched_setaffinity; its model servers inherit it and get one
thread per CPU of it), starts its own model servers and sandbox, and runs every arm of a task, one after the
other, as a one-worker run does; tasks are dealt from one queue to whichever worker is free. Only the driver
writes to the store, as results arrive, so --resume works as before. Each result records its worker: `id`,
the `cpus` it was pinned to, its `node` (host, CPU model, cores) and the run's `concurrency` (workers).

What stays attributable: an embedded server belongs to one worker and runs one task at a time, so its
figures are that task's, with disjoint CPUs (memory bandwidth and caches are still shared: `concurrency`
says how many tasks ran at once). A shared server (Ollama, an OpenAI-compatible one) serves several workers'
tasks at once: its CPU and memory during a task are not that task's alone, and results say so.
"""

from __future__ import annotations

import os
import platform
import queue
import signal
import socket
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console

from sizeup.models.types import ModelError
from sizeup.records import ArmSpec, RunRecord, TaskResult
from sizeup.tasks import Task


def node_info() -> dict[str, Any]:
    """The machine a worker runs on, as stored with each of its results."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            model = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), model)
    except OSError:
        pass
    return {"host": socket.gethostname(), "cpu_model": model, "cores": os.cpu_count()}


def split_cpus(workers: int, cpus: list[int] | None = None) -> list[list[int]]:
    """Disjoint CPU sets, one per worker, as even as they can be."""
    available = sorted(cpus if cpus is not None else os.sched_getaffinity(0))
    if workers < 1:
        raise ValueError(f"--workers {workers}: at least 1")
    if workers > len(available):
        raise ValueError(
            f"--workers {workers}: this process may use only {len(available)} CPUs "
            f"({', '.join(map(str, available))}); each worker needs one of its own"
        )
    share, extra = divmod(len(available), workers)
    sets, start = [], 0
    for index in range(workers):
        size = share + (1 if index < extra else 0)
        sets.append(available[start : start + size])
        start += size
    return sets


@dataclass
class WorkerSpec:
    """Everything a worker needs, picklable: it is sent to a process or a Ray actor."""

    index: int
    cpus: list[int]
    run_id: str
    config: dict[str, Any]
    arms: list[dict[str, Any]]
    concurrency: int
    shots: list[dict[str, Any]] = field(default_factory=list)  # --protocol mbpp-3shot's solved tasks
    pin: bool = True  # local processes pin themselves; a Ray actor's CPUs are Ray's to give


class TaskWorker:
    """One worker: its model servers, its sandbox, and every arm of the tasks it is given."""

    def __init__(self, spec: WorkerSpec):
        from sizeup.cli.runner import RunConfig, Runner
        from sizeup.strategies.prompts import STANDARD, MbppThreeShot

        self.spec = spec
        if spec.pin and hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, spec.cpus)  # the model servers started below inherit it
        config = RunConfig.from_dict(spec.config)
        cpus = spec.cpus or sorted(os.sched_getaffinity(0))
        # One model-server thread per CPU of the worker's own (a Ray actor: the CPUs Ray gave it, one by default).
        config.n_threads = config.n_threads or (len(spec.cpus) if spec.pin else 1)
        self.arms = [ArmSpec.model_validate(arm) for arm in spec.arms]
        self.runner = Runner(None, config, self.arms, Console(file=open(os.devnull, "w")))  # type: ignore[arg-type]
        self.runner.prompter = MbppThreeShot([Task.model_validate(s) for s in spec.shots]) if spec.shots else STANDARD
        self.info = {"id": spec.index, "cpus": cpus, "node": node_info(), "concurrency": spec.concurrency}
        self._sandbox_context: Any = None
        self.sandbox: Any = None
        self.clients: dict[str, Any] = {}

    def start(self) -> dict[str, Any]:
        """Start the sandbox and the model servers; return what the run record keeps of their load."""
        from sizeup.sandbox import make_sandbox

        config = self.runner.config
        self._sandbox_context = make_sandbox(config.sandbox, image=config.image)
        self.sandbox = self._sandbox_context.__enter__()
        scratch = RunRecord(run_id=self.spec.run_id, config=dict(self.spec.config), arms=self.arms)
        self.clients = self.runner._start_models(scratch)
        return {
            "worker": self.info,
            "load": scratch.load,
            "server_attribution": scratch.config["server_attribution"],
            "sandbox_backend": self.sandbox.name,
        }

    def solve_task(self, task_json: str, arm_names: list[str]) -> list[str]:
        """Every named arm on one task, in order; the results as JSON, each saying which worker made it."""
        from sizeup.sandbox import Limits
        from sizeup.sandbox.timeouts import calibrate

        task = Task.model_validate_json(task_json)
        config = self.runner.config
        limits = calibrate(task, self.sandbox, Limits(timeout_s=config.timeout_s, memory_mb=config.memory_mb))
        out = []
        for arm in self.arms:
            if arm.name in arm_names:
                result = self.runner.solve(self.spec.run_id, task, arm, self.clients, self.sandbox, limits)
                result.worker = self.info
                if self.spec.concurrency > 1 and self.runner.config.provider != "embedded":
                    result.method["model_processes"] += (
                        f"; shared by {self.spec.concurrency} workers' concurrent tasks: its CPU and memory "
                        "during a task are not that task's alone"
                    )
                out.append(result.model_dump_json())
        return out

    def close(self) -> None:
        for client in self.clients.values():
            client.close()
        if self._sandbox_context is not None:
            self._sandbox_context.__exit__(None, None, None)


def _die_with_parent() -> None:
    import ctypes
    import sys

    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() == 1:  # the driver is already gone
        os._exit(143)


def worker_process(spec: WorkerSpec, inbox: Any, outbox: Any) -> None:
    """A local worker process: start, then solve tasks from the shared inbox until its end-of-work None."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver decides when workers stop
    signal.signal(signal.SIGTERM, lambda *_: os._exit(143))  # stopping: servers die with us (PDEATHSIG)
    _die_with_parent()  # a driver killed with SIGKILL leaves no worker behind
    worker = TaskWorker(spec)
    try:
        outbox.put(("ready", spec.index, worker.start()))
        while (item := inbox.get()) is not None:
            task_json, arm_names = item
            outbox.put(("done", spec.index, worker.solve_task(task_json, arm_names)))
    except Exception as err:  # ModelError, a sandbox that cannot start, ...: the driver stops the run
        outbox.put(("error", spec.index, f"{type(err).__name__}: {err}"))
    finally:
        worker.close()


class LocalPool:
    """N worker processes on this machine, each pinned to its own CPUs, fed from one queue."""

    def __init__(self, specs: list[WorkerSpec]):
        import multiprocessing

        self._mp = multiprocessing.get_context("spawn")  # no inherited threads, locks or store handles
        self.inbox, self.outbox = self._mp.Queue(), self._mp.Queue()
        self.processes = [
            self._mp.Process(
                target=worker_process,
                args=(spec, self.inbox, self.outbox),
                name=f"sizeup-worker-{spec.index}",
                daemon=True,
            )
            for spec in specs
        ]

    def start(self) -> list[dict[str, Any]]:
        for process in self.processes:
            process.start()
        ready: list[dict[str, Any]] = []
        while len(ready) < len(self.processes):
            kind, index, body = self._next()
            if kind == "error":
                raise WorkerError(f"worker {index}: {body}")
            ready.append(body)
        return sorted(ready, key=lambda r: r["worker"]["id"])

    def submit_all(self, items: list[tuple[str, list[str]]]) -> None:
        for item in items:
            self.inbox.put(item)
        for _ in self.processes:
            self.inbox.put(None)

    def results(self, count: int):
        """Yield each task's results (JSON) as a worker finishes it, `count` tasks in all."""
        for _ in range(count):
            kind, index, body = self._next()
            if kind == "error":
                raise WorkerError(f"worker {index}: {body}")
            yield body

    def _next(self) -> tuple[str, int, Any]:
        while True:
            try:
                return self.outbox.get(timeout=1.0)
            except queue.Empty:
                dead = [p for p in self.processes if p.exitcode not in (None, 0)]
                if dead:
                    raise WorkerError(f"{dead[0].name} died (exit code {dead[0].exitcode})") from None

    def stop(self) -> None:
        for process in self.processes:
            if process.is_alive():
                process.terminate()
        for process in self.processes:
            process.join(timeout=15)
            if process.is_alive():
                process.kill()
                process.join()


class WorkerError(ModelError):
    """A worker could not go on: the run stops (one line), --resume continues it."""


def parse_results(bodies: list[str]) -> list[TaskResult]:
    return [TaskResult.model_validate_json(body) for body in bodies]
