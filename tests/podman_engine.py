"""A Docker-API engine for the docker backend's tests, found or started once per session.

DOCKER_HOST (or the default socket) when it answers; else, with SIZEUP_START_PODMAN=1, scripts/podman_service.sh
starts podman's API service (and builds the image); else the tests skip. With SIZEUP_REQUIRE_DOCKER=1 (CI) a
missing engine or image is a failure, not a skip. The image is SIZEUP_DOCKER_IMAGE or sizeup-python:3.11.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from requirements import need

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "podman_service.sh"
IMAGE = os.environ.get("SIZEUP_DOCKER_IMAGE", "sizeup-python:3.11")
START_TIMEOUT_S = 900  # a first start installs podman and debootstraps the image


@dataclass
class Engine:
    client: object  # docker.DockerClient
    base_url: str
    image: str
    local: bool  # on this machine: its containers' processes are visible in our /proc


def _answering(base_url: str | None) -> object | None:
    try:
        from sizeup.sandbox.docker import connect

        return connect(base_url)
    except ValueError:
        return None


def _start_podman() -> tuple[str | None, str]:
    try:
        done = subprocess.run(
            [str(SCRIPT), "start"],
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT_S,
            env={**os.environ, "SIZEUP_DOCKER_IMAGE": IMAGE},
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        return None, f"{SCRIPT.name} failed: {err}"
    exports = [line for line in done.stdout.splitlines() if line.startswith("export DOCKER_HOST=")]
    if done.returncode or not exports:
        return None, f"{SCRIPT.name} exited {done.returncode}: {done.stderr.strip()[-300:]}"
    return exports[-1].split("=", 1)[1], ""


def find_engine() -> tuple[Engine | None, str]:
    """The engine, or None and why not."""
    if importlib_missing("docker"):
        return None, "the docker SDK is not installed (pip install 'sizeup[docker]')"
    base_url = os.environ.get("DOCKER_HOST")
    client, why = _answering(base_url), f"no engine answers at {base_url or 'the default socket'}"
    if client is None and os.environ.get("SIZEUP_START_PODMAN") == "1":
        base_url, why = _start_podman()
        client = _answering(base_url) if base_url else None
    if client is None:
        return None, why + (
            "" if os.environ.get("SIZEUP_START_PODMAN") == "1" else " (SIZEUP_START_PODMAN=1 starts podman's service)"
        )
    base_url = base_url or client.api.base_url
    import docker

    try:
        client.images.get(IMAGE)
    except docker.errors.ImageNotFound:
        return None, f"image {IMAGE} is not on the engine at {base_url}"
    local = base_url.startswith(("unix://", "http+docker://"))
    return Engine(client, base_url, IMAGE, local), ""


def importlib_missing(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is None


@pytest.fixture(scope="session")
def docker_engine() -> Engine:
    engine, why = find_engine()
    need("a Docker-API engine", "SIZEUP_REQUIRE_DOCKER", engine is not None, why)
    return engine
