"""sizeup's embedded model server: one GGUF served over loopback with the OpenAI API, as lean as it gets.

    python -m sizeup.models.llama_server --model PATH --alias NAME --port N [--n_ctx 2048] [--n_threads T]

Why not `python -m llama_cpp.server`: on 2 cores, read by the same client, it decoded at 0.93x the speed of
llama-cpp-python called in-process, where this server gives 0.98x to 1.01x (benchmarks/inference_bench.py
--also-llama-cpp-server; several runs). Its per-token path (a thread-pool hop, an asyncio channel, an SSE
task, a disconnect poll) competes with the decode threads for the cores, and it decodes on thread-pool
workers. llama.cpp here is built with OpenMP, whose worker team belongs to the OS thread that calls it:
decoding from more than one thread leaves teams waiting on each other (a threaded first version of this
server: 34 ms a token instead of 11 once a second thread had decoded).

So this server is one thread: it decodes every request on the thread that loaded the model and writes
the tokens to the socket itself. Requests are served one at a time, in order of arrival (the listen
backlog is the queue), and each connection is closed after its response, so that no idle keep-alive
connection holds the only thread; a connection that sends no request within 10 s is dropped. Sampling is
llama-cpp-python's own (`create_completion`, `create_chat_completion`, the GGUF's chat template), with
llama_cpp.server's request defaults so that both give the same tokens. Streams end with a `usage` chunk
when the client asks for it (`stream_options.include_usage`), counted from the tokens llama.cpp produced,
not from the chunks. After the first chunk with text (sent at once: it is the time to first token), the
stream is sent every 50 ms (`--flush_ms`) rather than every token: the client then wakes ~20 times a
second, not once a token, and takes that much less CPU from the decode threads; the end of the stream
(and so the decode time) is sent at once too.

Serves: GET /v1/models, POST /v1/completions, POST /v1/chat/completions (streamed or not), and
GET /v1/sizeup/requests: the last 16 requests' completion tokens and how each ended ("done", or
"client_left" for a client that hung up mid-stream, whose generation stopped there).
"""

from __future__ import annotations

import argparse
import collections
import itertools
import json
import socket
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import llama_cpp

# llama_cpp.server's request defaults (llama_cpp/server/types.py), so that sizeup's runs sample as before.
DEFAULTS = {
    "max_tokens": 16,
    "temperature": 0.8,
    "top_p": 0.95,
    "min_p": 0.05,
    "top_k": 40,
    "repeat_penalty": 1.1,
    "presence_penalty": 0.0,
    "frequency_penalty": 0.0,
}
PASSED = (*DEFAULTS, "stop", "seed")


def _has_text(chunk: dict) -> bool:
    choices = chunk.get("choices") or [{}]
    return bool(choices[0].get("text") or (choices[0].get("delta") or {}).get("content"))


class BadRequest(ValueError):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class TokenCounter:
    """Counts what llama.cpp generates for one request by wrapping this Llama's `generate`, which
    create_completion calls with the full prompt and which yields each sampled token: exact counts, where
    counting streamed chunks is not (text held back while it may begin a stop sequence comes out as one
    chunk for several tokens)."""

    def __init__(self, llama: llama_cpp.Llama):
        self._llama = llama
        self._generate = llama.generate
        self.prompt_tokens = self.completion_tokens = 0
        # An instance attribute: create_completion calls self.generate.
        llama.generate = self._counting_generate  # type: ignore[method-assign, assignment]

    def reset(self) -> None:
        self.prompt_tokens = self.completion_tokens = 0

    def _counting_generate(self, tokens, *args, **kwargs) -> Iterator[int]:
        self.prompt_tokens = len(tokens)
        # generate() replaces the last request's sampler chain without freeing it: llama-cpp-python frees a
        # sampler from a callback that refers back to it, a cycle only a full garbage collection breaks, so
        # each request left n_vocab x 12 bytes behind (3 MB for gemma3's vocabulary) and the server's memory
        # grew with the number of calls, not with the model. Freed here, before the next chain is made.
        previous = getattr(self._llama, "_sampler", None)
        if previous is not None:
            previous.close()
            self._llama._sampler = None
        vocab = self._llama._model.vocab
        for token in self._generate(tokens, *args, **kwargs):
            if not llama_cpp.llama_token_is_eog(vocab, token):  # an end-of-generation token is not output
                self.completion_tokens += 1
            yield token


