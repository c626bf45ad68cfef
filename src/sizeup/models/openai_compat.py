"""Any OpenAI-compatible server (vLLM, llama.cpp, the embedded server) through the `openai` client.

Replies are streamed so that time to first token is observed. Token counts come from the server's
`usage` when it sends one; otherwise completion tokens are counted from the stream (llama.cpp and vLLM
send one token per chunk) and the prompt's size is marked unknown.

The SDK sends the request (auth, retries, timeouts, its typed errors); the stream's lines are read raw
(`with_streaming_response`) and each chunk decoded with json.loads alone. Building the SDK's pydantic
chunk objects cost 0.48 ms of CPU a token against 0.18 ms here; with a local server every such ms is
taken from the decode threads (benchmarks/inference_bench.py).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any

import openai
import psutil

from sizeup.models import local
from sizeup.models.types import (
    COMPLETION_ONLY,
    Completion,
    GenerationParams,
    ModelClient,
    ModelError,
    Prompt,
    PromptStyle,
    Usage,
)


class OpenAICompatClient(ModelClient):
    provider = "openai"

    def __init__(
        self,
        model: str,
        base_url: str,
        *,
        style: PromptStyle = PromptStyle.CHAT,
        api_key: str = "sk-no-key-needed",
        timeout_s: float = 300.0,
        server_pid: int | None = None,
    ):
        self.model = model
        self.style = style
        self.base_url = base_url
        # The local server's process, for resource accounting: --server-pid, else the one listening on the
        # URL's port (found once: it reads every socket on the machine).
        self._explicit_pid = server_pid is not None
        # Looked up once (it reads every socket on the machine), with the reason when there is none.
        self._server_pid, self._no_pid_why = (server_pid, "") if server_pid is not None else local.listener(base_url)
        self._client = openai.OpenAI(base_url=base_url, api_key=api_key, timeout=timeout_s, max_retries=2)

    def generate(self, prompt: Prompt, params: GenerationParams = GenerationParams()) -> Completion:
        # include_usage: vLLM and llama.cpp's llama-server then end the stream with the token counts.
        common: dict[str, Any] = {
            "model": self.model,
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if params.seed is not None:
            common["seed"] = params.seed
        if params.top_p is not None:
            common["top_p"] = params.top_p
        started = time.perf_counter()
        try:
            if self.style is PromptStyle.COMPLETION:
                request = self._client.completions.with_streaming_response.create(
                    prompt=prompt.completion, stop=list(prompt.stop) or None, **common
                )
            else:
                common["messages"] = prompt.messages()  # role/content dicts: what the SDK's TypedDicts describe
                request = self._client.chat.completions.with_streaming_response.create(**common)
            with request as response:
                return self._collect(_sse_chunks(response.iter_lines(), self.base_url), prompt, started)
        except openai.APIConnectionError as err:
            raise ModelError(f"cannot reach the model server at {self.base_url}: {err}") from err
        except openai.NotFoundError as err:
            raise ModelError(f"model '{self.model}' not found at {self.base_url}: {err.message}") from err
        except openai.APIStatusError as err:
            raise ModelError(f"model server error {err.status_code} at {self.base_url}: {err.message}") from err

    def _collect(self, stream, prompt: Prompt, started: float) -> Completion:
        pieces: list[str] = []
        ttft: float | None = None
        usage = None
        finish: str | None = None
        for chunk in stream:
            if chunk.get("usage"):
                usage = chunk["usage"]
            if not chunk.get("choices"):
                continue
            choice = chunk["choices"][0]
            if self.style is PromptStyle.COMPLETION:
                piece = choice.get("text") or ""
            else:
                piece = (choice.get("delta") or {}).get("content") or ""
            if piece:
                if ttft is None:
                    ttft = time.perf_counter() - started
                pieces.append(piece)
            finish = choice.get("finish_reason") or finish
        total = time.perf_counter() - started
        if finish is None and not pieces:
            raise ModelError(f"malformed reply from {self.base_url}: the stream ended with no choices")
        text = "".join(pieces)
        # A usage of 0 completion tokens is a count only when no text came (an immediate end of sequence);
        # beside text it is a server's placeholder.
        if usage is not None and (usage.get("completion_tokens") or not pieces):
            out = Usage(
                prompt_tokens=int(usage.get("prompt_tokens") or 0),
                completion_tokens=int(usage.get("completion_tokens") or 0),
                ttft_s=ttft,
                total_s=total,
                source="server",
            )
        else:  # no usage: one token per chunk, and the prompt's size is unknown, and said to be
            out = Usage(
                prompt_tokens=0, completion_tokens=len(pieces), ttft_s=ttft, total_s=total, source=COMPLETION_ONLY
            )
        return Completion(text=text, usage=out, finish_reason=finish)

    def server_pids(self) -> list[int]:
        return [self._server_pid] if self._server_pid is not None and psutil.pid_exists(self._server_pid) else []

    def attribution(self) -> str:
        if self._server_pid is None:
            return f"not_measurable ({self._no_pid_why or 'no local server process'})"
        how = "--server-pid" if self._explicit_pid else "the process listening on the URL's port"
        return f"server_process ({how}, with its children)"

    def close(self) -> None:
        self._client.close()


def _sse_chunks(lines: Iterable[str], url: str):
    """The JSON objects of a server-sent-event stream, up to `data: [DONE]`. An error sent inside the
    stream (vLLM does so once the headers are out), a line that is not JSON, or a stream that breaks off
    or ends without [DONE] (a server that died, where the connection's close ends the reply) stops with
    one line."""
    for line in _transport_checked(lines, url):
        if not line.startswith("data:"):
            continue  # blank separators, comments (": ping"), `event:` lines
        data = line[5:].strip()
        if data == "[DONE]":
            return
        try:
            chunk = json.loads(data)
        except json.JSONDecodeError as err:
            raise ModelError(f"malformed reply from {url}: a stream line is not JSON: {data[:120]!r}") from err
        if not isinstance(chunk, dict):
            raise ModelError(f"malformed reply from {url}: a stream chunk is not an object: {data[:120]!r}")
        if "error" in chunk:
            error = chunk["error"]
            message = error.get("message", error) if isinstance(error, dict) else error
            raise ModelError(f"model server error at {url}: {message}")
        yield chunk
    raise ModelError(f"the stream from {url} ended without [DONE]: the server stopped mid-reply")


def _transport_checked(lines: Iterable[str], url: str):
    try:
        yield from lines
    except Exception as err:  # the SDK's transport (httpx or httpx2, by SDK version) failed mid-stream
        raise ModelError(f"the stream from {url} broke off: {type(err).__name__}: {err}") from err
