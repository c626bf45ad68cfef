"""The one rule for tests that need something this machine may lack (a service, a tool, data):
skip where it is missing — unless its SIZEUP_REQUIRE_* variable is 1 (CI sets them all), then fail."""

from __future__ import annotations

import os

import pytest


def need(what: str, env: str, available: bool, why: str) -> None:
    if available:
        return
    if os.environ.get(env) == "1":
        pytest.fail(f"{what} is required ({env}=1) but unavailable: {why}")
    pytest.skip(f"{what} unavailable: {why}")
