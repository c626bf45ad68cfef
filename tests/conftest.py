"""Shared fixtures: real bundled models behind real llama.cpp servers, started once per session.

Without the models installed these tests skip — unless SIZEUP_REQUIRE_MODELS=1 (set in CI), where a
missing model is a failure, so CI can never go green without running them.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

from ollama_server import real_ollama  # noqa: F401 - a session fixture: one real Ollama for every test module
from requirements import need

REPO = Path(__file__).resolve().parents[1]
MBPP = REPO.parent / "shared" / "data" / "mbpp.jsonl"


def _models_available() -> tuple[bool, str]:
    if importlib.util.find_spec("llama_cpp") is None:
        return False, "llama-cpp-python is not installed (run `make setup`)"
    from sizeup.models.bundled import BUNDLED, gguf_path
    from sizeup.models.types import ModelError

    try:
        for name in BUNDLED:
            gguf_path(name)
    except ModelError as err:
        return False, str(err)
    return True, ""


@pytest.fixture(scope="session")
def models_ready() -> None:
    ok, why = _models_available()
    need("bundled models", "SIZEUP_REQUIRE_MODELS", ok, why)


@pytest.fixture(scope="session")
def small_client(models_ready):
    from sizeup.models.embedded import EmbeddedClient

    client = EmbeddedClient("smollm2:135m", n_ctx=1024)
    yield client
    client.close()


@pytest.fixture(scope="session")
def large_client(models_ready):
    from sizeup.models.embedded import EmbeddedClient

    client = EmbeddedClient("gemma3:270m", n_ctx=1024)
    yield client
    client.close()


@pytest.fixture(scope="session")
def mbpp_path() -> Path:
    need("MBPP data", "SIZEUP_REQUIRE_DATA", MBPP.is_file(), f"{MBPP} not found")
    return MBPP


@pytest.fixture(scope="session")
def gnu_time() -> str:
    """/usr/bin/time, the reference the monitor's peaks are checked against (CI installs it)."""
    need("GNU time", "SIZEUP_REQUIRE_TIME", shutil.which("/usr/bin/time") is not None, "/usr/bin/time not found")
    return "/usr/bin/time"


# The services behind the suite, by the fixture that starts them: at the end of every run a line per service
# says how many of the tests using it passed, failed or skipped, so a CI log shows that they ran.
SERVICES = {
    "models_ready": "bundled models (embedded llama.cpp server)",
    "mongo_server": "MongoDB (FerretDB)",
    "docker_engine": "Docker API (podman)",
    "real_ollama": "a real Ollama",
    "ray_cluster": "Ray (a local 2-node cluster)",
    "browser": "a browser (chromium, Playwright)",
}
ISOLATED = "the isolated sandbox (bubblewrap)"
_outcomes: dict[str, dict[str, int]] = {}


def _services(item: pytest.Item) -> set[str]:
    names = {SERVICES[f] for f in getattr(item, "fixturenames", ()) if f in SERVICES}
    if "test_isolated.py" in item.nodeid or "[isolated" in item.nodeid:
        names.add(ISOLATED)
    if "[mongodb" in item.nodeid:  # a store test's MongoDB case: its server is asked for inside the fixture
        names.add(SERVICES["mongo_server"])
    return names


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = (yield).get_result()
    if report.when == "call" or (report.when == "setup" and not report.passed):
        for service in _services(item):
            counts = _outcomes.setdefault(service, {"passed": 0, "failed": 0, "skipped": 0})
            counts[report.outcome] += 1


def pytest_terminal_summary(terminalreporter) -> None:
    if not _outcomes:
        return
    terminalreporter.section("services the tests used")
    for service, counts in sorted(_outcomes.items()):
        terminalreporter.write_line(f"{service}: " + ", ".join(f"{n} {what}" for what, n in counts.items()))
