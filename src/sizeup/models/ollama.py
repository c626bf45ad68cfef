"""Models served by Ollama, through the official `ollama` client.

Replies are streamed so that time to first token is observed. Token counts and server timings come
from the final chunk (done=true); a reply without that chunk or its counters is an error, never a
silent zero.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import ollama
import psutil
import pydantic

from sizeup.models import local
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
from sizeup.monitor import process

T = TypeVar("T")
DEFAULT_URL = "http://127.0.0.1:11434"
CONNECT_TIMEOUT_S = 5.0  # a dead host should fail fast, not after the long read timeout meant for generation
DEFAULT_PARAMS = GenerationParams()


@dataclass(frozen=True)
class _ModelFacts:
    style: PromptStyle
    blob: str | None  # the GGUF the runner is started with (`--model PATH`), from the Modelfile's FROM line


@dataclass(frozen=True)
class _Runner:
    pid: int
    start_ticks: int  # a reused pid is not this runner

    def alive(self) -> bool:
        stat = process.read_stat(self.pid)
        return stat is not None and stat.start_ticks == self.start_ticks


def style_from_template(template: str) -> PromptStyle:
    """A model whose template renders only the prompt (`{{ .Prompt }}`, which Ollama gives a GGUF without a
    chat template: a base model) has no chat format: /api/chat would drop the system message. It is
    prompted completion-style through /api/generate with raw=true, as the embedded provider prompts it."""
    bare = "".join(template.split())
    return PromptStyle.COMPLETION if bare in ("", "{{.Prompt}}") else PromptStyle.CHAT


def _blob_from_modelfile(modelfile: str) -> str | None:
    for line in modelfile.splitlines():
        if line.startswith("FROM ") and "sha256" in line:
            return line[5:].strip()
    return None


def _find_runner(serve_pid: int, blob: str) -> _Runner | None:
    """The child of `ollama serve` started as `ollama runner ... --model BLOB ...`."""
    name = os.path.basename(blob)
    for pid in process.children(serve_pid):
        args = process.cmdline(pid)
        if "runner" not in args or "--model" not in args:
            continue
        index = args.index("--model")
        if index + 1 < len(args) and os.path.basename(args[index + 1]) == name:
            stat = process.read_stat(pid)
            if stat is not None:
                return _Runner(pid, stat.start_ticks)
    return None


class OllamaModelMissing(ModelError):
    def __init__(self, model: str, url: str):
        super().__init__(f"model '{model}' is not available on {url}; run `ollama pull {model}` or pass --pull")


class OllamaClient(ModelClient):
    provider = "ollama"

    def __init__(
        self,
        model: str,
        url: str = DEFAULT_URL,
        *,
        style: PromptStyle | None = None,
        keep_alive: str | float = "30m",
        num_ctx: int | None = None,
        num_thread: int | None = None,
        timeout_s: float = 300.0,
        pull: bool = False,
        retries: int = 2,
        backoff_s: float = 0.5,
        server_pid: int | None = None,
    ):
        self.model = model
        self.url = url
        self._style = style  # None: read from the model's template on first use (see _describe)
        self.keep_alive = keep_alive  # long enough that the model load is paid once, not by every task
        self.num_ctx = num_ctx
        self.num_thread = num_thread  # Ollama's default is one thread per physical core, spinning
        self.pull = pull
        self.retries, self.backoff_s = retries, backoff_s
        self._client = _make_client(url, timeout_s)
        self._pull_lock = threading.Lock()  # concurrent branches must not start several pulls
        self._pulled = False
        self._pull_error: ModelError | None = None
        self._describe_lock = threading.Lock()
        self._facts: _ModelFacts | None = None
        # The `ollama serve` behind the URL (found by its listening port, or --server-pid), and this model's
        # runner, its child.
        self._explicit_serve = server_pid is not None
        self._serve_pid, self._no_serve_why = (server_pid, "") if server_pid is not None else local.listener(url)
        self._serve_checked = time.monotonic()
        self._runner: _Runner | None = None

    @property
    def style(self) -> PromptStyle:  # type: ignore[override]
        return self._style if self._style is not None else self._describe().style

    def generate(self, prompt: Prompt, params: GenerationParams = DEFAULT_PARAMS) -> Completion:
        style = self.style  # asked of /api/show once; a missing model is pulled there when --pull allows
        try:
            return self._retrying(lambda: self._generate_once(prompt, params, style))
        except OllamaModelMissing:
            if not self.pull:
                raise
        self._pull_once()  # deleted since it was shown: pull again; the pull is not charged to this call
        try:
            return self._retrying(lambda: self._generate_once(prompt, params, style))
        except OllamaModelMissing as err:
            raise ModelError(f"model '{self.model}' is still missing on {self.url} after pulling it") from err

    def _retrying(self, call: Callable[[], T]) -> T:
        """Retry what may pass on its own (connection refused, 5xx) with exponential backoff."""
        for attempt in range(self.retries + 1):
            try:
                return call()
            except TransientModelError:
                if attempt == self.retries:
                    raise
                time.sleep(self.backoff_s * 2**attempt)
        raise AssertionError("unreachable")

    def server_pids(self) -> list[int]:
        """The runner process that serves this model: Ollama keeps every loaded model in a runner of its own
        under one `ollama serve`, so measuring the whole tree would charge each side for the other's model.
        The runner is the child whose `--model` is this model's blob. Called by the monitor 20 times a
        second: a found runner is kept while it lives (a reload, e.g. a new num_thread, starts a new one)."""
        serve = self._serve()
        if serve is None:
            return []
        if self._runner is not None and self._runner.alive():
            return [self._runner.pid]
        blob = self._describe().blob if self._facts is not None else None
        self._runner = _find_runner(serve, blob) if blob else None
        return [self._runner.pid] if self._runner is not None else []

    def shared_server_pids(self) -> list[int]:
        """`ollama serve` itself (API, scheduler): shared by every model it serves, so reported apart."""
        serve = self._serve()
        return [] if serve is None else [serve]

    def _serve(self) -> int | None:
        """The server's pid; looked up again (at most once a second: it reads every socket) once it is gone."""
        if self._serve_pid is not None and psutil.pid_exists(self._serve_pid):
            return self._serve_pid
        if not self._explicit_serve and time.monotonic() - self._serve_checked > 1.0:
            self._serve_checked = time.monotonic()
            self._serve_pid, self._no_serve_why = local.listener(self.url)
            self._runner = None
        return self._serve_pid if self._serve_pid is not None and psutil.pid_exists(self._serve_pid) else None

    def attribution(self) -> str:
        if self._serve() is None:
            # The reason kept from the last lookup; looked up now only for a server that has gone since.
            why = self._no_serve_why or local.listener(self.url)[1]
            return f"not_measurable ({why or 'no local server process'})"
        if self._runner is None and not self.server_pids():
            return "not_measurable (no runner with this model's blob under the `ollama serve` behind the URL)"
        return "ollama_runner (the runner process whose --model is this model's blob; `ollama serve` apart)"

    def warm_up(self) -> dict[str, Any]:
        """Load the model once before any task (keep_alive keeps it), and record whether a load happened:
        a model already resident (in /api/ps, with the same runner before and after) was not loaded, and
        Ollama's load_duration on such a call (tens of ms) is no load. Its size from /api/ps is kept too."""
        self._describe()
        resident_before = self._loaded_entry() is not None
        runner_before = self.server_pids()
        info = super().warm_up()
        entry = self._loaded_entry()
        runner_after = self.server_pids()
        if runner_before or runner_after:  # a local server: a new runner pid is a (re)load, whatever ps said
            loaded = not resident_before or runner_before != runner_after
            info["load_detected_by"] = "runner pid before and after the warm-up call"
        else:
            loaded = not resident_before
            info["load_detected_by"] = "/api/ps before the warm-up call (a reload of a resident model is not seen)"
        info["resident_before"] = resident_before
        info["loaded"] = loaded
        server_load_s = info.pop("load_s", None)
        if loaded and server_load_s is not None:
            info["load_s"] = server_load_s  # Ollama's own load_duration of the call that loaded it
        if self.num_thread is not None:
            info["num_thread"] = self.num_thread
        if entry is not None:
            info["loaded_size_mb"] = int(entry.size or 0) / 1e6
            info["size_vram_mb"] = int(entry.size_vram or 0) / 1e6
        return info

    def _loaded_entry(self) -> Any:
        with _ollama_errors(self.url):
            running = {model.model: model for model in self._client.ps().models}
        return running.get(self.model) or running.get(f"{self.model}:latest")

    def _describe(self) -> _ModelFacts:
        """What /api/show says of the model, asked once: its prompt style and its blob. A missing model is
        pulled here when --pull allows it, so that every later step finds it."""
        with self._describe_lock:
            if self._facts is None:
                try:
                    shown = self._show()
                except OllamaModelMissing:
                    if not self.pull:
                        raise
                    self._pull_once()
                    shown = self._show()
                self._facts = _ModelFacts(
                    style=style_from_template(shown.template or ""), blob=_blob_from_modelfile(shown.modelfile or "")
                )
            return self._facts

    def _show(self) -> Any:
        def show() -> Any:
            with _ollama_errors(self.url, self.model):
                return self._client.show(self.model)

        return self._retrying(show)

    def close(self) -> None:
        self._client.close()

    def _generate_once(self, prompt: Prompt, params: GenerationParams, style: PromptStyle) -> Completion:
        started = time.perf_counter()
        chunks: Iterator[Any]
        with _ollama_errors(self.url, self.model):
            if style is PromptStyle.COMPLETION:
                # raw=True: the completion text is sent as is, without the model's chat template.
                chunks = self._client.generate(
                    self.model,
                    prompt.completion,
                    raw=True,
                    stream=True,
                    options=self._options(params, prompt.stop),
                    keep_alive=self.keep_alive,
                )
            else:
                chunks = self._client.chat(
                    self.model,
                    prompt.messages(),
                    stream=True,
                    options=self._options(params, ()),
                    keep_alive=self.keep_alive,
                )
            return self._collect(chunks, style, started)

    def _options(self, params: GenerationParams, stop: tuple[str, ...]) -> dict[str, Any]:
        options: dict[str, Any] = {"temperature": params.temperature, "num_predict": params.max_tokens}
        if params.seed is not None:
            options["seed"] = params.seed
        if params.top_p is not None:
            options["top_p"] = params.top_p
        if self.num_ctx is not None:
            options["num_ctx"] = self.num_ctx
        if self.num_thread is not None:
            options["num_thread"] = self.num_thread  # a change reloads the runner (new pid, ~1 s)
        if stop:
            options["stop"] = list(stop)
        return options

    def _collect(self, chunks: Iterator[Any], style: PromptStyle, started: float) -> Completion:
        pieces: list[str] = []
        ttft: float | None = None
        final = None
        for chunk in chunks:
            if style is PromptStyle.COMPLETION:
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
    return [
        {
            "name": model.model,
            "size": _int_or_none(model.size),
            "loaded": model.model in running,
            "size_vram": _int_or_none(running[model.model].size_vram) if model.model in running else None,
            "parameter_size": model.details.parameter_size if model.details else None,
            "quantization_level": model.details.quantization_level if model.details else None,
        }
        for model in local
    ]


def _make_client(url: str, timeout_s: float) -> ollama.Client:
    timeout = httpx.Timeout(timeout_s, connect=min(CONNECT_TIMEOUT_S, timeout_s))
    return ollama.Client(host=url, timeout=timeout)


def _usage(final: Any, text: str, ttft: float | None, total: float) -> Usage:
    # Ollama omits zero-valued counters (omitempty), so only a count that must be positive is required.
    if final.prompt_eval_count is None:
        raise ModelError(
            "malformed reply from Ollama: the final chunk has no prompt_eval_count "
            "(old Ollama versions drop it for cached prompts)"
        )
    if final.eval_count is None and text:
        raise ModelError("malformed reply from Ollama: the final chunk has no eval_count for a reply")
    return Usage(
        prompt_tokens=final.prompt_eval_count,
        completion_tokens=final.eval_count or 0,
        ttft_s=ttft,
        total_s=total,
        load_s=_seconds(final.load_duration),
        prompt_eval_s=_seconds(final.prompt_eval_duration),
        eval_s=_seconds(final.eval_duration),
        source="server",
    )


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
