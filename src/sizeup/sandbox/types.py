"""What a sandbox takes and what it returns. Backends swap; these records do not. The verdicts themselves
(Status, TestOutcome) live in sizeup.verdicts: records and analysis read them without the sandbox."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field

from sizeup.verdicts import Status, TestOutcome


@dataclass(frozen=True)
class Limits:
    timeout_s: float = 10.0  # wall clock for the whole execution
    test_timeout_s: float = 5.0  # wall clock for each test (MBPP 123's reference needs ~3 s here)
    memory_mb: int = 1024  # address space
    max_processes: int = 32
    max_file_mb: int = 16
    max_output_bytes: int = 16 * 1024  # per stream; the rest is drained and dropped


@dataclass
class TestResult:
    __test__ = False  # not a pytest class
    source: str
    outcome: TestOutcome
    message: str = ""
    seconds: float = 0.0  # wall time of this test alone, as the driver measured it (0 if it never ran)
    # "parent-compared": only its call ran in the program, the expectation was checked outside it;
    # "in-process": the whole test ran in the program's process (sandbox/expect.py says which and why).
    mode: str = "in-process"


@dataclass
class Execution:
    status: Status
    tests: list[TestResult] = field(default_factory=list)
    stdout: str = ""
    stderr: str = ""
    exit_code: int | None = None
    wall_s: float = 0.0
    cpu_s: float = 0.0
    peak_rss_mb: float = 0.0
    backend: str = ""
    detail: str = ""  # why, in one line, for errors and harness errors
    # Backend-specific, optional (the docker backend fills them): the container that ran it, extra figures
    # (name -> value), and where each figure came from (figure name -> source, in words).
    container_id: str = ""
    figures: dict[str, float] = field(default_factory=dict)
    figures_from: dict[str, str] = field(default_factory=dict)

    @classmethod
    def none_run(cls, status: Status, tests: list[str], detail: str, **figures) -> Execution:
        """An execution that ended before any test ran (the harness failed, the launcher was killed)."""
        return cls(status, tests=[TestResult(t, TestOutcome.NOT_RUN) for t in tests], detail=detail, **figures)

    @property
    def tests_passed(self) -> int:
        return sum(t.outcome is TestOutcome.PASSED for t in self.tests)

    @property
    def tests_total(self) -> int:
        return len(self.tests)

    def feedback(self, max_chars: int = 1500) -> str:
        """The failing tests and what went wrong, for a repair prompt."""
        lines = [
            f"{t.source}  # {t.outcome.value}: {t.message}".rstrip(": ")
            for t in self.tests
            if t.outcome is not TestOutcome.PASSED
        ]
        if not lines and self.status is not Status.PASSED:
            lines.append(self.detail or self.stderr[-500:] or self.status.value)
        return "\n".join(lines)[:max_chars]


class Sandbox(ABC):
    """Runs untrusted Python against tests and reports a verdict.

    `run` never raises for anything the program does; problems of the harness itself come back as
    Status.HARNESS_ERROR. It is safe to call from several threads at once.
    """

    name: str = "abstract"

    @abstractmethod
    def run(self, program: str, tests: Sequence[str], limits: Limits = Limits(), setup_code: str = "") -> Execution:
        """Run `program`, then the test setup `setup_code`, then each test separately, each with its
        own timeout."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release workers or containers."""

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
