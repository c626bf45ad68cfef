"""The `openai` provider (any OpenAI-compatible server) against a real `python -m llama_cpp.server`."""

from __future__ import annotations

import pytest

from sizeup.models import GenerationParams, ModelError, Prompt, make_client
from sizeup.models.types import COMPLETION_ONLY

PROMPT = Prompt(system="", user="Count from 1 to 50, separated by commas.", completion="1, 2, 3,")


@pytest.fixture(scope="module")
def keyed_server(models_ready):
    from sizeup.models.bundled import gguf_path
    from sizeup.models.embedded import EmbeddedServer

    server = EmbeddedServer(
        gguf_path("smollm2:135m"), "smollm2:135m", n_ctx=512, server="llama_cpp", extra_args=("--api_key", "s3cret-key")
    )
    yield server
    server.stop()


def test_openai_provider_streams_and_says_what_it_could_not_count(keyed_server, monkeypatch):
    monkeypatch.setenv("MY_KEY", "s3cret-key")
    client = make_client(
        "openai", "smollm2:135m", url=f"{keyed_server.url}/v1", api_key_env="MY_KEY", server_pid=keyed_server.proc.pid
    )
    reply = client.generate(PROMPT, GenerationParams(max_tokens=12))
    usage = reply.usage
    # llama-cpp-python's server sends no usage in streams: completion tokens are counted from the chunks,
    # and the prompt's size is flagged unknown rather than reported as zero tokens.
    assert usage.source == COMPLETION_ONLY
    assert usage.completion_tokens == 12 and reply.finish_reason == "length"
    assert 0 < usage.ttft_s < usage.total_s
    assert client.server_pids() == [keyed_server.proc.pid]
    client.close()


def test_a_wrong_key_is_one_clear_line(keyed_server, monkeypatch):
    monkeypatch.setenv("MY_KEY", "wrong")
    client = make_client("openai", "smollm2:135m", url=f"{keyed_server.url}/v1", api_key_env="MY_KEY")
    with pytest.raises(ModelError, match="401") as caught:
        client.generate(PROMPT, GenerationParams(max_tokens=4))
    assert "\n" not in str(caught.value)


def test_openai_provider_needs_a_url():
    with pytest.raises(ModelError, match="--url"):
        make_client("openai", "m")


def test_a_local_server_is_found_by_the_port_it_listens_on(keyed_server):
    client = make_client("openai", "smollm2:135m", url=f"{keyed_server.url}/v1")  # no --server-pid
    assert client.server_pids() == [keyed_server.proc.pid]
    assert client.attribution().startswith("server_process (the process listening on the URL's port")
    remote = make_client("openai", "m", url="http://10.0.0.9:8000/v1")
    assert remote.server_pids() == [] and remote.attribution().startswith("not_measurable")


def test_one_server_serving_two_arms_is_said_to_be_unattributable_in_memory(keyed_server):
    from sizeup.cli.runner import server_attribution
    from sizeup.records import ArmSpec

    arms = [
        ArmSpec(name="large", strategy="single", models=["big"]),
        ArmSpec(name="small", strategy="adaptive", models=["small"]),
    ]
    url = f"{keyed_server.url}/v1"
    shared = {"big": make_client("openai", "big", url=url), "small": make_client("openai", "small", url=url)}
    assert server_attribution(arms, shared).startswith("shared: one server process serves arms large and small")
    remote = {
        "big": make_client("openai", "big", url="http://10.0.0.9:8000/v1"),
        "small": make_client("openai", "small", url="http://10.0.0.9:8000/v1"),
    }
    assert server_attribution(arms, remote).startswith("not_measurable")
