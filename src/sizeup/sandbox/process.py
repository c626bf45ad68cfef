"""The "process" backend: a fresh interpreter per candidate, with rlimits, a timeout and a process-group kill.

Not a full sandbox: the program runs as the current user and can read or write any absolute path that user
can. It defends against accidents and cheap tricks (loops, fork bombs, memory hogs, endless output,
sys.exit(0) before the tests), not against a program that sets out to escape. A program that walks the
driver's frames can take the nonce and the channel and forge the verdict of an in-process test, on every
backend (tests/hostile/forge_frames.py); a parent-compared test it can only answer with another value
(sandbox/expect.py). Here, though, it can read every file this user can: a dataset or a store that holds the
expected values is in reach, so it can pass a parent-compared test by reading the answer
(tests/hostile/read_datasets.py). isolated.py is the stronger backend; this one remains for hosts without
bwrap. The verdict rules every backend shares are in verdict.py.
"""

from __future__ import annotations

import json
import os
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from sizeup.sandbox import ptrace_guard
from sizeup.sandbox.driver import RESULT_CAP, kill_group, supervise
from sizeup.sandbox.expect import job_tests
from sizeup.sandbox.types import Execution, Limits, Sandbox, Status
from sizeup.sandbox.verdict import DEFAULT_LIMITS, judge, rlimits

DRIVER = Path(__file__).with_name("driver.py")


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
        self._drop_ptrace = ptrace_guard.guard()  # the expected values in this process stay out of reach

    def run(
        self, program: str, tests: Sequence[str], limits: Limits = DEFAULT_LIMITS, setup_code: str = ""
    ) -> Execution:
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

    def _run_in(
        self, workdir: str, program: str, tests: list[str], limits: Limits, setup_code: str, start: float
    ) -> Execution:
        nonce = secrets.token_hex(16)
        job_path = os.path.join(workdir, "job.json")
        job = {
            "setup_code": setup_code,
            "program": program,
            "tests": job_tests(tests)[0],  # calls only, where the parent can judge the value
            "test_timeout_s": limits.test_timeout_s,
            "nonce": nonce,
        }
        with open(os.open(job_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as job_file:
            json.dump(job, job_file)
        env = {
            "PATH": os.environ.get("PATH", os.defpath),
            "LANG": "C.UTF-8",
            "HOME": workdir,
            "PYTHONHASHSEED": "0",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        wanted = rlimits(limits)
        drop_ptrace = self._drop_ptrace

        def set_limits() -> None:  # runs in the child between fork and exec: no imports, no locks
            for which, soft, hard in wanted:
                resource.setrlimit(which, (soft, hard))
            if drop_ptrace is not None:
                drop_ptrace()

        read_fd, write_fd = os.pipe()
        try:
            proc = subprocess.Popen(
                [sys.executable, *self._flags, str(DRIVER), job_path, str(write_fd)],
                cwd=workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=(write_fd,),
                start_new_session=True,
                preexec_fn=set_limits,
            )
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)  # else the result pipe never reaches EOF
        stdout, stderr = proc.stdout, proc.stderr
        assert stdout is not None and stderr is not None  # both were opened as pipes above
        with os.fdopen(read_fd, "rb") as results:
            streams = {
                stdout: (bytearray(), limits.max_output_bytes),
                stderr: (bytearray(), limits.max_output_bytes),
                results: (bytearray(), RESULT_CAP),
            }
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
        stdout.close()
        stderr.close()
        # ru_maxrss is the last resort: it counts the RSS this (big) parent had when it forked the child.
        return judge(
            tests,
            nonce,
            bytes(out),
            bytes(err),
            bytes(channel),
            timed_out=timed_out,
            returncode=proc.returncode,
            cpu_s=usage.ru_utime + usage.ru_stime,
            fallback_peak_mb=hwm_mb or usage.ru_maxrss / 1024,
        )
