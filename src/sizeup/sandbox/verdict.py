"""The verdict rules every backend shares: what a run's observations (the result channel, the exit, the
clock) mean, and the rlimits every candidate gets. Pure functions, so the rules can be tested alone.

Verdict rules (in this order; see `decide`):
  1. the driver never started the candidate, or the channel is unreadable before the
     driver's "started" record (no candidate code had run yet)                       -> HARNESS_ERROR
  2. the whole-run wall clock ran out, or the CPU-time backstop killed it             -> TIMEOUT
  3. MemoryError at load or in a test, or SIGKILL that we did not send (OOM killer)   -> MEMORY_EXCEEDED
  4. the channel holds an unreadable record after "started" (only the program writes
     those: the driver writes nothing else), the program did not load (syntax error,
     exception or SystemExit at top level), or it ended before the end marker
     (os._exit, a crash by a signal, a closed channel)                                 -> ERROR
  5. any test ran out of its own time                                                 -> TIMEOUT
  6. every test passed -> PASSED; there were no tests -> UNVERIFIED; otherwise         -> FAILED
"""

from __future__ import annotations

import json
import math
import resource
import signal
from dataclasses import dataclass, field
from typing import Any

from sizeup.sandbox.driver import RESULT_CAP
from sizeup.sandbox.expect import IN_PROCESS, PARENT, expectation, judge_value
from sizeup.sandbox.types import Execution, Limits, Status, TestOutcome, TestResult

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
    values: dict[int, Any] = field(default_factory=dict)  # a parent-compared call's encoded value, by test
    peak_mb: float = 0.0
    protocol_error: str | None = None  # the channel broke before any candidate code ran: ours
    channel_garbage: str | None = None  # an unreadable record after "started": the program wrote it


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
    test_memory = any(
        o is TestOutcome.ERROR and m.startswith("MemoryError")
        for o, m in zip(facts.outcomes, facts.messages, strict=True)
    )
    if facts.load_memory or test_memory:
        return Status.MEMORY_EXCEEDED, "MemoryError: the program exceeded its memory limit"
    if killed_by == signal.SIGKILL:
        return Status.MEMORY_EXCEEDED, "killed by SIGKILL, most likely the out-of-memory killer"
    if facts.channel_garbage:
        return Status.ERROR, f"the program wrote to the result channel: {facts.channel_garbage}"
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


def compare_in_parent(facts: Facts, tests: list[str]) -> list[str]:
    """Outcomes of the parent-compared tests, from the values the calls returned and expectations that never
    left this process; in-process tests keep what the driver reported. Returns each test's mode."""
    modes = []
    for index, test in enumerate(tests):
        expected = expectation(test)
        modes.append(PARENT if expected is not None else IN_PROCESS)
        if expected is None:
            continue
        if index in facts.values:
            facts.outcomes[index], facts.messages[index] = judge_value(expected, facts.values[index])
        elif facts.outcomes[index] in (TestOutcome.PASSED, TestOutcome.FAILED):
            # A call reports a value, an error or a timeout: "passed" on the channel is a forgery.
            facts.outcomes[index] = TestOutcome.ERROR
            facts.messages[index] = "no value came back for this call (the result channel was written to)"
    return modes


def judge(
    tests: list[str],
    nonce: str,
    out: bytes,
    err: bytes,
    channel: bytes,
    *,
    timed_out: bool,
    returncode: int,
    cpu_s: float,
    fallback_peak_mb: float,
) -> Execution:
    """The Execution for what a backend observed of one run: the same rules for every backend."""
    facts = _parse(channel, nonce, len(tests), len(channel) >= RESULT_CAP)
    facts.timed_out, facts.returncode = timed_out, returncode
    modes = compare_in_parent(facts, tests)
    verdict, detail = decide(facts)
    if verdict is Status.HARNESS_ERROR and err.strip():
        detail += " | stderr: " + err.decode(errors="replace").strip().splitlines()[-1][:200]
    results = zip(tests, facts.outcomes, facts.messages, facts.seconds, modes, strict=True)
    return Execution(
        status=verdict,
        detail=detail,
        exit_code=returncode,
        tests=[TestResult(*result) for result in results],
        stdout=out.decode(errors="replace"),
        stderr=err.decode(errors="replace"),
        cpu_s=cpu_s,
        peak_rss_mb=facts.peak_mb or fallback_peak_mb,
    )


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


def _parse(channel: bytes, nonce: str, n_tests: int, truncated: bool) -> Facts:
    """The facts the channel holds, up to the driver's end marker. A record that does not read (bad JSON, a
    number out of range, nesting past the recursion limit, an unknown outcome, a test index out of range)
    stops the reading: before the "started" record only the driver had written, so the harness broke; after
    it the program can write there too, and the driver writes nothing unreadable, so the program did it."""
    facts = Facts(outcomes=[TestOutcome.NOT_RUN] * n_tests, messages=[""] * n_tests, seconds=[0.0] * n_tests)
    lines = channel.decode(errors="replace").splitlines()
    if truncated:
        lines = lines[:-1]  # the last line may be cut
    for line in lines:
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise TypeError(f"a record is a JSON object, not {type(record).__name__}")
            if "test" in record and "value" in record:
                i = _index(record["test"], n_tests)
                facts.values[i] = record["value"]
                facts.outcomes[i] = TestOutcome.NOT_RUN  # decided by compare_in_parent
                facts.seconds[i] = _amount(record.get("seconds", 0.0))
            elif "test" in record:
                i = _index(record["test"], n_tests)
                facts.values.pop(i, None)
                facts.outcomes[i] = TestOutcome(record["outcome"])
                facts.messages[i] = str(record["message"])
                facts.seconds[i] = _amount(record.get("seconds", 0.0))
            elif "load_error" in record:
                facts.load_error, facts.load_memory = str(record["load_error"]), bool(record["memory"])
            elif "done" in record:
                if record["done"] == nonce:
                    facts.marker = True
                    break  # the driver's last word: whatever follows was written by something else
            elif "peak_mb" in record:
                facts.peak_mb = _amount(record["peak_mb"])
            elif "started" in record:
                facts.started = True
        except Exception as exc:  # whatever a line can make json or float raise (OverflowError, RecursionError)
            reason = f"unreadable record: {type(exc).__name__} on {line[:80]!r}"
            if facts.started:
                facts.channel_garbage = reason
            else:
                facts.protocol_error = f"unreadable result channel: {type(exc).__name__} on {line[:80]!r}"
            break
    return facts


def _index(raw: Any, n_tests: int) -> int:
    """A test's index from the channel: an int in range (not a bool, not negative: -1 would name the last)."""
    if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw < n_tests:
        raise IndexError(f"no test {str(raw)[:40]}")
    return raw


def _amount(raw: Any) -> float:
    """A duration or a size from the channel: a finite number, not below zero (bool is not a number here)."""
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise TypeError(f"not a number: {str(raw)[:40]}")
    amount = float(raw)  # OverflowError for an int past a float's range
    if not (math.isfinite(amount) and amount >= 0):
        raise ValueError(f"not a finite amount: {amount}")
    return amount
