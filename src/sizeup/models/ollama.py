"""Models served by Ollama, through the official `ollama` client.

Replies are streamed so that time to first token is observed. Token counts and server timings come
from the final chunk (done=true); a reply without that chunk or its counters is an error, never a
silent zero.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlparse

import httpx
import ollama
import psutil
import pydantic

from sizeup.models.types import (
    Completion,
    GenerationParams,
    ModelClient,
    ModelError,
    Prompt,
    PromptStyle,
    TransientModelError,
    Usage,
)

DEFAULT_URL = "http://127.0.0.1:11434"
CONNECT_TIMEOUT_S = 5.0  # a dead host should fail fast, not after the long read timeout meant for generation
DEFAULT_PARAMS = GenerationParams()


class OllamaModelMissing(ModelError):
    def __init__(self, model: str, url: str):
        super().__init__(f"model '{model}' is not available on {url}; "
                         f"run `ollama pull {model}` or pass --pull")


class OllamaClient(ModelClient):
    provider = "ollama"

    def __init__(self, model: str, url: str = DEFAULT_URL, *, style: PromptStyle = PromptStyle.CHAT,
                 keep_alive: str | float = "30m", num_ctx: int | None = None, timeout_s: float = 300.0,
                 pull: bool = False, retries: int = 2, backoff_s: float = 0.5, server_pid: int | None = None):
        self.model = model
        self.url = url
        self.style = style
        self.keep_alive = keep_alive  # long enough that the model load is paid once, not by every task
        self.num_ctx = num_ctx
        self.pull = pull
        self.retries, self.backoff_s = retries, backoff_s
        self._server_pid = server_pid
        self._found_pids: list[int] = []  # the local `ollama serve` processes, once found
        self._client = _make_client(url, timeout_s)
        self._pull_lock = threading.Lock()  # concurrent branches must not start several pulls
        self._pulled = False
        self._pull_error: ModelError | None = None

    def generate(self, prompt: Prompt, params: GenerationParams = DEFAULT_PARAMS) -> Completion:
        try:
            return self._generate_retrying(prompt, params)
        except OllamaModelMissing:
            if not self.pull:
                raise
        self._pull_once()
        try:
            return self._generate_retrying(prompt, params)  # the pull is not charged to this call's timings
        except OllamaModelMissing as err:
            raise ModelError(f"model '{self.model}' is still missing on {self.url} after pulling it") from err

    def _generate_retrying(self, prompt: Prompt, params: GenerationParams) -> Completion:
        """Retry what may pass on its own (connection refused, 5xx) with exponential backoff."""
        for attempt in range(self.retries + 1):
            try:
                return self._generate_once(prompt, params)
            except TransientModelError:
                if attempt == self.retries:
                    raise
                time.sleep(self.backoff_s * 2**attempt)
        raise AssertionError("unreachable")

    def server_pids(self) -> list[int]:
        """The local Ollama server and its runner children, so their CPU and memory can be measured.
        A remote server's processes are out of reach: its host figures are then "not measurable"."""
        if self._server_pid is not None:
            return [self._server_pid] if psutil.pid_exists(self._server_pid) else []
        if urlparse(self.url).hostname not in ("127.0.0.1", "localhost", "::1"):
            return []
        # The Monitor asks 20 times a second: keep the `ollama serve` found (its runners are its children,
        # which the Monitor finds), and walk every process on the machine again only once it is gone.
        if not any(psutil.pid_exists(pid) for pid in self._found_pids):
            self._found_pids = [proc.pid for proc in psutil.process_iter(["name", "cmdline"])
                                if proc.info["name"] == "ollama" and "serve" in (proc.info["cmdline"] or [])]
        return list(self._found_pids)

    def warm_up(self) -> dict[str, float]:
        """Load the model once before any task (keep_alive keeps it), and read what /api/ps says of it:
        its load time and size stay apart from the per-task figures."""
        info = super().warm_up()
        with _ollama_errors(self.url):
            running = {model.model: model for model in self._client.ps().models}
        loaded = running.get(self.model) or running.get(f"{self.model}:latest")
        if loaded is not None:
            info["loaded_size_mb"] = int(loaded.size or 0) / 1e6
            info["size_vram_mb"] = int(loaded.size_vram or 0) / 1e6
        return info

    def close(self) -> None:
        self._client.close()

    def _generate_once(self, prompt: Prompt, params: GenerationParams) -> Completion:
        started = time.perf_counter()
        with _ollama_errors(self.url, self.model):
            if self.style is PromptStyle.COMPLETION:
                # raw=True: the completion text is sent as is, without the model's chat template.
                chunks = self._client.generate(self.model, prompt.completion, raw=True, stream=True,
                                               options=self._options(params, prompt.stop),
                                               keep_alive=self.keep_alive)
            else:
                chunks = self._client.chat(self.model, prompt.messages(), stream=True,
                                           options=self._options(params, ()), keep_alive=self.keep_alive)
            return self._collect(chunks, started)

    def _options(self, params: GenerationParams, stop: tuple[str, ...]) -> dict[str, Any]:
        options: dict[str, Any] = {"temperature": params.temperature, "num_predict": params.max_tokens}
        if params.seed is not None:
            options["seed"] = params.seed
        if params.top_p is not None:
            options["top_p"] = params.top_p
        if self.num_ctx is not None:
            options["num_ctx"] = self.num_ctx
        if stop:
            options["stop"] = list(stop)
        return options

    def _collect(self, chunks: Iterator[Any], started: float) -> Completion:
        pieces: list[str] = []
        ttft: float | None = None
        final = None
        for chunk in chunks:
            if self.style is PromptStyle.COMPLETION:
                text, thinking = chunk.response, getattr(chunk, "thinking", None)
            else:  # `thinking` exists from ollama-python 0.5 on
                text, thinking = chunk.message.content, getattr(chunk.message, "thinking", None)
            # Thinking tokens are generated tokens too (and counted in eval_count), so they end the wait.
            if ttft is None and (text or thinking):
                ttft = time.perf_counter() - started
            pieces.append(text or "")
            if chunk.done:
                final = chunk
        total = time.perf_counter() - started
        if final is None:
            raise ModelError("malformed reply from Ollama: the stream ended without its final done chunk")
        text = "".join(pieces)
        return Completion(text=text, usage=_usage(final, text, ttft, total), finish_reason=final.done_reason)

    def _pull_once(self) -> None:
        with self._pull_lock:
            if self._pull_error is not None:  # a failed pull is not retried by every waiting branch
                raise ModelError(str(self._pull_error))
            if self._pulled:
                return
            try:
                last_status = None  # progress lines run into thousands for a large model: keep the last
                with _ollama_errors(self.url):
                    for progress in self._client.pull(self.model, stream=True):
                        last_status = progress.status
                if last_status != "success":
                    raise ModelError(f"the pull stopped at status {last_status!r}")
            except ModelError as err:
                self._pull_error = ModelError(f"could not pull '{self.model}' on {self.url}: {err}")
                raise self._pull_error from err
            self._pulled = True


