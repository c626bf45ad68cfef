"""A real Ollama server (0.17.4, built by scripts/install_ollama.sh) for the provider's tests, started once per
session on a free loopback port, with its models in a temporary OLLAMA_MODELS and its key in a temporary HOME.
`gemma3:270m` and `smollm2:135m` are created from the bundled GGUF files (no registry is reachable).

The binary is $SIZEUP_OLLAMA_BIN, the build cache's (`make test` builds it there) or `ollama` on PATH. Without
one the tests skip, unless SIZEUP_REQUIRE_OLLAMA=1 (CI), where they fail.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from requirements import cache_dir, need

VERSION = "0.17.4"
READY_TIMEOUT_S = 60.0
MODELS = ("gemma3:270m", "smollm2:135m")
PR_SET_PDEATHSIG = 1


@dataclass
class RealOllama:
    url: str
    proc: subprocess.Popen
    binary: str
    env: dict[str, str]  # OLLAMA_HOST, OLLAMA_MODELS, HOME: what its CLI needs to talk to it
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def cli(self, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess:
        """The ollama CLI, talking to this server."""
        return subprocess.run([self.binary, *args], capture_output=True, text=True, timeout=timeout, env=self.env)


def ollama_binary() -> tuple[str | None, str]:
    candidates = [
        os.environ.get("SIZEUP_OLLAMA_BIN"),
        str(cache_dir() / f"ollama-{VERSION}" / "bin" / "ollama"),
        shutil.which("ollama"),
    ]
    for candidate in dict.fromkeys(c for c in candidates if c):
        if Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate, ""
    return None, "no Ollama binary ($SIZEUP_OLLAMA_BIN, the build cache, PATH); run scripts/install_ollama.sh"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:
    os.setsid()
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def start_ollama(binary: str, workdir: Path, **extra_env: str) -> RealOllama:
    """`ollama serve` on a free loopback port; returns once it answers."""
    port = _free_port()
    home, models = workdir / "home", workdir / "models"
    home.mkdir(parents=True, exist_ok=True)
    models.mkdir(parents=True, exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "OLLAMA_HOST": f"127.0.0.1:{port}",
        "OLLAMA_MODELS": str(models),
        **extra_env,
    }
    log = workdir / "ollama.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [binary, "serve"],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            preexec_fn=_die_with_parent,
        )
    server = RealOllama(url=f"http://127.0.0.1:{port}", proc=proc, binary=binary, env=env, log=log)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"ollama serve exited with {proc.returncode}: {log.read_text()[-500:]}")
        try:
            if httpx.get(f"{server.url}/api/version", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    stop_ollama(server)
    raise RuntimeError(f"ollama serve did not answer within {READY_TIMEOUT_S:.0f} s: {log.read_text()[-500:]}")


def stop_ollama(server: RealOllama) -> None:
    if server.proc.poll() is None:
        os.killpg(server.proc.pid, signal.SIGTERM)  # its runners are in its session
        try:
            server.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.proc.pid, signal.SIGKILL)
            server.proc.wait()


def create_bundled_models(server: RealOllama, workdir: Path) -> None:
    from sizeup.models.bundled import gguf_path

    for name in MODELS:
        modelfile = workdir / f"{name.replace(':', '-')}.Modelfile"
        modelfile.write_text(f"FROM {gguf_path(name)}\n")
        done = server.cli("create", name, "-f", str(modelfile))
        if done.returncode:
            raise RuntimeError(f"ollama create {name} failed: {done.stderr.strip()[-300:]}")


@pytest.fixture(scope="session")
def real_ollama(models_ready, tmp_path_factory) -> Iterator[RealOllama]:
    binary, why = ollama_binary()
    need("a real Ollama", "SIZEUP_REQUIRE_OLLAMA", binary is not None, why)
    assert binary is not None
    workdir = tmp_path_factory.mktemp("ollama")
    server = start_ollama(binary, workdir)
    try:
        create_bundled_models(server, workdir)
        yield server
    finally:
        stop_ollama(server)
