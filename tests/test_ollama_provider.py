"""The Ollama provider against a replay, for what a real server cannot be made to do (see ollama_replay): 5xx,
broken streams, a thinking model, exact delays, a successful pull, and the request bodies the client sends.
Everything a real server can show is tested against one in test_ollama_real.py."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import ollama
import pytest

from ollama_replay import (
    ANSWER_PIECES,
    CHAT_COUNTERS,
    GENERATE_COUNTERS,
    LOADED_EXTRA,
    THINKING_PIECES,
    OllamaReplay,
)
from sizeup.models.ollama import OllamaClient, list_models, style_from_template
from sizeup.models.types import GenerationParams, ModelError, Prompt, PromptStyle

ANSWER = "".join(ANSWER_PIECES)
PROMPT = Prompt(
    system="You write Python.", user="Write add(a, b).", completion="def add(a, b):\n", stop=("\ndef ", "\nclass ")
)


@pytest.fixture
def replay() -> Iterator[OllamaReplay]:
    with OllamaReplay() as server:
        yield server


def client(replay: OllamaReplay, model: str = "llama3.2", **kwargs) -> OllamaClient:
    return OllamaClient(model, replay.url, **kwargs)


def closed_port_url() -> str:
    with socket.socket() as sock:  # bind then close: nothing listens on this port afterwards
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_chat_returns_the_streamed_answer_and_the_server_counters(replay: OllamaReplay) -> None:
    with client(replay) as llm:
        reply = llm.generate(PROMPT)
    assert reply.text == ANSWER
    assert reply.finish_reason == "stop"
    usage = reply.usage
    assert (usage.prompt_tokens, usage.completion_tokens) == (26, 282)
    assert usage.load_s == pytest.approx(CHAT_COUNTERS["load_duration"] / 1e9)
    assert usage.prompt_eval_s == pytest.approx(0.342546)
    assert usage.eval_s == pytest.approx(4.535599)
    assert usage.source == "server"
    (body,) = replay.bodies("/api/chat")
    assert body["messages"] == [{"role": "system", "content": PROMPT.system}, {"role": "user", "content": PROMPT.user}]
    assert body["stream"] is True
    assert replay.bodies("/api/generate") == []


def test_chat_without_a_system_prompt_sends_only_the_user_message(replay: OllamaReplay) -> None:
    with client(replay) as llm:
        llm.generate(Prompt(system="", user="hi", completion="hi"))
    assert replay.bodies("/api/chat")[0]["messages"] == [{"role": "user", "content": "hi"}]


def test_completion_style_sends_the_raw_completion_text_with_stop_sequences(replay: OllamaReplay) -> None:
    with client(replay, style=PromptStyle.COMPLETION) as llm:
        reply = llm.generate(PROMPT)
    (body,) = replay.bodies("/api/generate")
    assert body["prompt"] == PROMPT.completion
    assert body["raw"] is True
    assert body["stream"] is True
    assert body["options"]["stop"] == ["\ndef ", "\nclass "]
    assert "system" not in body
    assert replay.bodies("/api/chat") == []
    assert reply.text == ANSWER
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (26, 259)
    assert reply.usage.load_s == pytest.approx(GENERATE_COUNTERS["load_duration"] / 1e9)


def test_time_to_first_token_is_measured_from_sending_to_the_first_piece() -> None:
    with OllamaReplay(first_token_delay_s=0.1, chunk_delay_s=0.02) as replay, client(replay) as llm:
        usage = llm.generate(PROMPT).usage
    assert usage.ttft_s is not None
    assert usage.ttft_s >= 0.1  # not before the server sent anything
    # The 12 pieces after the first take >= 0.24 s: a ttft taken at the end of the stream fails here.
    assert usage.ttft_s < usage.total_s - 0.2


def test_thinking_ends_the_wait_for_the_first_token_but_stays_out_of_the_text() -> None:
    with OllamaReplay(first_token_delay_s=0.05, chunk_delay_s=0.05) as replay, client(replay, "deepseek-r1:7b") as llm:
        reply = llm.generate(PROMPT)
    assert reply.text == ANSWER  # the thinking pieces are not in it
    assert len(THINKING_PIECES) == 7
    # The answer starts after 7 thinking chunks (>= 0.4 s); the first thinking chunk comes at ~0.05 s.
    assert reply.usage.ttft_s is not None and reply.usage.ttft_s < 0.3


def test_generation_options_and_keep_alive_are_passed_through(replay: OllamaReplay) -> None:
    params = GenerationParams(max_tokens=64, temperature=0.7, seed=42, top_p=0.9)
    with client(replay, keep_alive="10m", num_ctx=8192, num_thread=1) as llm:
        llm.generate(PROMPT, params)
    (body,) = replay.bodies("/api/chat")
    assert body["options"] == {
        "temperature": 0.7,
        "seed": 42,
        "num_predict": 64,
        "top_p": 0.9,
        "num_ctx": 8192,
        "num_thread": 1,
    }
    assert body["keep_alive"] == "10m"
    assert body["model"] == "llama3.2"


def test_defaults_keep_the_model_loaded_and_send_no_unset_options(replay: OllamaReplay) -> None:
    with client(replay) as llm:
        llm.generate(PROMPT)
    (body,) = replay.bodies("/api/chat")
    assert body["keep_alive"] == "30m"
    assert body["options"] == {"temperature": 0.0, "num_predict": 512}


def test_hitting_num_predict_reports_length(replay: OllamaReplay) -> None:
    with client(replay) as llm:
        reply = llm.generate(PROMPT, GenerationParams(max_tokens=3))
    assert reply.text == "The sky is"
    assert reply.finish_reason == "length"
    assert reply.usage.completion_tokens == 3


def test_pull_fetches_a_missing_model_once_then_answers(replay: OllamaReplay) -> None:
    with client(replay, "smollm2:135m", pull=True) as llm:
        first = llm.generate(PROMPT)
        second = llm.generate(PROMPT)
    assert first.text == second.text == ANSWER
    assert [body["model"] for body in replay.bodies("/api/pull")] == ["smollm2:135m"]
    # Found missing by /api/show (its template is read first), pulled once, then shown and asked twice.
    assert [body["model"] for body in replay.bodies("/api/show")] == ["smollm2:135m"] * 2
    assert len(replay.bodies("/api/chat")) == 2


def test_concurrent_branches_share_one_pull(replay: OllamaReplay) -> None:
    with client(replay, "smollm2:135m", pull=True) as llm, ThreadPoolExecutor(4) as pool:
        replies = list(pool.map(lambda _: llm.generate(PROMPT), range(4)))
    assert [reply.text for reply in replies] == [ANSWER] * 4
    assert len(replay.bodies("/api/pull")) == 1


def test_server_down_fails_promptly_with_cannot_reach() -> None:
    url = closed_port_url()
    started = time.perf_counter()
    with OllamaClient("llama3.2", url) as llm, pytest.raises(ModelError) as caught:
        llm.generate(PROMPT)
    assert time.perf_counter() - started < 5
    assert str(caught.value).startswith(f"cannot reach Ollama at {url}: ")
    assert "refused" in str(caught.value).lower()


def test_server_error_is_reported_with_status_and_message(replay: OllamaReplay) -> None:
    with client(replay, "broken") as llm, pytest.raises(ModelError) as caught:
        llm.generate(PROMPT)
    assert str(caught.value) == "Ollama error 500: llama runner process has terminated: exit status 2"


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("truncated", "malformed reply from Ollama: the stream ended without its final done chunk"),
        ("cutoff", "malformed reply from Ollama: "),
        ("nocounters", "malformed reply from Ollama: the final chunk has no prompt_eval_count"),
    ],
)
def test_incomplete_replies_are_errors_not_zeros(replay: OllamaReplay, model: str, expected: str) -> None:
    with client(replay, model) as llm, pytest.raises(ModelError) as caught:
        llm.generate(PROMPT)
    assert str(caught.value).startswith(expected)


def test_list_models_with_the_server_down_fails_promptly() -> None:
    url = closed_port_url()
    started = time.perf_counter()
    with pytest.raises(ModelError, match=f"^cannot reach Ollama at {url}: "):
        list_models(url)
    assert time.perf_counter() - started < 5


def test_the_replay_speaks_what_the_official_client_reads(replay: OllamaReplay) -> None:
    # The non-streamed shapes, checked with ollama-python itself, so the replay cannot drift from it.
    with ollama.Client(host=replay.url) as official:
        chat = official.chat("llama3.2", [{"role": "user", "content": "hi"}], stream=False)
        generated = official.generate("llama3.2", "hi", stream=False)
    assert chat.message.content == ANSWER and chat.eval_count == CHAT_COUNTERS["eval_count"]
    assert generated.response == ANSWER and generated.context == [1, 2, 3]
    assert generated.eval_duration == GENERATE_COUNTERS["eval_duration"]


def test_transient_errors_are_retried_with_backoff(replay: OllamaReplay) -> None:
    with client(replay, "flaky", backoff_s=0.01) as llm:
        reply = llm.generate(PROMPT)
    assert reply.text == "".join(ANSWER_PIECES)
    assert len(replay.bodies("/api/chat")) == 2  # one 503, then the answer


def test_a_persistent_server_error_gives_up_after_the_retries(replay: OllamaReplay) -> None:
    with client(replay, "broken", retries=2, backoff_s=0.01) as llm, pytest.raises(ModelError, match="500"):
        llm.generate(PROMPT)
    assert len(replay.bodies("/api/chat")) == 3


def test_a_base_model_is_prompted_raw_through_generate(replay: OllamaReplay) -> None:
    # codellama:13b has the bare `{{ .Prompt }}` template here: no chat format, so no /api/chat.
    with client(replay, "codellama:13b") as llm:
        llm.generate(PROMPT)
        assert llm.style is PromptStyle.COMPLETION
    (body,) = replay.bodies("/api/generate")
    assert body["raw"] is True and body["prompt"] == PROMPT.completion
    assert replay.bodies("/api/chat") == []


def test_style_from_template_tells_base_from_instruct_models() -> None:
    assert style_from_template("{{ .Prompt }}") is PromptStyle.COMPLETION
    assert style_from_template("  {{.Prompt}}\n") is PromptStyle.COMPLETION
    assert style_from_template("") is PromptStyle.COMPLETION
    assert style_from_template("{{ if .System }}{{ .System }}{{ end }}{{ .Prompt }}") is PromptStyle.CHAT
    assert style_from_template("{{- range .Messages }}{{ .Content }}{{ end }}") is PromptStyle.CHAT


def test_warm_up_of_a_model_not_resident_records_its_load(replay: OllamaReplay) -> None:
    with client(replay, "llama3.2") as llm:
        info = llm.load_info()
    assert info["resident_before"] is False and info["loaded"] is True
    assert info["load_s"] == pytest.approx(CHAT_COUNTERS["load_duration"] / 1e9)
    assert info["loaded_size_mb"] == pytest.approx((2019393189 + LOADED_EXTRA) / 1e6)
    assert info["size_vram_mb"] == 0
    assert info["warmup_s"] > 0 and llm.style is PromptStyle.CHAT


def test_warm_up_of_a_resident_model_stores_no_load(replay: OllamaReplay) -> None:
    # mistral is in /api/ps before the call; the docs' load_duration (1.3 ms) on its reply is no load.
    with client(replay, "mistral") as llm:
        info = llm.load_info()
    assert info["resident_before"] is True and info["loaded"] is False
    assert "load_s" not in info


def test_the_server_is_found_by_its_listening_port_and_never_charged_to_a_side(replay: OllamaReplay) -> None:
    remote = OllamaClient("llama3.2", "http://10.0.0.9:11434")
    assert remote.server_pids() == [] and remote.shared_server_pids() == []
    assert remote.attribution().startswith("not_measurable")
    # The replay listens inside this process: the port leads to it. It has no runner child for the model,
    # so nothing is charged to the model, and the server itself is only ever measured apart.
    with client(replay, "llama3.2") as llm:
        llm.load_info()
        assert llm.shared_server_pids() == [os.getpid()]
        assert llm.server_pids() == []