def list_models(url: str = DEFAULT_URL, timeout_s: float = 30.0) -> list[dict[str, Any]]:
    """The models the server has (/api/tags), each marked loaded when /api/ps lists it."""
    with _make_client(url, timeout_s) as client, _ollama_errors(url):
        local = client.list().models
        running = {model.model: model for model in client.ps().models}
    if any(not model.model for model in local):
        raise ModelError("malformed reply from Ollama: an /api/tags entry has no model name")
    return [{"name": model.model, "size": _int_or_none(model.size), "loaded": model.model in running,
             "size_vram": _int_or_none(running[model.model].size_vram) if model.model in running else None,
             "parameter_size": model.details.parameter_size if model.details else None,
             "quantization_level": model.details.quantization_level if model.details else None}
            for model in local]


def _make_client(url: str, timeout_s: float) -> ollama.Client:
    timeout = httpx.Timeout(timeout_s, connect=min(CONNECT_TIMEOUT_S, timeout_s))
    return ollama.Client(host=url, timeout=timeout)


def _usage(final: Any, text: str, ttft: float | None, total: float) -> Usage:
    # Ollama omits zero-valued counters (omitempty), so only a count that must be positive is required.
    if final.prompt_eval_count is None:
        raise ModelError("malformed reply from Ollama: the final chunk has no prompt_eval_count "
                         "(old Ollama versions drop it for cached prompts)")
    if final.eval_count is None and text:
        raise ModelError("malformed reply from Ollama: the final chunk has no eval_count for a reply")
    return Usage(prompt_tokens=final.prompt_eval_count, completion_tokens=final.eval_count or 0, ttft_s=ttft,
                 total_s=total, load_s=_seconds(final.load_duration),
                 prompt_eval_s=_seconds(final.prompt_eval_duration), eval_s=_seconds(final.eval_duration),
                 source="server")


def _seconds(nanoseconds: int | None) -> float | None:
    return None if nanoseconds is None else nanoseconds / 1e9


def _int_or_none(value: int | None) -> int | None:  # pydantic ByteSize -> plain int for JSON records
    return None if value is None else int(value)


def _one_line(message: object, limit: int = 300) -> str:
    flat = " ".join(str(message).split())
    return flat if len(flat) <= limit else flat[:limit] + "..."


@contextmanager
def _ollama_errors(url: str, model: str | None = None) -> Iterator[None]:
    """Turn whatever the client, httpx or the reply raise into one ModelError line for the user."""
    try:
        yield
    except ollama.ResponseError as err:
        message = _one_line(err.error)
        missing = err.status_code == 404 or ("model" in message.lower() and "not found" in message.lower())
        if model is not None and missing:
            raise OllamaModelMissing(model, url) from err
        where = err.status_code if err.status_code > 0 else "mid-stream"  # errors inside a 200 stream
        kind = TransientModelError if err.status_code >= 500 else ModelError
        raise kind(f"Ollama error {where}: {message}") from err
    except (httpx.ConnectError, httpx.ConnectTimeout, ConnectionError) as err:
        # ollama-python swaps httpx.ConnectError for a generic ConnectionError; the reason is its context.
        reason = err.__context__ if isinstance(err.__context__, httpx.HTTPError) else err
        raise TransientModelError(f"cannot reach Ollama at {url}: {_one_line(reason) or repr(reason)}") from err
    except httpx.TimeoutException as err:
        raise ModelError(f"Ollama at {url} timed out ({type(err).__name__}): {_one_line(err)}") from err
    except (httpx.RemoteProtocolError, json.JSONDecodeError, pydantic.ValidationError) as err:
        raise ModelError(f"malformed reply from Ollama: {_one_line(err)}") from err
    except httpx.HTTPError as err:
        raise ModelError(f"cannot reach Ollama at {url}: {_one_line(err) or repr(err)}") from err
