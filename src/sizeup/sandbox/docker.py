"""The "docker" backend: each candidate runs in a locked-down container of any Docker-API engine (Docker, or
podman's compatible service: scripts/podman_service.sh), reached through the `docker` SDK at DOCKER_HOST or the
default socket.

Containers run `sleep infinity` under an init, as nobody (65534:65534), with no network, a read-only root (and
read-only /tmp, /var/tmp, /run), a root-owned tmpfs /work, memory, pids and CPU limits, every capability dropped
and no-new-privileges. The driver and the in-container launcher (docker_launcher.py) are copied into
/work/.sizeup once per container (root-owned: the candidate cannot change them). A candidate can write only to
its own run dir and to /dev/shm (POSIX IPC, which multiprocessing needs); the launcher checks /dev/shm.

A warm pool (default 2 containers per shape of limits) serves runs by `exec`; each run gets a fresh dir
/work/run-<random>, owned by nobody, with its job (put_archive: the engine creates it, as only root can in
/work); the launcher empties it afterwards. The exec starts the launcher under `timeout -k 1s` inside
the container, since `docker exec` does not forward signals to what it started (Inspect AI #2779). A container
is replaced after a run that timed out, was killed for memory, left a process running or a file outside its
run dir, or broke the launcher. `pool_size=0` is the cold mode: one container per candidate.

The verdict comes from the same `judge` (and `decide` rules) as the process backend, on the raw result channel
and a nonce only the host and the driver know. One rule is added: a process killed by the container's memory
cgroup (OOM) makes the run MEMORY_EXCEEDED, unless it timed out. Where each figure comes from is in
`Execution.figures_from`.
"""

from __future__ import annotations

import base64
import io
import json
import os
import secrets
import signal
import socket
import tarfile
import threading
import time
import weakref
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sizeup.sandbox.expect import job_tests
from sizeup.sandbox.types import Execution, Limits, Sandbox, Status
from sizeup.sandbox.verdict import DEFAULT_LIMITS, judge

DEFAULT_IMAGE = "python:3.11-slim"
LABEL = "sizeup.sandbox"  # on every container we start: `cleanup` finds leftovers by it
OWNER_LABEL = "sizeup.owner"  # host/pid/start-time of the process that started it
HERE = Path(__file__).parent
WORK = "/work"
INSIDE = f"{WORK}/.sizeup"
CANDIDATE = "65534:65534"  # nobody:nogroup
PATH = "/usr/local/bin:/usr/bin:/bin"
MISC_MEMORY_MB = 64  # the launcher, init and exec's processes: charged to the cgroup beside the candidate
PIDS_HEADROOM = 16  # init, sleep, timeout, the launcher, the exec machinery
LAUNCHER_GRACE_S = 3.0  # past the run's timeout: the launcher's drain grace, settle wait and report
CLIENT_TIMEOUT_S = 300  # the SDK's socket timeout: an exec's reply comes only when the run is over
# Explicit, because podman's default asks for the engine's own limits and crun then fails to set them where
# the engine runs with lowered hard limits ("setrlimit RLIMIT_NPROC: Operation not permitted").
ULIMITS = (("nofile", 1024), ("nproc", 4096))


class DockerUnavailable(ValueError):
    """No engine, no SDK or no image: a ValueError like an unknown backend name, so the CLI reports it in one
    line."""


class LauncherFailed(RuntimeError):
    """The launcher gave no readable report: a harness error, and the container is replaced."""


@dataclass(frozen=True)
class Shape:
    """What a container is created with; runs whose limits need another shape get containers of their own."""

    memory_mb: int  # the cgroup's limit: the candidate's address space, its tmpfs, and the rest
    pids: int
    work_mb: int  # tmpfs /work

    @classmethod
    def of(cls, limits: Limits) -> Shape:
        work_mb = max(64, 4 * limits.max_file_mb)
        return cls(limits.memory_mb + work_mb + MISC_MEMORY_MB, limits.max_processes + PIDS_HEADROOM, work_mb)


def connect(base_url: str | None = None) -> Any:
    """A docker SDK client for DOCKER_HOST (or the default socket), checked with a ping."""
    try:
        import docker
    except ImportError as err:
        raise DockerUnavailable("the docker SDK is not installed (pip install 'sizeup[docker]')") from err
    try:
        client = (
            docker.DockerClient(base_url=base_url, timeout=CLIENT_TIMEOUT_S)
            if base_url
            else docker.from_env(timeout=CLIENT_TIMEOUT_S)
        )
        client.ping()
    except Exception as err:  # DockerException, requests' ConnectionError, ...
        where = base_url or os.environ.get("DOCKER_HOST") or "the default socket"
        raise DockerUnavailable(f"no Docker-API engine answers at {where}: {err}") from err
    return client


