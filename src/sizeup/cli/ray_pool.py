"""The workers of workers.py as Ray actors, placed by Ray across the nodes of a cluster (`--executor ray`).

Each actor declares one CPU (Ray places one per free CPU of a node) and starts its own embedded servers on
its node, or talks to its node's own server (`--url http://127.0.0.1:11434` means each node's). The driver
deals tasks to free actors (a task's arms as one call each, so it knows which arm is running) and writes
results to the store as each task comes back; a task whose actor dies is
given to another (once more at most) and, being stored by the driver only once it comes back, is never
stored twice. Each result records its node and the resources Ray gave its actor. Ray reserves a CPU's worth of
time for an actor but pins it to no CPU: each actor claims CPUs of its node for itself (workers.claim_cpus; node
processes sharing a host share the claims) and pins itself to them, and runs at normal priority (`nice` 0), not
at the niceness 15 Ray gives its workers — as a local worker does.

A cluster with fewer free CPUs than --workers would leave actors waiting for a place forever: the driver
checks the free CPUs first, and gives the actors PLACE_TIMEOUT_S to start, and otherwise stops with one line.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from sizeup.cli.workers import TaskWorker, WorkerError, WorkerSpec, claim_cpus

RETRIES = 1  # a task whose actor died is tried once more, on another actor
PLACE_TIMEOUT_S = 120.0  # how long the actors may take to be placed and running (not to load their models)


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ValueError("--executor ray needs Ray: pip install 'sizeup[ray]'") from None
    return ray


def ray_cpu_sets(workers: int, address: str | None) -> list[list[int]]:
    """Each actor claims its CPUs on the node Ray places it on: the sets are filled in by the actors (empty here)."""
    if workers < 1:
        raise ValueError(f"--workers {workers}: at least 1")
    _ray()
    return [[] for _ in range(workers)]


class _Actor:
    """The Ray actor: one TaskWorker, on whichever node Ray placed it."""

    def __init__(self, spec: WorkerSpec):
        import ray

        # What Ray reserved for this actor ({"CPU": 1.0}): a share of the node's time, on no CPU in particular.
        # The actor claims that many CPUs of its node for itself and pins itself (and so its model servers and
        # sandbox) to them, as a local worker is pinned; where the node has no CPU left unclaimed (a node
        # declaring more CPUs to Ray than it has), it runs unpinned and its records say `pinned: false`.
        resources = dict(ray.get_runtime_context().get_assigned_resources())
        self.claim = claim_cpus(max(1, int(resources.get("CPU", 1))))
        cpus = self.claim.cpus if self.claim is not None else []
        self.worker = TaskWorker(replace(spec, cpus=cpus))
        self.worker.info["resources"] = resources

    def start(self) -> dict[str, Any]:
        return self.worker.start()

    def solve(self, task_json: str, arm_names: list[str]) -> list[str]:
        return self.worker.solve_task(task_json, arm_names)

    def pid(self) -> int:
        import os

        return os.getpid()

    def close(self) -> None:
        self.worker.close()
        if self.claim is not None:
            self.claim.release()


@dataclass
class _Dealt:
    """A task dealt to an actor: its arms, those still to come back (in order, one call each), the results of
    those back, and how many times its actor died under it."""

    task_json: str
    task_id: str
    arms: list[str]
    actor: int = -1
    arms_left: list[str] = field(default_factory=list)
    bodies: list[str] = field(default_factory=list)
    tries: int = 0
    futures: list[Any] = field(default_factory=list)  # one per arm left, in the same order

    def deal(self, actor: int) -> None:
        """To an actor, every arm: a retried task's arms all run again on one actor (a task's arms are compared
        on the same worker), the dead actor's results dropped."""
        self.actor, self.arms_left, self.bodies = actor, list(self.arms), []


