"""The zero-setup provider: sizeup starts one llama.cpp server process per model.

Each model gets its own server process on a free loopback port, so the CPU and memory of each model can
be attributed to its own process. The server is sizeup's own single-threaded one
(`python -m sizeup.models.llama_server`, which says why), or llama-cpp-python's `llama_cpp.server` where a
caller asks for it (the tests of the `openai` provider do, to test against a server sizeup did not write).
The server is started once per run; its start-up (load) time and memory after load are recorded apart
from the per-task figures.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from sizeup.models.bundled import gguf_path, style_for
from sizeup.models.openai_compat import OpenAICompatClient
from sizeup.models.types import Completion, GenerationParams, ModelClient, ModelError, Prompt, PromptStyle


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _detach_but_die_with_parent() -> None:
    """In the server's child process, before exec: its own session, so a Ctrl-C in the terminal reaches
    sizeup (which then stops the server itself) instead of killing the server mid-request; and a
    parent-death signal, so a sizeup killed with SIGKILL does not leave the server running."""
    os.setsid()
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


PR_SET_PDEATHSIG = 1
SERVERS = ("sizeup", "llama_cpp")


def server_command(server: str, gguf: Path, alias: str, port: int, n_ctx: int, threads: int) -> list[str]:
    if server == "sizeup":
        return [
            sys.executable,
            "-m",
            "sizeup.models.llama_server",
            "--model",
            str(gguf),
            "--alias",
            alias,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            str(n_ctx),
            "--n_threads",
            str(threads),
        ]
    if server == "llama_cpp":
        return [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(gguf),
            "--model_alias",
            alias,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            str(n_ctx),
            "--n_threads",
            str(threads),
            "--n_threads_batch",
            str(threads),
        ]
    raise ValueError(f"unknown server {server!r}: one of {', '.join(SERVERS)}")


class EmbeddedServer:
    """A llama.cpp server process serving one GGUF file on loopback."""

    def __init__(
        self,
        gguf: Path,
        alias: str,
        *,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        ready_timeout_s: float = 180.0,
        server: str = "sizeup",
        extra_args: tuple[str, ...] = (),
    ):
        self.gguf, self.alias = gguf, alias
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = tempfile.NamedTemporaryFile(prefix="sizeup-llama-", suffix=".log", delete=False)
        threads = n_threads or max(1, os.cpu_count() or 1)
        cmd = [*server_command(server, gguf, alias, self.port, n_ctx, threads), *extra_args]
        started = time.perf_counter()
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            preexec_fn=_detach_but_die_with_parent,
        )
        atexit.register(self.stop)
        self._wait_ready(ready_timeout_s)
        self.load_s = time.perf_counter() - started
        self.rss_after_load_mb = psutil.Process(self.proc.pid).memory_info().rss / 1e6

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                why = f"llama.cpp server for {self.alias} exited with {self.proc.returncode}: {self._log_tail()}"
                self.stop()  # its log file goes too
                raise ModelError(why)
            try:
                if httpx.get(f"{self.url}/v1/models", timeout=2.0).status_code in (200, 401):  # 401: up, keyed
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        why = f"llama.cpp server for {self.alias} not ready after {timeout_s:.0f} s: {self._log_tail()}"
        self.stop()  # after reading the log's tail: stopping deletes it
        raise ModelError(why)

    def _log_tail(self) -> str:
        try:
            lines = Path(self._log.name).read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return lines[-1] if lines else "(empty log)"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        Path(self._log.name).unlink(missing_ok=True)


class EmbeddedClient(ModelClient):
    """A bundled model name (`gemma3:270m`, `smollm2:135m`) or a .gguf path, served locally."""

    provider = "embedded"

    def __init__(
        self, model: str, *, n_ctx: int = 2048, n_threads: int | None = None, style: PromptStyle | None = None
    ):
        self.model = model
        self.style = style or style_for(model)
        self.gguf = gguf_path(model)
        self.server = EmbeddedServer(self.gguf, alias=model, n_ctx=n_ctx, n_threads=n_threads)
        self._client = OpenAICompatClient(
            model, f"{self.server.url}/v1", style=self.style, server_pid=self.server.proc.pid
        )
        # The base class's tiny call, right away: the first task is not charged for first-use costs.
        try:
            self._warmup_s = self.warm_up()["warmup_s"]
        except BaseException:  # no client comes back to close it: the server is stopped here
            self.server.stop()
            raise

    def generate(self, prompt: Prompt, params: GenerationParams = GenerationParams()) -> Completion:
        if self.server.proc.poll() is not None:
            raise ModelError(f"the llama.cpp server for {self.model} has exited ({self.server.proc.returncode})")
        return self._client.generate(prompt, params)

    def server_pids(self) -> list[int]:
        return [self.server.proc.pid] if self.server.proc.poll() is None else []

    def attribution(self) -> str:
        return "embedded_server (the llama.cpp server process sizeup started for this model alone)"

    def load_info(self) -> dict[str, Any]:
        return {
            "load_s": self.server.load_s,
            "warmup_s": self._warmup_s,
            "rss_after_load_mb": self.server.rss_after_load_mb,
            "gguf_mb": self.gguf.stat().st_size / 1e6,
        }

    def close(self) -> None:
        self._client.close()
        self.server.stop()
