"""A local HTTP server that replays Ollama's responses, for what a real server cannot be made to do.

The provider is tested against a real Ollama (tests/ollama_server.py, test_ollama_real.py). This replay is
kept for the rest: a 5xx, a runner crash, streams that break off or end without counters, a model that
thinks, exact first-token delays, a pull that succeeds (no registry is reachable here), and the request
bodies the client sends (a real server does not show them). Its shapes follow what Ollama 0.17.4 really
sent (../shared/data/ollama-0.17.4-replies/, ../shared/notes/ollama-real.md §4):
  * a missing model is `404 {"error": "model 'NAME' not found"}`; an unknown path `404 page not found`
    as text/plain;
  * /api/ps entries carry the loaded size (weights + KV cache + graph, not the file's), `size_vram` 0 on a
    CPU, `context_length` and `expires_at`; /api/tags entries carry `model` beside `name`;
  * the final /api/chat chunk carries an empty assistant message and a `done_reason`;
  * /api/show gives the model's template and Modelfile (`{{ .Prompt }}` for a base model).
Counters are the docs' examples (docs/api.md); a real server's vary per call.

Special model names: "broken" answers HTTP 500, "truncated" ends its stream without the done chunk,
"cutoff" drops the connection mid-stream, "nocounters" sends a done chunk without token counts,
"flaky" answers its first request with 503 (Ollama's OLLAMA_MAX_QUEUE reply) and then normally,
"deepseek-r1:7b" streams `thinking` before its answer. Models in `pullable` appear after /api/pull.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CREATED_AT = "2023-08-04T08:52:19.385406455-07:00"
ANSWER_PIECES = ["The", " sky", " is", " blue", " because", " it", " is", " the", " color", " of", " the", " sky", "."]
THINKING_PIECES = ["Okay,", " the", " user", " asks", " about", " the", " sky."]

# Final chunks from docs/api.md: "Chat Request (Streaming)" and "Generate request (Streaming)".
CHAT_COUNTERS = {
    "total_duration": 4883583458,
    "load_duration": 1334875,
    "prompt_eval_count": 26,
    "prompt_eval_duration": 342546000,
    "eval_count": 282,
    "eval_duration": 4535599000,
}
GENERATE_COUNTERS = {
    "total_duration": 10706818083,
    "load_duration": 6338219291,
    "prompt_eval_count": 26,
    "prompt_eval_duration": 130079000,
    "eval_count": 259,
    "eval_duration": 4232710000,
}

DETAILS = {
    "parent_model": "",
    "format": "gguf",
    "family": "llama",
    "families": ["llama"],
    "parameter_size": "7.2B",
    "quantization_level": "Q4_0",
}
# name -> (size, digest); the first two are the docs' /api/tags example, mistral the docs' /api/ps one.
LOCAL_MODELS = {
    "codellama:13b": (7365960935, "9f438cb9cd581fc025612d27f7c1a6669ff83a8bb0ed86c94fcf4c5440555697"),
    "llama3:latest": (3825819519, "fe938a131f40e6f6d40083c9f0f430a515233eb2edaa6d72eb85c50d64f2300e"),
    "mistral:latest": (5137025024, "2ae6f6dd7a3dd734790bbbf58b8909a606e0e7e97e94b7604e0aa7ae4490e6d8"),
    "llama3.2:latest": (2019393189, "a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72"),
    "deepseek-r1:7b": (4683075271, "0a8c266910232fd3291e71e5ba1e058cc5af9d411192cf88b6d30e92b6e73163"),
    "broken:latest": (1000, "0" * 64),
    "truncated:latest": (1000, "1" * 64),
    "cutoff:latest": (1000, "2" * 64),
    "nocounters:latest": (1000, "3" * 64),
    "flaky:latest": (1000, "5" * 64),
}
RUNNER_CRASH = "llama runner process has terminated: exit status 2"
LOADED_EXTRA = 92585601  # what /api/ps adds to a model's file size (smollm2:135m: 190948608 - 98363007)
CHAT_TEMPLATE = (
    "{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}<|im_start|>assistant\n"
)


def full_name(model: str) -> str:
    """Ollama's default tag: "llama3.2" is "llama3.2:latest"."""
    return model if ":" in model else f"{model}:latest"


