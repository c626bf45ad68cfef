"""Running a run's tasks on several workers: processes on this machine (`--workers N`) or Ray actors across
machines (`--executor ray`, in ray_pool.py).

A worker is pinned to a CPU set of its own (os.sched_setaffinity; its model servers inherit it and get one
thread per CPU of it), starts its own model servers and sandbox, and runs every arm of a task, one after the
other, as a one-worker run does; tasks are dealt from one queue to whichever worker is free. Only the driver
writes to the store, as results arrive, so --resume works as before. Each result records its worker: `id`,
the `cpus` its processes could run on and whether sizeup `pinned` it to them alone (a local worker of a
--workers run, and a Ray actor, which claims on its node as many CPUs as Ray gave it in `resources` such as
{"CPU": 1}: yes; a one-worker run, or an actor that found no CPU left unclaimed: no), its `node` (host, CPU
model, cores, GPU if any) and the run's `concurrency` (workers).

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
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from sizeup.models.types import ModelError
from sizeup.records import ArmSpec, RunRecord, TaskResult
from sizeup.sandbox import Limits
from sizeup.tasks import Task


def node_info() -> dict[str, Any]:
    """The machine a worker runs on, as stored with each of its results."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            model = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), model)
    except OSError:
        pass
    return {"host": socket.gethostname(), "cpu_model": model, "cores": os.cpu_count(), "gpu": gpu_name()}


def gpu_name() -> str | None:
    """The node's NVIDIA GPU(s) by NVML's name ("NVIDIA H200", "2 x NVIDIA H200", "NVIDIA A10, NVIDIA T4");
    None where there is none, or no NVML to ask (no nvidia-ml-py, no driver): unknown is not "no GPU"."""
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:  # noqa: BLE001 - no package, no libnvidia-ml, no driver: nothing to say
        return None
    try:
        names = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            name = pynvml.nvmlDeviceGetName(pynvml.nvmlDeviceGetHandleByIndex(index))
            names.append(name.decode() if isinstance(name, bytes) else str(name))
    except Exception:  # noqa: BLE001 - a GPU lost mid-query: unknown
        return None
    finally:
        try:
            pynvml.nvmlShutdown()  # NVML counts its inits: the monitor's own stays open
        except Exception:  # noqa: BLE001
            pass
    if not names:
        return None
    distinct = list(dict.fromkeys(names))
    return f"{len(names)} x {names[0]}" if len(distinct) == 1 and len(names) > 1 else ", ".join(names)


def worker_info(index: int, cpus: list[int], pinned: bool, concurrency: int) -> dict[str, Any]:
    """A result's `worker`, for the worker running in this process: its node and its priority (`nice`: its
    model servers' and sandbox's too, which inherit it) are read here."""
    return {
        "id": index,
        "cpus": cpus,
        "pinned": pinned,
        "node": node_info(),
        "concurrency": concurrency,
        "nice": os.getpriority(os.PRIO_PROCESS, 0),
    }