class RayPool:
    """Actors fed one task at a time; a dead actor's task goes to another."""

    def __init__(self, specs: list[WorkerSpec], address: str | None):
        self.ray = _ray()
        self.specs, self.address = specs, address
        self.actors: dict[int, Any] = {}
        self.items: deque[tuple[str, list[str]]] = deque()
        self.busy: set[int] = set()
        self._pids: dict[int, int] = {}
        self._started_ray = False
        self.on_start: Callable[[int, dict[str, str]], None] | None = None  # a task was dealt to an actor

    def start(self) -> list[dict[str, Any]]:
        ray = self.ray
        where = self.address or "a local Ray instance"
        if not ray.is_initialized():
            _check_reachable(self.address)  # ray.init retries an address nobody answers on for many minutes
            try:
                ray.init(
                    address=self.address,
                    include_dashboard=False,
                    log_to_driver=False,
                    runtime_env={"env_vars": _passed_env()},
                )
            except Exception as err:  # noqa: BLE001 - ConnectionError, RuntimeError, ValueError, ...: one line
                raise WorkerError(f"--executor ray: could not connect to {where}: {_one_line(err)}") from None
            self._started_ray = True
        self._wait_for_cpus(where)
        # Ray starts its workers at niceness 15 (its daemons first), and the actor's model servers and sandbox
        # would inherit it: anything else on the node would come before them, and their times would be measured
        # under a handicap a local worker does not have. Normal priority, asked for the way Ray's own job
        # supervisor asks for it. (Its effect on scale_bench's Ray overhead was within that benchmark's noise.)
        actor_class = ray.remote(num_cpus=1, max_restarts=0, runtime_env={"env_vars": {"RAY_worker_niceness": "0"}})(
            _Actor
        )
        self.actors = {
            spec.index: actor_class.options(name=f"sizeup-worker-{spec.index}").remote(spec) for spec in self.specs
        }
        try:
            # Asked first, with a limit: an actor Ray cannot place never answers. Asked now, too: an actor
            # answers one call at a time, so a busy one could not say it later.
            pids = ray.get([a.pid.remote() for a in self.actors.values()], timeout=PLACE_TIMEOUT_S)
            self._pids = dict(zip(self.actors, pids, strict=True))
            return ray.get([actor.start.remote() for actor in self.actors.values()])
        except ray.exceptions.GetTimeoutError:
            raise WorkerError(
                f"--workers {len(self.specs)}: Ray did not start {len(self.specs)} workers at {where} within "
                f"{PLACE_TIMEOUT_S:g} s ({self._cpus_free()}); see `ray status`"
            ) from None
        except ray.exceptions.RayError as err:
            raise WorkerError(f"a Ray worker could not start: {_one_line(err)}") from None

    def _cpus_free(self) -> str:
        free = self.ray.available_resources().get("CPU", 0.0)
        total = self.ray.cluster_resources().get("CPU", 0.0)
        return f"{free:g} of the cluster's {total:g} CPUs free"

    def _wait_for_cpus(self, where: str, wait_s: float = 60.0) -> None:
        """Each actor takes one CPU: a cluster that has too few stops the run now, with one line, instead of
        leaving actors pending forever. CPUs held by actors still being torn down are waited for a while."""
        needed = len(self.specs)
        total = self.ray.cluster_resources().get("CPU", 0.0)
        if total < needed:
            raise WorkerError(
                f"--workers {needed}: the Ray cluster at {where} has {total:g} CPUs, each worker needs one; "
                "add nodes (ray start --address ...) or use fewer workers"
            )
        deadline = time.monotonic() + wait_s
        while self.ray.available_resources().get("CPU", 0.0) < needed:
            if time.monotonic() > deadline:
                raise WorkerError(
                    f"--workers {needed}: only {self._cpus_free()} at {where} after {wait_s:g} s; "
                    "other jobs hold the rest (see `ray status`)"
                )
            time.sleep(0.5)

    def submit_all(self, items: list[tuple[str, list[str]]]) -> None:
        self.items.extend(items)

    def results(self, count: int) -> Iterator[list[str]]:
        """Yield each task's results as an actor finishes it; retry a dead actor's task on another.

        A task's arms go to its actor as one call each, all at once: the actor runs them one after the other
        (an actor answers its calls in order), and as each comes back the driver knows the next has begun (the
        live view's arm in flight). The actor takes a new task once every arm of its task is back."""
        ray = self.ray
        pending = deque(_Dealt(t, json.loads(t)["task_id"], list(arms)) for t, arms in self.items)
        in_flight: dict[Any, _Dealt] = {}  # each arm's future -> its task, as dealt to an actor
        idle = deque(self.actors)
        yielded = 0
        while yielded < count:
            while idle and pending:
                dealt = pending.popleft()
                dealt.deal(idle.popleft())
                solve = self.actors[dealt.actor].solve.remote
                dealt.futures = [solve(dealt.task_json, [arm]) for arm in dealt.arms_left]
                in_flight.update(dict.fromkeys(dealt.futures, dealt))
                self._started(dealt)
            if not in_flight:
                raise WorkerError("every Ray worker died; continue with: sizeup run --resume RUN_ID")
            (done,), _ = ray.wait(list(in_flight), num_returns=1)
            dealt = in_flight.pop(done)
            try:
                bodies = ray.get(done)
            except ray.exceptions.RayActorError:
                self.actors.pop(dealt.actor, None)  # dead: never given another task
                for future in dealt.futures:
                    in_flight.pop(future, None)
                if dealt.tries >= RETRIES:
                    raise WorkerError(f"a task's worker died {dealt.tries + 1} times; stopping") from None
                dealt.tries += 1
                pending.appendleft(dealt)
                continue
            except ray.exceptions.RayTaskError as err:
                raise WorkerError(f"worker {dealt.actor}: {_one_line(err)}") from None
            dealt.bodies += bodies
            arm = dealt.futures.index(done)  # the first of those left: an actor answers in order
            del dealt.futures[arm], dealt.arms_left[arm]
            if dealt.arms_left:
                self._started(dealt)
                continue
            idle.append(dealt.actor)
            yielded += 1
            self.busy = {d.actor for d in in_flight.values()}  # the actors with a task in flight right now
            yield dealt.bodies

    def _started(self, dealt: _Dealt) -> None:
        """Say that an actor began the task's next arm."""
        if self.on_start is not None:
            self.on_start(dealt.actor, {"task_id": dealt.task_id, "arm": dealt.arms_left[0]})

    def pids(self) -> dict[int, int]:
        """Each actor's process id, on its node (for a test that kills one)."""
        return dict(self._pids)

    def stop(self) -> None:
        """Every actor is asked to close its servers and sandbox at once, and given 30 s in all (a busy one
        closes after its task); then each is killed, done or not."""
        closing = []
        for actor in self.actors.values():
            try:
                closing.append(actor.close.remote())
            except Exception:  # already dead: killed below either way
                pass
        if closing:
            try:
                self.ray.wait(closing, num_returns=len(closing), timeout=30)
            except Exception:  # a dead actor's call: nothing more to wait for
                pass
        for actor in self.actors.values():
            self.ray.kill(actor)
        self.actors = {}
        if self._started_ray:
            self.ray.shutdown()


def _check_reachable(address: str | None, timeout_s: float = 10.0) -> None:
    """A cluster address ("host:port", "ray://host:port") whose port does not answer, said in one line: Ray
    itself would keep retrying for many minutes. None and "auto" are Ray's to resolve."""
    if not address or address in ("auto", "local"):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return  # a form Ray knows and this check does not: left to ray.init
    import socket

    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as err:
        raise WorkerError(
            f"--executor ray: could not connect to {address}: {err.strerror or err}; start a cluster there "
            "(ray start --head) or give its address with --ray-address"
        ) from None


def _passed_env() -> dict[str, str]:
    """What actors on other nodes need from the driver's environment: the plugin modules. Not the store's URL
    (it may hold credentials): only the driver writes to the store."""
    import os

    return {k: v for k, v in os.environ.items() if k in ("SIZEUP_PLUGINS", "PYTHONPATH")}


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return text[-300:]
