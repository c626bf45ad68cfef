"""sizeup's own embedded model server (`sizeup.models.llama_server`) against real clients and a real model."""

from __future__ import annotations

import itertools
import json
import socket
import threading
import time

import httpx
import pytest

from sizeup.models import GenerationParams, ModelError, Prompt, PromptStyle
from sizeup.models.openai_compat import OpenAICompatClient

MODEL = "smollm2:135m"
CHAT = [{"role": "user", "content": "Count from 1 to 30, separated by commas."}]


@pytest.fixture(scope="module")
def server(models_ready):
    from sizeup.models.bundled import gguf_path
    from sizeup.models.embedded import EmbeddedServer

    # A long flush period, so that a first token held back for the flush would show (see the ttft test).
    server = EmbeddedServer(
        gguf_path(MODEL), MODEL, n_ctx=512, extra_args=("--request_timeout", "1.5", "--flush_ms", "5000")
    )
    yield server
    server.stop()


def _stream(server, path: str, body: dict) -> list[dict]:
    chunks = []
    with httpx.stream("POST", f"{server.url}{path}", json=body, timeout=60) as reply:
        assert reply.status_code == 200
        for line in reply.iter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                chunks.append(json.loads(line[6:]))
    return chunks


@pytest.mark.parametrize("stop", [None, [" 7"]])
def test_streamed_usage_is_what_llama_cpp_counts_without_streaming(server, stop):
    # With a stop sequence, text that may begin it is held back and sent as one chunk for several tokens,
    # so counting chunks would undercount; the server counts llama.cpp's tokens instead.
    body = {"model": MODEL, "prompt": "1, 2, 3, 4,", "max_tokens": 24, "temperature": 0, "stop": stop}
    whole = httpx.post(f"{server.url}/v1/completions", json=body, timeout=60).json()
    chunks = _stream(server, "/v1/completions", {**body, "stream": True, "stream_options": {"include_usage": True}})
    usage = chunks[-1]["usage"]
    assert chunks[-1]["choices"] == []
    assert usage["completion_tokens"] == whole["usage"]["completion_tokens"] > 0
    assert usage["prompt_tokens"] == whole["usage"]["prompt_tokens"] > 0
    assert "".join(chunk["choices"][0]["text"] for chunk in chunks[:-1]) == whole["choices"][0]["text"]
    if stop:
        assert whole["choices"][0]["finish_reason"] == "stop"
        assert len([chunk for chunk in chunks[:-1] if chunk["choices"][0]["text"]]) < usage["completion_tokens"]


def test_chat_stream_through_the_openai_client_reports_the_servers_counts(server):
    client = OpenAICompatClient(MODEL, f"{server.url}/v1", style=PromptStyle.CHAT)
    reply = client.generate(Prompt("", CHAT[0]["content"], ""), GenerationParams(max_tokens=10, temperature=0))
    assert reply.usage.source == "server"
    assert reply.usage.completion_tokens == 10 and reply.finish_reason == "length"
    assert 10 < reply.usage.prompt_tokens < 100
    assert 0 < reply.usage.ttft_s < reply.usage.total_s
    client.close()


def test_the_first_token_is_sent_at_once_and_the_rest_at_the_flush_period(server):
    started, arrivals = time.perf_counter(), []
    body = {"model": MODEL, "messages": CHAT, "max_tokens": 40, "temperature": 0, "stream": True}
    with httpx.stream("POST", f"{server.url}/v1/chat/completions", json=body, timeout=60) as reply:
        for line in reply.iter_lines():
            if line.startswith("data: {") and json.loads(line[6:])["choices"][0]["delta"].get("content"):
                arrivals.append(time.perf_counter() - started)
    assert len(arrivals) > 10
    # The first text comes alone, before the others (the role-only opening chunk does not count as text);
    # the rest come in bursts, one per 5 s flush period and one at the end, never a token at a time (on a
    # busy machine the reply may outlast one period).
    assert arrivals[1] - arrivals[0] > 0.1
    bursts = 1 + sum(later - earlier > 0.05 for earlier, later in itertools.pairwise(arrivals[1:]))
    assert bursts <= 1 + (arrivals[-1] - arrivals[0]) / 5.0, arrivals