class ModelServer(HTTPServer):
    """Single-threaded on purpose (see the module's docstring)."""

    request_queue_size = 128  # requests waiting their turn, e.g. from `--parallel N`

    def __init__(self, address: tuple[str, int], llama: llama_cpp.Llama, alias: str, flush_s: float = 0.05):
        super().__init__(address, Handler)
        self.llama, self.alias, self.flush_s = llama, alias, flush_s
        self.counter = TokenCounter(llama)
        self.recent: collections.deque[dict[str, Any]] = collections.deque(maxlen=16)

    def record(self, ended: str) -> None:
        self.recent.append({"completion_tokens": self.counter.completion_tokens, "ended": ended})


class Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 for chunked streams: a server that dies mid-stream is then a truncated reply to any client,
    # where a body ended by the close would merely look short. Parsing the chunks costs the client nothing
    # measurable (~50 us an event, chunked or not). One request per connection: "Connection: close".
    protocol_version = "HTTP/1.1"
    timeout = 10.0  # a connection that sends no request within this holds the only thread no longer
    reply_timeout_s = 600.0  # a client that stops reading a reply for this long is dropped
    server: ModelServer

    def setup(self) -> None:
        super().setup()
        # Small writes (the first token, then one per flush): without this, Nagle holds each write until the
        # previous one is acknowledged, and delayed ACKs make that up to 40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        pass  # one line per request on stderr is noise in sizeup's server log

    def do_GET(self) -> None:
        if self.path.rstrip("/") == "/v1/models":
            self._send_json(
                200,
                {
                    "object": "list",
                    "data": [{"id": self.server.alias, "object": "model", "owned_by": "sizeup", "created": 0}],
                },
            )
        elif self.path.rstrip("/") == "/v1/sizeup/requests":
            self._send_json(200, {"object": "list", "data": list(self.server.recent)})
        else:
            self._send_error(404, f"no such endpoint: GET {self.path}")

    def do_POST(self) -> None:
        try:
            body = self._read_body()
            self.connection.settimeout(self.reply_timeout_s)
            path = self.path.rstrip("/")
            if path in ("/v1/completions", "/v1/chat/completions"):
                self._complete(body, chat=path.endswith("chat/completions"))
            else:
                raise BadRequest(404, f"no such endpoint: POST {self.path}")
        except BadRequest as err:
            self._send_error(err.status, str(err))
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            # the client went away or stopped reading mid-stream: generation stops, next request
            self.server.record("client_left")

    def _read_body(self) -> dict:
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except json.JSONDecodeError as err:
            raise BadRequest(400, f"the request body is not JSON: {err}") from err
        if not isinstance(body, dict):
            raise BadRequest(400, "the request body must be a JSON object")
        return body

    def _complete(self, body: dict, chat: bool) -> None:
        model = body.get("model")
        if model not in (None, self.server.alias):
            raise BadRequest(404, f"model '{model}' not found: this server serves '{self.server.alias}'")
        kwargs = {**DEFAULTS, **{key: body[key] for key in PASSED if body.get(key) is not None}}
        if chat:
            messages = body.get("messages")
            if not isinstance(messages, list) or not messages:
                raise BadRequest(400, "'messages' must be a non-empty list")
            kwargs["messages"] = messages
        else:
            if not isinstance(body.get("prompt"), str):
                raise BadRequest(400, "'prompt' must be a string")
            kwargs["prompt"] = body["prompt"]
        stream = bool(body.get("stream"))
        want_usage = stream and bool((body.get("stream_options") or {}).get("include_usage"))
        llama, counter = self.server.llama, self.server.counter
        counter.reset()
        create = llama.create_chat_completion if chat else llama.create_completion
        try:
            result: Any = create(stream=stream, **kwargs)  # a response dict, or an iterator of chunk dicts
            # A stream checks the prompt's length only when its first chunk is asked for: before the headers.
            first = next(result, None) if stream else None
        except ValueError as err:  # a prompt longer than the context, a bad message list
            raise BadRequest(400, str(err)) from err
        if not stream:
            self._send_json(200, result)
            self.server.record("done")
            return
        self._start_stream()
        last, text_sent = None, False
        for chunk in itertools.chain([first] if first is not None else [], result):
            # Until a chunk with text has gone out (a chat stream opens with a role-only chunk), send at
            # once: the client's time to first token must not wait for a flush.
            self._send_event(chunk, at_once=not text_sent)
            text_sent = text_sent or _has_text(chunk)
            last = chunk
        if want_usage:
            self._send_event(
                {
                    "id": (last or {}).get("id", f"cmpl-{uuid.uuid4()}"),
                    "object": "chat.completion.chunk" if chat else "text_completion",
                    "created": int(time.time()),
                    "model": self.server.alias,
                    "choices": [],
                    "usage": {
                        "prompt_tokens": counter.prompt_tokens,
                        "completion_tokens": counter.completion_tokens,
                        "total_tokens": counter.prompt_tokens + counter.completion_tokens,
                    },
                }
            )
        self._end_stream()
        self.server.record("done")

    # --- HTTP plumbing: JSON replies, and server-sent events in HTTP chunks written straight to the socket ---

    def _send_json(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def _send_error(self, status: int, message: str) -> None:
        self._send_json(status, {"error": {"message": message, "type": "invalid_request_error", "code": status}})

    def _start_stream(self) -> None:
        self._pending: list[bytes] = []
        self._flushed_at = 0.0
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.end_headers()

    def _send_event(self, payload: dict, at_once: bool = False) -> None:
        self._pending.append(b"data: " + json.dumps(payload).encode() + b"\n\n")
        now = time.perf_counter()
        if at_once or now - self._flushed_at >= self.server.flush_s:
            self._flush(now)

    def _flush(self, now: float, last: bool = False) -> None:
        events = b"".join(self._pending)
        self._pending.clear()
        self.wfile.write(b"%x\r\n%s\r\n%s" % (len(events), events, b"0\r\n\r\n" if last else b""))
        self._flushed_at = now

    def _end_stream(self) -> None:
        self._pending.append(b"data: [DONE]\n\n")
        self._flush(time.perf_counter(), last=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="path of the .gguf file")
    parser.add_argument("--alias", required=True, help="the model name clients ask for")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--n_ctx", type=int, default=2048)
    parser.add_argument("--n_threads", type=int, default=None)
    parser.add_argument("--n_threads_batch", type=int, default=None)
    parser.add_argument(
        "--request_timeout",
        type=float,
        default=Handler.timeout,
        help="seconds a new connection may take to send its request (default %(default)s)",
    )
    parser.add_argument(
        "--flush_ms",
        type=float,
        default=50.0,
        help="after the first token, send the stream at most every this many ms (0: every token)",
    )
    args = parser.parse_args(argv)
    Handler.timeout = args.request_timeout
    llama = llama_cpp.Llama(
        model_path=args.model,
        n_ctx=args.n_ctx,
        n_threads=args.n_threads,
        n_threads_batch=args.n_threads_batch or args.n_threads,
        verbose=False,
    )
    server = ModelServer((args.host, args.port), llama, args.alias, flush_s=args.flush_ms / 1000)
    print(f"sizeup llama server: {args.alias} on http://{args.host}:{args.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        llama.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
