"""Run untrusted candidate programs against tests. `make_sandbox(name)` picks a backend."""

import os

from sizeup.sandbox.isolated import IsolatedSandbox, SandboxUnavailable, unavailable_reason
from sizeup.sandbox.process import ProcessSandbox
from sizeup.sandbox.references import ReferenceReport, check_references
from sizeup.sandbox.timeouts import calibrate
from sizeup.sandbox.types import Execution, Limits, Sandbox, Status, TestOutcome, TestResult

BACKENDS: dict[str, type[Sandbox]] = {"isolated": IsolatedSandbox, "process": ProcessSandbox}

# What each backend keeps a candidate from, in one line: said when a run starts and in every comparison.
ISOLATION = {
    "isolated": "bubblewrap namespaces, no network, read-only system, a uid of its own",
    "docker": "containers without network, read-only root, a non-root user",
}
NOT_ISOLATED = (
    "NOT isolated: candidates run as this user, can read its files and reach the network; "
    "install bubblewrap (apt-get install bubblewrap) for the isolated backend"
)


def isolation_note(backend: str) -> str:
    """ "isolated (bubblewrap namespaces, ...)", or "process: NOT isolated: ..." said plainly."""
    if backend in ISOLATION:
        return f"{backend} ({ISOLATION[backend]})"
    return f"{backend}: {NOT_ISOLATED}" if backend == "process" else f"{backend}: isolation unknown"


def make_sandbox(name: str = "auto", *, image: str | None = None) -> Sandbox:
    """ "auto": the isolated backend wherever bwrap works, else the process backend. A named backend that
    cannot run here raises ValueError (SandboxUnavailable) with the reason in one line. "docker" runs
    candidates in containers of `image` (default $SIZEUP_DOCKER_IMAGE or python:3.11-slim) on the engine
    that DOCKER_HOST names; its SDK is imported only then."""
    if name == "docker":
        from sizeup.sandbox.docker import DEFAULT_IMAGE, DockerSandbox

        return DockerSandbox(image or os.environ.get("SIZEUP_DOCKER_IMAGE") or DEFAULT_IMAGE)
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
        known = ", ".join(["auto", "docker", *sorted(BACKENDS)])
        raise ValueError(f"unknown sandbox backend {name!r}; known: {known}") from None


__all__ = [
    "BACKENDS",
    "Execution",
    "IsolatedSandbox",
    "Limits",
    "ProcessSandbox",
    "ReferenceReport",
    "Sandbox",
    "SandboxUnavailable",
    "Status",
    "TestOutcome",
    "TestResult",
    "calibrate",
    "check_references",
    "isolation_note",
    "make_sandbox",
    "unavailable_reason",
]
