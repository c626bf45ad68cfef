"""Run untrusted candidate programs against tests. `make_sandbox(name)` picks a backend."""

from sizeup.sandbox.process import ProcessSandbox
from sizeup.sandbox.references import ReferenceReport, check_references
from sizeup.sandbox.types import Execution, Limits, Sandbox, Status, TestOutcome, TestResult

BACKENDS: dict[str, type[Sandbox]] = {"process": ProcessSandbox}


def make_sandbox(name: str = "process") -> Sandbox:
    try:
        return BACKENDS[name]()
    except KeyError:
        raise ValueError(f"unknown sandbox backend {name!r}; known: {', '.join(sorted(BACKENDS))}") from None


__all__ = [
    "BACKENDS", "Execution", "Limits", "ProcessSandbox", "ReferenceReport", "Sandbox", "Status",
    "TestOutcome", "TestResult", "check_references", "make_sandbox",
]
