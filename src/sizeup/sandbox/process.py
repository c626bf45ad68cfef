"""The "process" backend: a fresh interpreter per candidate, with rlimits, a timeout and a process-group kill.

Not a full sandbox: the program runs as the current user and can read or write any absolute path that user
can. It defends against accidents and cheap tricks (loops, fork bombs, memory hogs, endless output,
sys.exit(0) before the tests), not against a program that sets out to escape. A program that walks the
driver's frames could find the nonce and forge a pass (in either backend). isolated.py is the stronger backend;
this one remains for hosts without bwrap, and its `decide`, `judge` and `rlimits` serve both.

Verdict rules (in this order; see `decide`):
  1. the driver never started the candidate, or the result channel is unreadable -> HARNESS_ERROR
  2. the whole-run wall clock ran out, or the CPU-time backstop killed it             -> TIMEOUT
  3. MemoryError at load or in a test, or SIGKILL that we did not send (OOM killer)   -> MEMORY_EXCEEDED
  4. the program did not load (syntax error, exception or SystemExit at top level), or
     it ended before the end marker (os._exit, a crash by a signal, a closed channel)  -> ERROR
  5. any test ran out of its own time                                                 -> TIMEOUT
  6. every test passed -> PASSED; there were no tests -> UNVERIFIED; otherwise         -> FAILED
"""

from __future__ import annotations

import json
import math
import os
import resource
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sizeup.sandbox.driver import RESULT_CAP, kill_group, supervise
from sizeup.sandbox.types import Execution, Limits, Sandbox, Status, TestOutcome, TestResult

DRIVER = Path(__file__).with_name("driver.py")
DEFAULT_LIMITS = Limits()


@dataclass
class Facts:
    """What the parent observed about one run; `decide` turns it into a verdict."""

    started: bool = False
    timed_out: bool = False
    returncode: int | None = None  # negative: killed by that signal
    marker: bool = False
    load_error: str | None = None
    load_memory: bool = False
    outcomes: list[TestOutcome] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    peak_mb: float = 0.0
    protocol_error: str | None = None


def decide(facts: Facts) -> tuple[Status, str]:
    """The verdict and a one-line reason. Pure, so the rules above can be tested alone."""
    killed_by = -facts.returncode if facts.returncode is not None and facts.returncode < 0 else None
    if facts.protocol_error:
        return Status.HARNESS_ERROR, facts.protocol_error
    if not facts.started and not facts.timed_out:
        return Status.HARNESS_ERROR, f"the driver did not start the program (exit code {facts.returncode})"
    if facts.timed_out:
        return Status.TIMEOUT, "the run exceeded its wall-clock limit and was killed"
    if killed_by == signal.SIGXCPU:
        return Status.TIMEOUT, "the run exceeded its CPU-time limit"
    test_memory = any(o is TestOutcome.ERROR and m.startswith("MemoryError")
                      for o, m in zip(facts.outcomes, facts.messages, strict=True))
    if facts.load_memory or test_memory:
        return Status.MEMORY_EXCEEDED, "MemoryError: the program exceeded its memory limit"
    if killed_by == signal.SIGKILL:
        return Status.MEMORY_EXCEEDED, "killed by SIGKILL, most likely the out-of-memory killer"
    if facts.load_error:
        return Status.ERROR, f"the program failed to load: {facts.load_error}"
    if not facts.marker:
        if killed_by:
            return Status.ERROR, f"the program was killed by {signal.Signals(killed_by).name}"
        return Status.ERROR, f"the program exited (code {facts.returncode}) before the tests finished"
    if TestOutcome.TIMEOUT in facts.outcomes:
        return Status.TIMEOUT, "a test exceeded its time limit"
    if not facts.outcomes:
        return Status.UNVERIFIED, "the program loaded, but there are no tests"
    failed = sum(o is not TestOutcome.PASSED for o in facts.outcomes)
    if failed:
        return Status.FAILED, f"{failed} of {len(facts.outcomes)} tests did not pass"
    return Status.PASSED, ""


def judge(tests: list[str], nonce: str, out: bytes, err: bytes, channel: bytes, *, timed_out: bool,
          returncode: int, cpu_s: float, fallback_peak_mb: float) -> Execution:
    """The Execution for what a backend observed of one run: the same rules for every backend."""
    facts = _parse(channel, nonce, len(tests), len(channel) >= RESULT_CAP)
    facts.timed_out, facts.returncode = timed_out, returncode
    verdict, detail = decide(facts)
    if verdict is Status.HARNESS_ERROR and err.strip():
        detail += " | stderr: " + err.decode(errors="replace").strip().splitlines()[-1][:200]
    results = zip(tests, facts.outcomes, facts.messages, facts.seconds, strict=True)
    return Execution(
        status=verdict, detail=detail, exit_code=returncode,
        tests=[TestResult(*result) for result in results],
        stdout=out.decode(errors="replace"), stderr=err.decode(errors="replace"),
        cpu_s=cpu_s, peak_rss_mb=facts.peak_mb or fallback_peak_mb)