def this_worker() -> dict[str, Any]:
    """A one-worker run's `worker`: id 0, the CPUs this process may run on (not pinned by sizeup), its node."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    return worker_info(0, cpus, pinned=False, concurrency=1)


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


CLAIMS_DIR = Path(tempfile.gettempdir()) / "sizeup-cpu-claims"  # one per host: every node process on it shares it


@dataclass
class CpuClaim:
    """CPUs of this host held by one worker for as long as its process lives: a lock file per CPU, locked
    (flock) by that process; the kernel lets go when the process ends, however it ends, so no claim outlives
    its worker."""

    cpus: list[int]
    _locks: list[Any] = field(default_factory=list, repr=False)

    def release(self) -> None:
        for lock in self._locks:
            lock.close()
        self._locks = []


def claim_cpus(count: int, cpus: list[int] | None = None, claims_dir: Path = CLAIMS_DIR) -> CpuClaim | None:
    """`count` CPUs of `cpus` (default: those this process may run on) that no other worker on this host holds,
    lowest first; None when fewer are free. Ray reserves a CPU's worth of time for an actor but pins it to no
    CPU, and several node processes may share one host: a claim is what keeps two actors off one CPU."""
    import fcntl

    claim = CpuClaim([])
    for cpu in sorted(cpus if cpus is not None else os.sched_getaffinity(0)):
        try:
            claims_dir.mkdir(parents=True, exist_ok=True)
            lock = open(claims_dir / f"cpu-{cpu}.lock", "a")  # noqa: SIM115 - held open: it is the claim
        except OSError:  # a claims directory this user may not write to: no claim; the worker runs unpinned
            break
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # another worker's
            lock.close()
            continue
        claim.cpus.append(cpu)
        claim._locks.append(lock)
        if len(claim.cpus) == count:
            return claim
    claim.release()
    return None


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


class TaskWorker:
    """One worker: its model servers, its sandbox, and every arm of the tasks it is given."""

    def __init__(self, spec: WorkerSpec):
        from sizeup.cli.runner import RunConfig, Runner
        from sizeup.strategies.prompts import STANDARD, MbppThreeShot

        self.spec = spec
        # Pinned to `cpus` when it has any (a Ray actor's: those it claimed on its node).
        pinned = bool(spec.cpus) and hasattr(os, "sched_setaffinity")
        if pinned:
            os.sched_setaffinity(0, spec.cpus)  # the model servers started below inherit it
        config = RunConfig.from_dict(spec.config)
        # The CPUs its processes may run on: its own set when pinned; else (a Ray actor that found no CPU to claim)
        # whatever the node allows, which `pinned: false` says is not the worker's alone.
        cpus = sorted(os.sched_getaffinity(0))  # read back, not taken from the spec: what the kernel applies
        # One model-server thread per CPU of the worker's own (an unpinned Ray actor: one), for the servers it
        # starts itself. A server every worker shares (Ollama) keeps its own setting: workers
        # sending different thread counts would make it reload its runner back and forth.
        if config.provider == "embedded":
            config.n_threads = config.n_threads or (len(spec.cpus) if pinned else 1)
        self.arms = [ArmSpec.model_validate(arm) for arm in spec.arms]
        self.runner = Runner(None, config, self.arms, Console(file=open(os.devnull, "w")))  # type: ignore[arg-type]
        self.runner.prompter = MbppThreeShot([Task.model_validate(s) for s in spec.shots]) if spec.shots else STANDARD
        self.info = worker_info(spec.index, cpus, pinned, spec.concurrency)
        self._sandbox_context: Any = None
        self._limits: tuple[str, Limits] | None = None  # the last task's judging limits: its reference runs once
        self.sandbox: Any = None
        self.clients: dict[str, Any] = {}

    def start(self) -> dict[str, Any]:
        """Start the sandbox and the model servers; return what the run record keeps of their load."""
        from sizeup.sandbox import make_sandbox

        config = self.runner.config
        self._sandbox_context = make_sandbox(config.sandbox, image=config.image)
        self.sandbox = self._sandbox_context.__enter__()
        scratch = RunRecord(run_id=self.spec.run_id, config=dict(self.spec.config), arms=self.arms)
        self.runner._start_models(scratch, self.clients)  # each client kept as it is made: close() stops it
        return {
            "worker": self.info,
            "load": scratch.load,
            "server_attribution": scratch.config["server_attribution"],
            "sandbox_backend": self.sandbox.name,
            "sandbox_startup_s": getattr(self.sandbox, "startup_s", None),
        }

    def solve_task(
        self, task_json: str, arm_names: list[str], on_arm: Callable[[str, str], None] | None = None
    ) -> list[str]:
        """Every named arm on one task, in order; the results as JSON, each saying which worker made it.
        `on_arm(task_id, arm)` is told as each arm starts (the driver's progress `start` records)."""
        from sizeup.sandbox.timeouts import calibrate

        task = Task.model_validate_json(task_json)
        config = self.runner.config
        if self._limits is None or self._limits[0] != task_json:  # a Ray actor is given a task's arms one by one
            base = Limits(timeout_s=config.timeout_s, memory_mb=config.memory_mb)
            self._limits = (task_json, calibrate(task, self.sandbox, base))
        limits = self._limits[1]
        out = []
        for arm in self.arms:
            if arm.name in arm_names:
                if on_arm is not None:
                    on_arm(task.task_id, arm.name)
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
        """Stop its model servers and its sandbox (containers, worker pools); each even if another fails."""
        from sizeup.cli.runner import close_all

        clients, self.clients = self.clients, {}
        close_all(clients)
        context, self._sandbox_context = self._sandbox_context, None
        if context is not None:
            context.__exit__(None, None, None)


def _die_with_parent() -> None:
    import ctypes
    import sys

    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() == 1:  # the driver is already gone
        os._exit(143)


def worker_process(spec: WorkerSpec, inbox: Any, outbox: Any) -> None:
    """A local worker process: start, then solve tasks from the shared inbox until its end-of-work None."""

    def stop(*_: object) -> None:
        # SIGTERM (the driver stopping the run, or dying: PDEATHSIG) unwinds to `finally: worker.close()`, so
        # the worker's servers, sandbox workers and docker containers are stopped, not left behind. Once only:
        # a second SIGTERM must not cut close() short. Results not yet sent are not waited for.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        outbox.cancel_join_thread()
        raise SystemExit(143)

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver decides when workers stop
    signal.signal(signal.SIGTERM, stop)
    _die_with_parent()  # a driver killed with SIGKILL leaves no worker behind
    worker = TaskWorker(spec)

    def started(task_id: str, arm: str) -> None:
        outbox.put(("start", spec.index, {"task_id": task_id, "arm": arm}))

    try:
        outbox.put(("ready", spec.index, worker.start()))
        while (item := inbox.get()) is not None:
            task_json, arm_names = item
            outbox.put(("done", spec.index, worker.solve_task(task_json, arm_names, started)))
    except Exception as err:  # ModelError, a sandbox that cannot start, ...: the driver stops the run
        outbox.put(("error", spec.index, f"{type(err).__name__}: {err}"))
    finally:
        worker.close()


class LocalPool:
    """N worker processes on this machine, each pinned to its own CPUs, fed from one queue."""

    STOP_WAIT_S = 15.0  # how long a worker is given to close its servers and sandbox before it is killed

    def __init__(self, specs: list[WorkerSpec]):
        import multiprocessing

        self._mp = multiprocessing.get_context("spawn")  # no inherited threads, locks or store handles
        self.inbox, self.outbox = self._mp.Queue(), self._mp.Queue()
        self.on_start: Callable[[int, dict[str, str]], None] | None = None  # a worker began an arm of a task
        self._drained = False  # every task's results are in, and every worker was sent its end-of-work None
        self._ends_sent = False
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
        self._ends_sent = True

    def results(self, count: int) -> Iterator[list[str]]:
        """Yield each task's results (JSON) as a worker finishes it, `count` tasks in all."""
        done = 0
        while done < count:
            kind, index, body = self._next()
            if kind == "error":
                raise WorkerError(f"worker {index}: {body}")
            if kind == "start":
                if self.on_start is not None:
                    self.on_start(index, body)
                continue
            done += 1
            yield body
        self._drained = self._ends_sent

    def _next(self) -> tuple[str, int, Any]:
        while True:
            try:
                return self.outbox.get(timeout=1.0)
            except queue.Empty:
                dead = [p for p in self.processes if p.exitcode not in (None, 0)]
                if dead:
                    raise WorkerError(f"{dead[0].name} died (exit code {dead[0].exitcode})") from None

    def stop(self) -> None:
        """After a normal finish every worker has its end-of-work None and is closing its servers and sandbox:
        it is given STOP_WAIT_S to do so. Otherwise (an error, Ctrl-C) workers are told to stop at once, and
        SIGTERM makes each close its servers and sandbox before it exits. One still alive after that is killed."""
        started = [p for p in self.processes if p.pid is not None]
        if self._drained:
            deadline = time.monotonic() + self.STOP_WAIT_S
            for process in started:
                process.join(timeout=max(0.0, deadline - time.monotonic()))
        for process in started:
            if process.is_alive():
                process.terminate()
        deadline = time.monotonic() + self.STOP_WAIT_S
        for process in started:
            process.join(timeout=max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()
        # Tasks still queued for workers that are gone: dropped, or the queue's feeder thread, blocked on a full
        # pipe nobody reads, would keep this process from ever exiting.
        for channel in (self.inbox, self.outbox):
            channel.cancel_join_thread()
            channel.close()


class WorkerError(ModelError):
    """A worker could not go on: the run stops (one line), --resume continues it."""


def parse_results(bodies: list[str]) -> list[TaskResult]:
    return [TaskResult.model_validate_json(body) for body in bodies]
