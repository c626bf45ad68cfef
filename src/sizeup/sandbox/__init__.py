"""Run untrusted candidate programs against tests. `make_sandbox(name)` picks a backend."""

from sizeup.sandbox.isolated import IsolatedSandbox, SandboxUnavailable, unavailable_reason
from sizeup.sandbox.process import ProcessSandbox
from sizeup.sandbox.references import ReferenceReport, check_references
from sizeup.sandbox.timeouts import calibrate
from sizeup.sandbox.types import Execution, Limits, Sandbox, Status, TestOutcome, TestResult

BACKENDS: dict[str, type[Sandbox]] = {"isolated": IsolatedSandbox, "process": ProcessSandbox}


def make_sandbox(name: str = "auto") -> Sandbox:
    """"auto": the isolated backend wherever bwrap works, else the process backend. A named backend that
    cannot run here raises ValueError (SandboxUnavailable) with the reason in one line."""
    if name == "auto":
        if not unavailable_reason():
            try:
                return IsolatedSandbox()
            except SandboxUnavailable:  # the probe passed but the workers did not start: still runnable
                pass
        return ProcessSandbox()
    if name == "isolated" and (reason := unavailable_reason()):
        raise SandboxUnavailable(f"isolated sandbox unavailable: {reason}; use --sandbox process")
    try:
        return BACKENDS[name]()
    except KeyError:
        raise ValueError(f"unknown sandbox backend {name!r}; known: auto, {', '.join(sorted(BACKENDS))}") from None


__all__ = [
    "BACKENDS", "Execution", "IsolatedSandbox", "Limits", "ProcessSandbox", "ReferenceReport", "Sandbox",
    "SandboxUnavailable", "Status", "TestOutcome", "TestResult", "calibrate", "check_references", "make_sandbox",
    "unavailable_reason",
]