def rlimits(limits: Limits, processes: int | None = None) -> list[tuple[int, int, int]]:
    """(resource, soft, hard), clamped to the current hard limit so setrlimit cannot fail
    (EvalPlus PR #225: a container's lower hard limit made every run crash). `processes` overrides
    RLIMIT_NPROC where a backend counts processes differently."""
    mb = 1024 * 1024
    cpu_s = math.ceil(limits.timeout_s) + 1  # a backstop: the wall clock normally ends the run first
    wanted = [
        (resource.RLIMIT_AS, limits.memory_mb * mb),
        # Root ignores RLIMIT_NPROC, and we run as root in CI: there the process-group kill is what
        # really ends fork bombs. As a normal user it counts ALL the user's processes and threads.
        (resource.RLIMIT_NPROC, limits.max_processes if processes is None else processes),
        (resource.RLIMIT_FSIZE, limits.max_file_mb * mb),
        (resource.RLIMIT_CPU, cpu_s),  # soft: SIGXCPU; the hard limit, a second later, is SIGKILL
        (resource.RLIMIT_CORE, 0),
        (resource.RLIMIT_NOFILE, 256),
    ]
    clamped = []
    for which, value in wanted:
        ceiling = resource.getrlimit(which)[1]
        soft, hard = value, value + 1 if which == resource.RLIMIT_CPU else value
        if ceiling != resource.RLIM_INFINITY:
            soft, hard = min(soft, ceiling), min(hard, ceiling)
        clamped.append((which, soft, hard))
    return clamped


def _kill_descendants(pid: int) -> None:
    """Kill what left the group (setsid) while its parent is still alive to be walked from."""
    try:
        import psutil
        for child in psutil.Process(pid).children(recursive=True):
            child.kill()
    except Exception:  # psutil missing, or the processes already gone
        pass


class ProcessSandbox(Sandbox):
    name = "process"

    def __init__(self, site_packages: bool = False):
        # -s -P and a scrubbed environment give what -I gives, but -I also implies -E, which would
        # ignore PYTHONHASHSEED and make set iteration order (and so some verdicts) vary between runs.
        self._flags = ["-s", "-P"] if site_packages else ["-s", "-P", "-S"]

    def run(self, program: str, tests: Sequence[str], limits: Limits = DEFAULT_LIMITS,
            setup_code: str = "") -> Execution:
        start = time.perf_counter()
        tests = list(tests)
        with tempfile.TemporaryDirectory(prefix="sizeup-") as workdir:
            try:
                execution = self._run_in(workdir, program, tests, limits, setup_code, start)
            except Exception as exc:  # OSError from spawn, SubprocessError from preexec_fn, ...
                execution = Execution.none_run(Status.HARNESS_ERROR, tests, f"could not run the child: {exc!r}")
        execution.backend = self.name
        execution.wall_s = time.perf_counter() - start
        return execution

    def _run_in(self, workdir: str, program: str, tests: list[str], limits: Limits,
                setup_code: str, start: float) -> Execution:
        nonce = secrets.token_hex(16)
        job_path = os.path.join(workdir, "job.json")
        job = {"setup_code": setup_code, "program": program, "tests": tests,
               "test_timeout_s": limits.test_timeout_s, "nonce": nonce}
        with open(os.open(job_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as job_file:
            json.dump(job, job_file)
        env = {"PATH": os.environ.get("PATH", os.defpath), "LANG": "C.UTF-8", "HOME": workdir,
               "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1"}
        wanted = rlimits(limits)

        def set_limits() -> None:  # runs in the child between fork and exec: no imports, no locks
            for which, soft, hard in wanted:
                resource.setrlimit(which, (soft, hard))

        read_fd, write_fd = os.pipe()
        try:
            proc = subprocess.Popen(
                [sys.executable, *self._flags, str(DRIVER), job_path, str(write_fd)],
                cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, pass_fds=(write_fd,), start_new_session=True,
                preexec_fn=set_limits)
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)  # else the result pipe never reaches EOF
        with os.fdopen(read_fd, "rb") as results:
            streams = {proc.stdout: (bytearray(), limits.max_output_bytes),
                       proc.stderr: (bytearray(), limits.max_output_bytes),
                       results: (bytearray(), RESULT_CAP)}
            fds = {stream.fileno(): spec for stream, spec in streams.items()}
            seconds = start + limits.timeout_s - time.perf_counter()
            try:
                timed_out, status, usage, hwm_mb = supervise(proc.pid, fds, seconds, before_kill=_kill_descendants)
            except BaseException:  # never leave a candidate running unsupervised
                kill_group(proc.pid)
                proc.wait()
                raise
            (out, _), (err, _), (channel, _) = streams.values()
        proc.returncode = os.waitstatus_to_exitcode(status)  # we reaped it; tell Popen
        proc.stdout.close()
        proc.stderr.close()
        # ru_maxrss is the last resort: it counts the RSS this (big) parent had when it forked the child.
        return judge(tests, nonce, bytes(out), bytes(err), bytes(channel), timed_out=timed_out,
                     returncode=proc.returncode, cpu_s=usage.ru_utime + usage.ru_stime,
                     fallback_peak_mb=hwm_mb or usage.ru_maxrss / 1024)


def _parse(channel: bytes, nonce: str, n_tests: int, truncated: bool) -> Facts:
    facts = Facts(outcomes=[TestOutcome.NOT_RUN] * n_tests, messages=[""] * n_tests, seconds=[0.0] * n_tests)
    lines = channel.decode(errors="replace").splitlines()
    if truncated:
        lines = lines[:-1]  # the last line may be cut
    for line in lines:
        try:
            record = json.loads(line)
            if "test" in record:
                facts.outcomes[record["test"]] = TestOutcome(record["outcome"])
                facts.messages[record["test"]] = str(record["message"])
                facts.seconds[record["test"]] = float(record.get("seconds", 0.0))
            elif "load_error" in record:
                facts.load_error, facts.load_memory = str(record["load_error"]), bool(record["memory"])
            elif "done" in record:
                facts.marker = facts.marker or record["done"] == nonce
            elif "peak_mb" in record:
                facts.peak_mb = float(record["peak_mb"])
            elif "started" in record:
                facts.started = True
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
            facts.protocol_error = f"unreadable result channel: {type(exc).__name__} on {line[:80]!r}"
            break
    return facts
