"""Verdicts: what running a candidate against its tests concluded. Enums that every layer shares (the
sandbox makes them, records carry them, analysis counts them), so that "passed" is never a bare string and
"the harness failed" (HARNESS_ERROR) is never taken for "the program failed"."""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    """Verdict of one execution. HARNESS_ERROR means sizeup failed, not the program."""

    PASSED = "passed"  # every test passed and the harness's end marker arrived
    FAILED = "failed"  # the program ran, at least one test failed
    ERROR = "error"  # the program did not load (syntax error, exception at top level, crash)
    TIMEOUT = "timeout"
    MEMORY_EXCEEDED = "memory_exceeded"
    HARNESS_ERROR = "harness_error"
    UNVERIFIED = "unverified"  # ran without error, but there were no tests to judge it


class TestOutcome(StrEnum):
    __test__ = False  # not a pytest class
    PASSED = "passed"
    FAILED = "failed"  # AssertionError
    ERROR = "error"  # any other exception, including SystemExit raised inside the test
    TIMEOUT = "timeout"
    NOT_RUN = "not_run"  # the run ended (killed, crashed, exited) before this test finished