def test_requests_sent_at_once_are_served_in_turn(server):
    body = {"model": MODEL, "messages": CHAT, "max_tokens": 8, "temperature": 0}
    replies: list[dict] = []

    def ask():
        replies.append(httpx.post(f"{server.url}/v1/chat/completions", json=body, timeout=60).json())

    threads = [threading.Thread(target=ask) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(replies) == 3
    assert len({reply["choices"][0]["message"]["content"] for reply in replies}) == 1  # greedy: the same
    assert all(reply["usage"]["completion_tokens"] == 8 for reply in replies)


def test_a_client_that_leaves_mid_stream_stops_its_generation(models_ready):
    """A stream whose client hangs up stops at the next token written (every token is written here:
    --flush_ms 0), so the server is free for the next request instead of finishing the abandoned one."""
    from sizeup.models.bundled import gguf_path
    from sizeup.models.embedded import EmbeddedServer

    server = EmbeddedServer(gguf_path(MODEL), MODEL, n_ctx=512, extra_args=("--flush_ms", "0"))
    try:
        # A count to continue, completion-style: a long reply on every build. (Asked in chat to count to 200,
        # the model's reply depends on the CPU's SIMD code path: 13 tokens on an AVX2-only VM, too few to show.)
        body = {"model": MODEL, "prompt": "1, 2, 3, 4, 5, 6, 7, 8, 9, 10,", "max_tokens": 300, "temperature": 0}
        whole = httpx.post(f"{server.url}/v1/completions", json=body, timeout=300).json()
        full = whole["usage"]["completion_tokens"]
        with httpx.stream("POST", f"{server.url}/v1/completions", json={**body, "stream": True}) as reply:
            next(reply.iter_lines())  # one event, then hang up
        answer = httpx.post(f"{server.url}/v1/completions", json={**body, "max_tokens": 4}, timeout=300)
        assert answer.status_code == 200 and answer.json()["usage"]["completion_tokens"] == 4
        recent = httpx.get(f"{server.url}/v1/sizeup/requests", timeout=30).json()["data"]
        assert [r["ended"] for r in recent] == ["done", "client_left", "done"]
        assert full >= 40 and recent[1]["completion_tokens"] < full / 4, (full, recent)
    finally:
        server.stop()


def test_a_silent_connection_does_not_hold_the_server(server):
    idle = socket.create_connection(("127.0.0.1", server.port))  # connects, sends nothing
    try:
        answer = httpx.post(
            f"{server.url}/v1/completions",
            timeout=60,
            json={"model": MODEL, "prompt": "1, 2,", "max_tokens": 2, "temperature": 0},
        )
        assert answer.status_code == 200  # served once the silent one timed out (1.5 s here, 10 s by default)
    finally:
        idle.close()


def test_bad_requests_get_one_clear_line(server):
    wrong_model = OpenAICompatClient("gpt-9", f"{server.url}/v1", style=PromptStyle.CHAT)
    with pytest.raises(ModelError, match="'gpt-9' not found") as caught:
        wrong_model.generate(Prompt("", "hi", ""), GenerationParams(max_tokens=2))
    assert "\n" not in str(caught.value)
    not_json = httpx.post(f"{server.url}/v1/completions", content=b"{nope", timeout=10)
    assert not_json.status_code == 400 and "not JSON" in not_json.json()["error"]["message"]
    too_long = OpenAICompatClient(MODEL, f"{server.url}/v1", style=PromptStyle.COMPLETION)
    with pytest.raises(ModelError, match="400"):
        too_long.generate(Prompt("", "", "word " * 2000), GenerationParams(max_tokens=2))
    assert httpx.get(f"{server.url}/v1/models", timeout=10).json()["data"][0]["id"] == MODEL  # still serving


def test_a_server_that_dies_mid_stream_is_one_clear_line(models_ready):
    from sizeup.models.bundled import gguf_path
    from sizeup.models.embedded import EmbeddedServer

    doomed = EmbeddedServer(gguf_path(MODEL), MODEL, n_ctx=512)
    client = OpenAICompatClient(MODEL, f"{doomed.url}/v1", style=PromptStyle.CHAT)
    story = Prompt("", "Write a long story about a dragon who learns to program.", "")
    killer = threading.Timer(0.7, doomed.proc.kill)  # 400 tokens take 4 s or more here
    killer.start()
    try:
        with pytest.raises(ModelError) as caught:
            client.generate(story, GenerationParams(max_tokens=400, temperature=0))
        assert "\n" not in str(caught.value) and doomed.url in str(caught.value)
    finally:
        killer.cancel()
        doomed.stop()
        client.close()


def test_the_servers_memory_does_not_grow_with_the_number_of_requests(models_ready):
    """llama-cpp-python leaves each request's sampler chain (n_vocab x 12 bytes: 3 MB for gemma3's 262k
    vocabulary) to a full garbage collection; the server frees it, or a model's measured memory would grow
    with the calls made, not with the model."""
    import psutil

    from sizeup.models.bundled import gguf_path
    from sizeup.models.embedded import EmbeddedServer

    server = EmbeddedServer(gguf_path("gemma3:270m"), "gemma3:270m", n_ctx=512)
    try:
        body = {"model": "gemma3:270m", "prompt": "def add(a, b):", "max_tokens": 4, "temperature": 0}
        rss = []
        for _ in range(12):
            assert httpx.post(f"{server.url}/v1/completions", json=body, timeout=120).status_code == 200
            rss.append(psutil.Process(server.proc.pid).memory_info().rss / 2**20)
        assert rss[-1] - rss[1] < 6, rss  # a leaking server grows 3 MB a call: 30 MB over these 10
    finally:
        server.stop()
