"""The one rule for tests that need something this machine may lack (a service, a tool, data):
skip where it is missing — unless its SIZEUP_REQUIRE_* variable is 1 (CI sets them all), then fail."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def need(what: str, env: str, available: bool, why: str) -> None:
    if available:
        return
    if os.environ.get(env) == "1":
        pytest.fail(f"{what} is required ({env}=1) but unavailable: {why}")
    pytest.skip(f"{what} unavailable: {why}")


def cache_dir() -> Path:
    """Where scripts/cache_dir.sh keeps builds (FerretDB, Ollama, the podman image's rootfs): outside the clone."""
    if os.environ.get("SIZEUP_CACHE"):
        return Path(os.environ["SIZEUP_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "sizeup"
