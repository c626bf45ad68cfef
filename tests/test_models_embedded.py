"""The embedded provider and the OpenAI-compatible client, against real llama.cpp servers."""

from __future__ import annotations

import psutil
import pytest

from sizeup.models import GenerationParams, ModelError, Prompt, PromptStyle
from sizeup.models.openai_compat import OpenAICompatClient

PROMPT = Prompt(
    system="You are terse.",
    user="Write a Python function that adds two numbers.",
    completion="### Task\nAdd two numbers.\n\n### Solution\n```python\ndef add(a, b):\n",
    stop=("```",),
)


def test_chat_model_reports_real_usage(small_client):
    reply = small_client.generate(PROMPT, GenerationParams(max_tokens=16))
    usage = reply.usage
    assert small_client.style is PromptStyle.CHAT
    assert reply.text.strip()
    assert 10 < usage.prompt_tokens < 200  # the chat template wraps the two messages
    assert 1 <= usage.completion_tokens <= 16
    assert usage.ttft_s is not None and 0 < usage.ttft_s <= usage.total_s
    assert reply.finish_reason in ("stop", "length")


def test_token_limit_is_honoured_and_reported(small_client):
    reply = small_client.generate(
        Prompt("", "Count from 1 to 100, one number per line.", ""), GenerationParams(max_tokens=8)
    )
    assert reply.usage.completion_tokens == 8
    assert reply.finish_reason == "length"


def test_base_model_is_prompted_completion_style(large_client):
    assert large_client.style is PromptStyle.COMPLETION
    reply = large_client.generate(PROMPT, GenerationParams(max_tokens=12))
    assert reply.usage.completion_tokens >= 1
    assert reply.usage.prompt_tokens > 10


def test_seeded_sampling_is_reproducible_and_seeds_differ(small_client):
    params = dict(max_tokens=12, temperature=1.0)
    a = small_client.generate(PROMPT, GenerationParams(seed=7, **params)).text
    b = small_client.generate(PROMPT, GenerationParams(seed=7, **params)).text
    others = {small_client.generate(PROMPT, GenerationParams(seed=s, **params)).text for s in (1, 2, 3)}
    assert a == b
    assert len(others | {a}) > 1


def test_each_model_has_its_own_server_process(small_client, large_client):
    (small_pid,), (large_pid,) = small_client.server_pids(), large_client.server_pids()
    assert small_pid != large_pid
    for pid in (small_pid, large_pid):
        assert psutil.Process(pid).memory_info().rss > 50e6  # the weights are mapped in
    info = small_client.load_info()
    assert info["load_s"] > 0 and info["rss_after_load_mb"] > 50 and info["gguf_mb"] > 50


def test_server_is_stopped_on_close(models_ready):
    from sizeup.models.embedded import EmbeddedClient

    client = EmbeddedClient("smollm2:135m", n_ctx=256)
    (pid,) = client.server_pids()
    client.close()
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    with pytest.raises(ModelError, match="exited"):
        client.generate(PROMPT)


def test_unknown_model_name_is_one_clear_line(models_ready):
    from sizeup.models.embedded import EmbeddedClient

    with pytest.raises(ModelError, match="unknown embedded model 'nope:1b'"):
        EmbeddedClient("nope:1b")


def test_server_that_is_down_gives_a_clear_error():
    client = OpenAICompatClient("m", "http://127.0.0.1:9/v1", timeout_s=5)
    with pytest.raises(ModelError, match="cannot reach"):
        client.generate(PROMPT)


def test_a_broken_stream_is_one_clear_line():
    from sizeup.models.openai_compat import _sse_chunks

    url = "http://127.0.0.1:8000/v1"
    good = ['data: {"choices": [{"text": "a"}]}', "", ": ping", 'data: {"choices": []}', "data: [DONE]", "data: {"]
    assert len(list(_sse_chunks(good, url))) == 2  # stops at [DONE]; comments and blank lines skipped
    cases = {
        "not JSON": ["data: {oops"],
        "not an object": ["data: [1, 2]"],
        "out of memory": ['data: {"error": {"message": "out of memory", "code": 500}}'],
    }
    for expected, lines in cases.items():
        with pytest.raises(ModelError, match=expected) as caught:
            list(_sse_chunks(lines, url))
        assert "\n" not in str(caught.value)

    def cut_off():
        yield 'data: {"choices": [{"text": "a"}]}'
        raise ConnectionResetError("peer closed connection without sending complete message body")

    with pytest.raises(ModelError, match="broke off: ConnectionResetError"):
        list(_sse_chunks(cut_off(), url))
    with pytest.raises(ModelError, match=r"ended without \[DONE\]"):  # a close that cut the reply short
        list(_sse_chunks(['data: {"choices": [{"text": "a"}]}'], url))


def test_a_reply_of_no_tokens_keeps_the_servers_counts():
    client = OpenAICompatClient("m", "http://127.0.0.1:9/v1")  # no request is sent: only the stream is read
    stream = [
        {"choices": [{"delta": {"role": "assistant"}, "finish_reason": None}]},
        {"choices": [{"delta": {}, "finish_reason": "stop"}]},
        {"choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 0}},
    ]
    reply = client._collect(iter(stream), PROMPT, started=0.0)
    assert (reply.text, reply.finish_reason) == ("", "stop")
    assert (reply.usage.source, reply.usage.prompt_tokens, reply.usage.completion_tokens) == ("server", 12, 0)