class DockerSandbox(Sandbox):
    name = "docker"

    def __init__(
        self,
        image: str = DEFAULT_IMAGE,
        pool_size: int = 2,
        *,
        client: Any = None,
        cpus: float = 1.0,
        limits: Limits = DEFAULT_LIMITS,
    ):
        """Connects, checks the image, and starts `pool_size` containers shaped for `limits` (the time that
        takes is `startup_s`, kept apart from every execution's figures)."""
        self.image, self.pool_size, self.cpus = image, pool_size, cpus
        self._client = client or connect()
        self._check_image()
        self._payload = _payload_tar()
        self._lock = threading.Lock()
        self._idle: dict[Shape, list[Any]] = {}
        self._owned: dict[str, Any] = {}  # every container started and not yet removed, by id
        self._background = ThreadPoolExecutor(max_workers=2, thread_name_prefix="sizeup-docker")
        self._closed = False
        self.containers_started = 0
        self.containers_replaced = 0
        # Containers must not outlive a sandbox that was never closed (a crash, a forgotten close).
        self._finalizer = weakref.finalize(self, _remove_all, self._owned)
        started = time.perf_counter()
        try:
            self._fill(Shape.of(limits))
        except Exception as err:
            self.close()
            raise DockerUnavailable(f"could not start containers of {image}: {err}") from err
        self.startup_s = time.perf_counter() - started

    # --- containers -----------------------------------------------------------------------------------------

    def _check_image(self) -> None:
        import docker

        try:
            self._client.images.get(self.image)
        except docker.errors.ImageNotFound:
            raise DockerUnavailable(
                f"image {self.image} is not on the engine (pull it, or build sizeup-python:3.11 "
                "with scripts/podman_service.sh)"
            ) from None

    def _options(self, shape: Shape) -> dict:
        from docker.types import Ulimit

        return {
            "image": self.image,
            "command": ["sleep", "infinity"],
            "init": True,
            "user": CANDIDATE,
            "working_dir": WORK,
            "environment": {"PATH": PATH},
            "network_mode": "none",
            "read_only": True,
            # podman mounts writable tmpfs on /tmp, /var/tmp and /run of a read-only container: not here.
            "tmpfs": {
                WORK: f"rw,nosuid,nodev,noexec,size={shape.work_mb}m,mode=755",
                "/tmp": "ro,size=4k",
                "/var/tmp": "ro,size=4k",
                "/run": "ro,size=4k",
            },
            "shm_size": "16m",
            "mem_limit": f"{shape.memory_mb}m",
            "memswap_limit": f"{shape.memory_mb}m",
            "pids_limit": shape.pids,
            "nano_cpus": int(self.cpus * 1e9),
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges"],
            "ulimits": [Ulimit(name=name, soft=value, hard=value) for name, value in ULIMITS],
            "labels": {LABEL: "1", OWNER_LABEL: owner_label(), "sizeup.pool": str(self.pool_size)},
        }

    def _start(self, shape: Shape) -> tuple[Any, float]:
        """Create, start and provision one container; (container, seconds it took)."""
        started = time.perf_counter()
        container = self._client.containers.create(**self._options(shape))
        with self._lock:
            self._owned[container.id] = container
            self.containers_started += 1
        try:
            container.start()
            container.put_archive(WORK, self._payload)
        except Exception:
            self._remove(container)
            raise
        return container, time.perf_counter() - started

    def _fill(self, shape: Shape) -> None:
        """Start the pool's containers for `shape` side by side."""
        futures = [self._background.submit(self._start, shape) for _ in range(self.pool_size)]
        wait(futures)
        containers = [future.result()[0] for future in futures]  # raises the first failure
        with self._lock:
            self._idle.setdefault(shape, []).extend(containers)

    def _refill(self, shape: Shape) -> None:
        with self._lock:
            if self._closed or len(self._idle.get(shape, [])) >= self.pool_size:
                return
        container, _ = self._start(shape)
        with self._lock:
            if not self._closed and len(self._idle.setdefault(shape, [])) < self.pool_size:
                self._idle[shape].append(container)
                return
        self._remove(container)

    def _acquire(self, shape: Shape) -> tuple[Any, float]:
        """An idle container (start-up 0 s), or a new one when none is idle (the pool grows, never waits)."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the sandbox is closed")
            idle = self._idle.get(shape)
            if idle:
                return idle.pop(), 0.0
        return self._start(shape)

    def _release(self, container: Any, shape: Shape, replace_because: str) -> None:
        with self._lock:
            closed, idle = self._closed, self._idle.setdefault(shape, [])
            if not replace_because and not closed and len(idle) < self.pool_size:
                idle.append(container)
                return
            self.containers_replaced += bool(replace_because)
        try:  # in the background: the caller has its verdict already
            self._background.submit(self._remove, container)
            if replace_because and self.pool_size:
                self._background.submit(self._refill, shape)
        except RuntimeError:  # closed meanwhile: the executor takes no more work
            self._remove(container)

    def _remove(self, container: Any) -> None:
        with self._lock:
            self._owned.pop(container.id, None)
        try:
            container.remove(force=True)
        except Exception:  # gone already, or the engine went away: `cleanup` finds it by its label
            pass

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            idle = [container for containers in self._idle.values() for container in containers]
            self._idle.clear()
        self._background.shutdown(wait=True)
        for container in idle:
            self._remove(container)
        self._finalizer()  # whatever is still owned: in-flight runs of other threads end as harness errors

    # --- one execution --------------------------------------------------------------------------------------

    def run(
        self, program: str, tests: Sequence[str], limits: Limits = DEFAULT_LIMITS, setup_code: str = ""
    ) -> Execution:
        start = time.perf_counter()
        tests = list(tests)
        shape = Shape.of(limits)
        figures: dict[str, float] = {}
        container, replace_because = None, ""
        try:
            container, start_s = self._acquire(shape)
            figures.update(container_start_s=start_s, containers_started=float(start_s > 0))
            execution, replace_because = self._execute(container, program, tests, limits, setup_code)
        except Exception as exc:  # the engine, the SDK or the launcher failed: not the program's doing
            execution = Execution.none_run(Status.HARNESS_ERROR, tests, f"docker backend: {exc!r}"[:400])
            replace_because = f"harness error: {type(exc).__name__}"
        if container is not None:
            execution.container_id = container.id[:12]
            self._release(container, shape, replace_because)
        execution.figures = {**figures, **execution.figures, "container_replaced": float(bool(replace_because))}
        execution.figures_from.update({name: ENGINE_FIGURES[name] for name in figures})
        if replace_because:
            execution.figures_from["container_replaced"] = replace_because
        execution.backend = self.name
        execution.wall_s = time.perf_counter() - start
        execution.figures_from["wall_s"] = "host: perf_counter around run(), container start included"
        return execution

    def _execute(
        self, container: Any, program: str, tests: list[str], limits: Limits, setup_code: str
    ) -> tuple[Execution, str]:
        """Run one job in `container`: (the execution, why the container must be replaced or '')."""
        run_dir, nonce = f"{WORK}/run-{secrets.token_hex(8)}", secrets.token_hex(16)
        job = {
            "setup_code": setup_code,
            "program": program,
            "tests": job_tests(tests)[0],  # calls only, where the parent can judge the value
            "test_timeout_s": limits.test_timeout_s,
            "nonce": nonce,
        }
        container.put_archive(WORK, _job_tar(os.path.basename(run_dir), job))
        command = [
            "timeout",
            "-k",
            "1s",
            f"{limits.timeout_s + LAUNCHER_GRACE_S:g}s",
            "python3",
            "-s",
            "-S",
            f"{INSIDE}/launcher.py",
            run_dir,
            f"{limits.timeout_s:g}",
            str(limits.max_output_bytes),
            str(limits.memory_mb),
            str(limits.max_file_mb),
        ]
        exec_started = time.perf_counter()
        # The low-level calls, not exec_run: it inspects every exec for its exit code, one more round trip,
        # and the report says all we need; the exit code is asked for only when the report is missing.
        api = self._client.api
        exec_id = api.exec_create(container.id, command, user=CANDIDATE, workdir=WORK, environment={"PATH": PATH})["Id"]
        out, err = api.exec_start(exec_id, demux=True) or (None, None)
        exec_s = time.perf_counter() - exec_started
        try:
            report = json.loads(out or b"")
        except ValueError:
            return _no_report(
                tests,
                api.exec_inspect(exec_id).get("ExitCode"),
                err or b"",
                in_time=exec_s < limits.timeout_s + LAUNCHER_GRACE_S,
            )
        execution = _judge(tests, nonce, report)
        execution.figures.update(exec_s=exec_s, run_wall_s=report["run_wall_s"], rusage_cpu_s=report["rusage_cpu_s"])
        execution.figures.update(_engine_stats(container))
        execution.figures_from.update(
            {name: ENGINE_FIGURES[name] for name in execution.figures if name in ENGINE_FIGURES}
        )
        return execution, _why_replace(report)


# --- the report, the verdict and the figures ------------------------------------------------------------------


def _peak_source(execution: Execution, report: dict) -> str:
    if report["hwm_mb"]:
        return "launcher: VmHWM of the driver at the deadline"
    if execution.peak_rss_mb == report["rusage_maxrss_mb"]:  # the driver ended without reporting its own
        return "launcher: wait4 ru_maxrss of the driver (the launcher's RSS at the fork counts, ~10 MB)"
    return "driver: VmHWM of its process"


def _judge(tests: list[str], nonce: str, report: dict) -> Execution:
    before, after = report["before"], report["after"]
    counted = before["cpu_s"] is not None and after["cpu_s"] is not None
    cpu_s = after["cpu_s"] - before["cpu_s"] if counted else report["rusage_cpu_s"]
    execution = judge(
        tests,
        nonce,
        *(base64.b64decode(report[key]) for key in ("stdout", "stderr", "channel")),
        timed_out=report["timed_out"],
        returncode=report["returncode"],
        cpu_s=cpu_s,
        fallback_peak_mb=report["hwm_mb"] or report["rusage_maxrss_mb"],
    )
    oom_kills = (after["oom_kills"] or 0) - (before["oom_kills"] or 0)
    if oom_kills > 0 and execution.status is not Status.TIMEOUT:
        execution.status = Status.MEMORY_EXCEEDED
        execution.detail = "the container's memory cgroup killed a process of the run (out of memory)"
    version = after["cgroup"] or "none"
    execution.figures_from = {
        "cpu_s": (
            f"cgroup {version} {'cpuacct.usage' if version == 'v1' else 'cpu.stat usage_usec'} delta, read in "
            "the container around the run (the launcher's own share included)"
        )
        if counted
        else "wait4 rusage of the driver and the children it reaped (no cgroup CPU counter in the container)",
        "peak_rss_mb": _peak_source(execution, report),
        "rusage_cpu_s": "launcher: wait4 rusage of the driver and the children it reaped",
        "run_wall_s": "launcher: monotonic clock from the driver's fork to its reaping",
        "exec_s": "host: perf_counter around the exec call",
    }
    if after["peak_bytes"] is not None:
        execution.figures["container_peak_mb"] = after["peak_bytes"] / 2**20
        execution.figures_from["container_peak_mb"] = (
            f"cgroup {version} {'memory.max_usage_in_bytes' if version == 'v1' else 'memory.peak'}: "
            "the container's peak since it started (warm containers: the highest of all its runs)"
        )
    if after["oom_kills"] is not None:
        execution.figures["oom_kills"] = float(oom_kills)
        execution.figures_from["oom_kills"] = f"cgroup {version} oom_kill counter delta around the run"
    return execution


def _no_report(tests: list[str], exit_code: int | None, err: bytes, in_time: bool) -> tuple[Execution, str]:
    """The launcher died without its report. Killed by a signal before its own timeout: the program did that
    (it shares the launcher's uid) or the OOM killer did, an ERROR either way. Otherwise sizeup failed."""
    if exit_code and exit_code > 128 and in_time:
        how = signal.Signals(exit_code - 128).name if exit_code - 128 in signal.valid_signals() else exit_code
        detail = f"the sandbox's launcher was killed by {how} (by the program, or the out-of-memory killer)"
        return Execution.none_run(Status.ERROR, tests, detail, exit_code=exit_code), "the launcher was killed"
    tail = err.decode(errors="replace").strip()[-300:]
    raise LauncherFailed(f"no report from the launcher (exit {exit_code}): {tail}")


def _engine_stats(container: Any) -> dict[str, float]:
    """The container's CPU and memory as the engine's stats API gives them (cumulative since it started)."""
    try:
        stats = container.stats(stream=False, one_shot=True)
        figures = {
            "container_cpu_total_s": stats["cpu_stats"]["cpu_usage"]["total_usage"] / 1e9,
            "container_memory_mb": stats["memory_stats"]["usage"] / 2**20,
        }
        if "max_usage" in stats["memory_stats"]:  # Docker on cgroup v1; podman leaves it out
            figures["container_max_usage_mb"] = stats["memory_stats"]["max_usage"] / 2**20
        return figures
    except Exception:  # an engine without stats: the figures are simply missing
        return {}


ENGINE_FIGURES = {
    "container_cpu_total_s": "engine stats API: cpu_stats.cpu_usage.total_usage, the container's whole life",
    "container_memory_mb": "engine stats API: memory_stats.usage after the run",
    "container_max_usage_mb": "engine stats API: memory_stats.max_usage (cgroup v1 engines that give it)",
    "container_start_s": "host: creating, starting and provisioning a container for this run (0: warm)",
    "containers_started": "host: containers started for this run (a pool's replacements are not counted)",
}


def _why_replace(report: dict) -> str:
    """Why the container must not serve another run, or ''."""
    after, before = report["after"], report["before"]
    if report["timed_out"]:
        return "the run timed out"
    if (after["oom_kills"] or 0) > (before["oom_kills"] or 0):
        return "the memory cgroup killed a process"
    if report["returncode"] == -9:
        return "the driver was killed by SIGKILL"
    if report["left_processes"]:
        return f"processes left running: {'; '.join(report['left_processes'])[:200]}"
    if report["stray_files"]:
        return f"files left outside the run dir: {', '.join(report['stray_files'])[:200]}"
    return report["removal_problem"]


# --- archives, owners, clean-up -------------------------------------------------------------------------------


def _tar(entries: list[tuple[str, bytes | None, int, int]]) -> bytes:
    """A tar of (name, data or None for a dir, mode, uid) entries; gid = uid."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data, mode, uid in entries:
            info = tarfile.TarInfo(name)
            info.mode, info.uid, info.gid, info.mtime = mode, uid, uid, int(time.time())
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _payload_tar() -> bytes:
    """driver.py and the launcher, root-owned and read-only for the candidate."""
    return _tar(
        [
            (".sizeup", None, 0o755, 0),
            (".sizeup/driver.py", (HERE / "driver.py").read_bytes(), 0o644, 0),
            (".sizeup/launcher.py", (HERE / "docker_launcher.py").read_bytes(), 0o644, 0),
        ]
    )


def _job_tar(run_name: str, job: dict) -> bytes:
    """The run dir and its job, owned by the candidate: the driver deletes the job before candidate code runs."""
    return _tar([(run_name, None, 0o700, 65534), (f"{run_name}/job.json", json.dumps(job).encode(), 0o600, 65534)])


def owner_label(pid: int | None = None) -> str:
    """host/pid/start time: start time too, so a reused pid does not look like the owner still alive."""
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}/{pid}/{_start_ticks(pid)}"


def _start_ticks(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[19]  # field 22, starttime
    except (OSError, IndexError):
        return "?"


def _owner_alive(label: str) -> bool:
    """Whether the process that started a container still runs. Owners on other hosts count as alive."""
    host, _, rest = label.partition("/")
    pid, _, ticks = rest.partition("/")
    if host != socket.gethostname() or not pid.isdigit():
        return True
    return _start_ticks(int(pid)) == ticks


def _remove_all(owned: dict[str, Any]) -> None:
    for container in list(owned.values()):
        try:
            container.remove(force=True)
        except Exception:
            pass
    owned.clear()


def cleanup(client: Any = None, everything: bool = False) -> int:
    """Remove sizeup's leftover containers (label sizeup.sandbox=1): those whose owner process on this host has
    ended, or, with `everything`, all of them (other live sandboxes' included). Returns how many."""
    client = client or connect()
    removed = 0
    # The low-level list: the high-level one inspects each container, which fails for one being removed.
    for summary in client.api.containers(all=True, filters={"label": LABEL}):
        if not everything and _owner_alive((summary.get("Labels") or {}).get(OWNER_LABEL, "")):
            continue
        try:
            client.api.remove_container(summary["Id"], force=True)
            removed += 1
        except Exception:  # removed meanwhile by its owner
            pass
    return removed