class OllamaReplay:
    """Serve on 127.0.0.1:<free port> in a thread; `requests` records every (path, JSON body) received."""

    def __init__(self, first_token_delay_s: float = 0.05, chunk_delay_s: float = 0.01):
        self.first_token_delay_s = first_token_delay_s  # stands in for prefill, so TTFT is measurable
        self.chunk_delay_s = chunk_delay_s
        self.available: dict[str, tuple[int, str]] = dict(LOCAL_MODELS)
        self.pullable: dict[str, tuple[int, str]] = {"smollm2:135m": (270898672, "4" * 64)}
        self.loaded: set[str] = {"mistral:latest"}
        self.base_models: set[str] = {"codellama:13b"}  # /api/show gives them the bare `{{ .Prompt }}` template
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        # A short poll interval keeps shutdown (once per test) quick.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def bodies(self, path: str) -> list[dict[str, Any]]:
        with self._lock:
            return [body for seen, body in self.requests if seen == path]

    def __enter__(self) -> OllamaReplay:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def record(self, path: str, body: dict[str, Any]) -> None:
        with self._lock:
            self.requests.append((path, body))


def _handler_for(replay: OllamaReplay) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # chunked streaming and keep-alive, like Ollama's Go server

        def log_message(self, *args: object) -> None:  # keep pytest output clean
            pass

        def do_GET(self) -> None:
            replay.record(self.path, {})
            if self.path == "/api/tags":
                self._json(200, {"models": [_tag(name, *meta) for name, meta in replay.available.items()]})
            elif self.path == "/api/ps":
                loaded = [_running(name, *replay.available[name]) for name in sorted(replay.loaded)]
                self._json(200, {"models": loaded})
            else:
                self._not_found_path()

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            replay.record(self.path, body)
            if self.path in ("/api/chat", "/api/generate"):
                self._generate(body, chat=self.path == "/api/chat")
            elif self.path == "/api/pull":
                self._pull(body)
            elif self.path == "/api/show":
                self._show(body)
            else:
                self._not_found_path()

        def _not_found_path(self) -> None:
            data = b"404 page not found"
            self.send_response(404)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _show(self, body: dict[str, Any]) -> None:
            name = full_name(body.get("model", ""))
            if name not in replay.available:
                self._json(404, {"error": f"model '{body.get('model')}' not found"})
                return
            template = "{{ .Prompt }}" if name in replay.base_models else CHAT_TEMPLATE
            digest = replay.available[name][1]
            modelfile = f'# Modelfile generated by "ollama show"\nFROM /models/blobs/sha256-{digest}\n'
            self._json(
                200,
                {
                    "modelfile": modelfile,
                    "parameters": "",
                    "template": template,
                    "details": DETAILS,
                    "model_info": {"general.architecture": "llama"},
                    "capabilities": ["completion"],
                    "modified_at": "2026-12-02T01:10:39.335323549Z",
                },
            )

        def _generate(self, body: dict[str, Any], chat: bool) -> None:
            name = full_name(body.get("model", ""))
            if name not in replay.available:
                self._json(404, {"error": f"model '{body.get('model')}' not found"})
                return
            if name == "broken:latest":
                self._json(500, {"error": RUNNER_CRASH})
                return
            if name == "flaky:latest" and len(replay.bodies(self.path)) == 1:  # the first call only
                self._json(503, {"error": "server busy, please try again.  maximum pending requests exceeded"})
                return
            replay.loaded.add(name)
            limit = body.get("options", {}).get("num_predict", -1)
            hits_limit = 0 <= limit < len(ANSWER_PIECES)  # num_predict reached: done_reason "length"
            answer = ANSWER_PIECES[:limit] if hits_limit else ANSWER_PIECES
            counters = dict(CHAT_COUNTERS if chat else GENERATE_COUNTERS)
            if hits_limit:
                counters["eval_count"] = limit
            final = {"done_reason": "length" if hits_limit else "stop", **counters}
            if name == "nocounters:latest":
                final = {"done_reason": "stop"}
            thinking = THINKING_PIECES if name == "deepseek-r1:7b" else []
            if not body.get("stream", True):
                piece = _piece(body["model"], "".join(answer), "".join(thinking), chat)
                self._json(200, {**piece, "done": True, **final, **_context(body, chat)})
                return
            self._start_stream()
            time.sleep(replay.first_token_delay_s)
            for thought in thinking:
                self._chunk(_piece(body["model"], "", thought, chat) | {"done": False})
            for text in answer:
                self._chunk(_piece(body["model"], text, "", chat) | {"done": False})
            if name == "cutoff:latest":
                self.close_connection = True  # no terminating chunk: the client sees an incomplete body
                return
            if name != "truncated:latest":
                done = {"done": True, **final, **_context(body, chat)}
                self._chunk(_piece(body["model"], "", "", chat) | done)
            self._end_stream()

        def _pull(self, body: dict[str, Any]) -> None:
            name = full_name(body.get("model", ""))
            self._start_stream()
            self._chunk({"status": "pulling manifest"})
            if name not in replay.pullable and name not in replay.available:
                # Ollama reports pull failures inside the 200 stream (server/routes.go streamResponse).
                self._chunk({"error": "pull model manifest: file does not exist"})
                self._end_stream()
                return
            size, digest = replay.pullable.get(name) or replay.available[name]
            for completed in (0, size // 2, size):
                self._chunk(
                    {
                        "status": f"pulling {digest[:12]}",
                        "digest": f"sha256:{digest}",
                        "total": size,
                        "completed": completed,
                    }
                )
            for status in ("verifying sha256 digest", "writing manifest", "removing any unused layers", "success"):
                self._chunk({"status": status})
            replay.available[name] = (size, digest)
            self._end_stream()

        def _json(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _start_stream(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/x-ndjson")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()

        def _chunk(self, payload: dict[str, Any]) -> None:
            line = json.dumps(payload).encode() + b"\n"
            self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
            self.wfile.flush()
            time.sleep(replay.chunk_delay_s)

        def _end_stream(self) -> None:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

    return Handler


def _piece(model: str, text: str, thinking: str, chat: bool) -> dict[str, Any]:
    extra = {"thinking": thinking} if thinking else {}
    if chat:
        message = {"role": "assistant", "content": text} | extra
        return {"model": model, "created_at": CREATED_AT, "message": message}
    return {"model": model, "created_at": CREATED_AT, "response": text} | extra


def _context(body: dict[str, Any], chat: bool) -> dict[str, Any]:
    # /api/generate returns a (deprecated) context, except in raw mode ("raw mode will not return a context").
    return {} if chat or body.get("raw") else {"context": [1, 2, 3]}


def _tag(name: str, size: int, digest: str) -> dict[str, Any]:
    return {
        "name": name,
        "model": name,
        "modified_at": "2023-11-04T14:56:49.277302595-07:00",
        "size": size,
        "digest": digest,
        "details": DETAILS,
    }


def _running(name: str, size: int, digest: str) -> dict[str, Any]:
    # Loaded size: the file plus KV cache and compute graph (real: 98 MB file -> 191 MB loaded); no GPU.
    return {
        "name": name,
        "model": name,
        "size": size + LOADED_EXTRA,
        "digest": digest,
        "details": DETAILS,
        "expires_at": "2026-12-02T01:40:58.395981922Z",
        "size_vram": 0,
        "context_length": 4096,
    }
