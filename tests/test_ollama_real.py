"""The Ollama provider against a real Ollama 0.17.4 (tests/ollama_server.py): streaming and counters, base and
instruct models, /api/ps, keep_alive, missing models, an offline pull, the server found by its port, loads
told from resident models, and the seed's `--url` command measuring each side by its own runner process.

Every call passes num_thread 1: Ollama's default (one spinning thread per physical core) slows a shared
2-core machine several times over."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from ollama_server import RealOllama, start_ollama, stop_ollama
from sizeup.models.ollama import OllamaClient, list_models
from sizeup.models.types import GenerationParams, ModelError, Prompt, PromptStyle

SIZEUP = [sys.executable, "-m", "sizeup.cli"]
CODE_PROMPT = Prompt(
    system="You are a Python programmer.",
    user="Write a Python function add(a, b).",
    completion='def add(a, b):\n    """Return the sum of a and b."""\n',
    stop=("\ndef ", "\nclass "),
)
SHORT = GenerationParams(max_tokens=24)


def client(server: RealOllama, model: str, **kwargs) -> OllamaClient:
    return OllamaClient(model, server.url, num_thread=kwargs.pop("num_thread", 1), **kwargs)


def cli(*args: str, db: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*SIZEUP, *args, "--db", f"sqlite:///{db}"],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200"},
    )


def test_chat_streams_the_reply_with_the_servers_own_counters(real_ollama: RealOllama) -> None:
    with client(real_ollama, "smollm2:135m") as llm:
        reply = llm.generate(CODE_PROMPT, SHORT)
    usage = reply.usage
    assert reply.text.strip()
    assert usage.source == "server" and usage.prompt_tokens > 10 and 0 < usage.completion_tokens <= 24
    assert usage.eval_s and usage.eval_s > 0 and usage.prompt_eval_s is not None
    assert usage.ttft_s is not None and 0 < usage.ttft_s < usage.total_s
    assert reply.finish_reason in ("stop", "length")


def test_a_base_model_is_prompted_completion_style_and_an_instruct_model_by_chat(real_ollama: RealOllama) -> None:
    # gemma3:270m made from the base GGUF has Ollama's bare `{{ .Prompt }}` template: /api/chat would drop the
    # system message, so it is continued as a document, with the stop sequences, as the embedded server does.
    with client(real_ollama, "gemma3:270m") as base, client(real_ollama, "smollm2:135m") as instruct:
        assert base.style is PromptStyle.COMPLETION
        assert instruct.style is PromptStyle.CHAT
        reply = base.generate(CODE_PROMPT, GenerationParams(max_tokens=64))
    assert "\ndef " not in reply.text  # the server stopped at the stop sequence
    assert reply.usage.completion_tokens > 0


def test_ps_lists_the_loaded_models_with_their_loaded_size(real_ollama: RealOllama) -> None:
    with client(real_ollama, "smollm2:135m") as llm:
        info = llm.load_info()
    models = {model["name"]: model for model in list_models(real_ollama.url)}
    assert models["smollm2:135m"]["loaded"] is True and models["smollm2:135m"]["size_vram"] == 0
    assert models["smollm2:135m"]["size"] == 98363007  # /api/tags: the file
    assert info["loaded_size_mb"] > 150  # /api/ps: weights + KV cache + graph (191 MB seen), not the file's 98
    assert info["size_vram_mb"] == 0


def test_keep_alive_keeps_the_model_loaded_for_half_an_hour(real_ollama: RealOllama) -> None:
    with client(real_ollama, "smollm2:135m") as llm:
        llm.generate(CODE_PROMPT, GenerationParams(max_tokens=4))
    (entry,) = [m for m in httpx.get(f"{real_ollama.url}/api/ps").json()["models"] if m["name"] == "smollm2:135m"]
    expires = datetime.fromisoformat(entry["expires_at"].replace("Z", "+00:00")[:26] + "+00:00")
    assert 25 * 60 < (expires - datetime.now(UTC)).total_seconds() <= 30 * 60 + 5


def test_a_resident_model_is_no_load_and_a_new_thread_count_is_one(real_ollama: RealOllama) -> None:
    with client(real_ollama, "smollm2:135m") as first:
        first.load_info()
        runner = first.server_pids()
    with client(real_ollama, "smollm2:135m") as again:
        info = again.load_info()
        assert again.server_pids() == runner  # the same runner process: nothing was loaded
    assert info["resident_before"] is True and info["loaded"] is False and "load_s" not in info
    assert info["load_detected_by"].startswith("runner pid")
    with client(real_ollama, "smollm2:135m", num_thread=2) as reloaded:
        info = reloaded.load_info()
        assert reloaded.server_pids() != runner  # Ollama restarted the runner for the new num_thread
    assert info["resident_before"] is True and info["loaded"] is True and info["load_s"] > 0


def test_a_missing_model_stops_the_run_with_one_line_and_stores_nothing(
    real_ollama: RealOllama, tmp_path: Path
) -> None:
    db = tmp_path / "s.db"
    done = cli(
        "--task-type",
        "gcd",
        "--large-model",
        "smollm2:135m",
        "--small-model",
        "qwen:0.5b",
        "--url",
        real_ollama.url,
        "--threads",
        "1",
        db=db,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        f"sizeup: model 'qwen:0.5b' is not available on {real_ollama.url}; run `ollama pull qwen:0.5b` or pass --pull"
    )
    with __import__("sqlite3").connect(db) as conn:
        assert conn.execute("select count(*) from results").fetchone()[0] == 0
        (status,) = conn.execute("select json_extract(data, '$.status') from runs").fetchone()
    assert status == "failed"


def test_pull_without_a_registry_is_one_line(real_ollama: RealOllama) -> None:
    with client(real_ollama, "qwen:0.5b", pull=True) as llm, pytest.raises(ModelError) as caught:
        llm.generate(CODE_PROMPT, SHORT)
    message = str(caught.value)
    assert message.startswith(f"could not pull 'qwen:0.5b' on {real_ollama.url}: ")
    assert "registry.ollama.ai" in message and "\n" not in message


def test_the_server_behind_the_url_is_found_by_its_port_not_by_name(real_ollama: RealOllama, tmp_path: Path) -> None:
    decoy = start_ollama(real_ollama.binary, tmp_path)  # a second `ollama serve` on this machine
    try:
        assert client(real_ollama, "smollm2:135m").shared_server_pids() == [real_ollama.pid]
        assert client(decoy, "smollm2:135m").shared_server_pids() == [decoy.pid]
    finally:
        stop_ollama(decoy)


def _blob_name(gguf: Path) -> str:
    digest = hashlib.sha256()
    with open(gguf, "rb") as data:
        for block in iter(lambda: data.read(1 << 20), b""):
            digest.update(block)
    return f"sha256-{digest.hexdigest()}"


class RunnerRss:
    """Each model's runner RSS, read by `ps` (not sizeup's monitor) four times a second while a run serves:
    a runner is told by its `--model` blob, named after the SHA-256 of the GGUF it was created from."""

    def __init__(self, serve_pid: int, blobs: dict[str, str]):
        self.serve_pid, self.blobs = serve_pid, blobs
        self.peak_mb: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self._stop.wait(0.25):
            out = subprocess.run(
                ["ps", "-ww", "--ppid", str(self.serve_pid), "-o", "rss=,args="], capture_output=True, text=True
            ).stdout
            for line in out.splitlines():
                rss_kb, _, args = line.strip().partition(" ")  # -ww: whole command lines, never cut at 80
                for model, blob in self.blobs.items():
                    if blob in args:
                        self.peak_mb[model] = max(self.peak_mb.get(model, 0.0), int(rss_kb) * 1024 / 1e6)

    def __enter__(self) -> RunnerRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def test_the_seed_command_measures_each_side_by_its_own_runner(
    real_ollama: RealOllama, mbpp_path: Path, tmp_path: Path
) -> None:
    from sizeup.models.bundled import gguf_path

    db = tmp_path / "s.db"
    assert cli("--import-data", "--jsonl-file", str(mbpp_path), db=db).returncode == 0
    blobs = {model: _blob_name(gguf_path(model)) for model in ("gemma3:270m", "smollm2:135m")}
    with RunnerRss(real_ollama.pid, blobs) as ps:
        done = cli(
            "--all",
            "--limit",
            "2",
            "--large-model",
            "gemma3:270m",
            "--small-model",
            "smollm2:135m",
            "--max-depth",
            "1",
            "--url",
            real_ollama.url,
            "--threads",
            "1",
            "--max-tokens",
            "96",
            "--json",
            db=db,
        )
    assert done.returncode == 0, done.stderr
    assert "sandbox: isolated (bubblewrap" in done.stderr  # the backend is always said
    run_id = json.loads(done.stdout.strip().splitlines()[-1])["run_id"]
    data = json.loads(cli("compare", run_id, "--json", db=db).stdout)
    large, small = data["sides"]["large"], data["sides"]["small"]
    assert data["tasks"] == 2 and large["model_calls"] == 2 and small["model_calls"] >= 2
    assert data["server_attribution"] == "per_arm"
    # Each side's model peak is its own runner's, within 10 % of what ps read; the ratio is the runners'.
    assert large["model_peak_rss_mb"] == pytest.approx(ps.peak_mb["gemma3:270m"], rel=0.10)
    assert small["model_peak_rss_mb"] == pytest.approx(ps.peak_mb["smollm2:135m"], rel=0.10)
    ratio = large["model_peak_rss_mb"] / small["model_peak_rss_mb"]
    assert ratio == pytest.approx(ps.peak_mb["gemma3:270m"] / ps.peak_mb["smollm2:135m"], rel=0.10)
    assert ratio > 1.5  # both runners in one figure would give 1.00
    assert 0 < large["shared_server_peak_rss_mb"] < large["model_peak_rss_mb"]  # ollama serve, reported apart
    from sizeup.store import open_store

    with open_store(f"sqlite:///{db}") as store:
        results = store.results(run_id)
        run = store.get_run(run_id)
    for result in results:
        assert result.method["model_processes"].startswith("ollama_runner")
        assert result.server.processes == 1  # the runner alone, never `ollama serve` or the other model
        assert result.shared_server is not None and result.shared_server.processes == 1  # serve, apart
        assert result.method["decode_tokens_per_s"] == "server_timings"  # Ollama's eval_duration
    assert run.load["gemma3:270m"]["prompt_style"] == "completion"
    assert run.load["smollm2:135m"]["prompt_style"] == "chat"
    for model in ("gemma3:270m", "smollm2:135m"):
        assert isinstance(run.load[model]["resident_before"], bool)
        assert ("load_s" in run.load[model]) == run.load[model]["loaded"]
    # A second run finds both models resident: no load is recorded for either.
    time.sleep(0.5)
    again = cli(
        "--task-type",
        "gcd",
        "--large-model",
        "gemma3:270m",
        "--small-model",
        "smollm2:135m",
        "--max-depth",
        "0",
        "--url",
        real_ollama.url,
        "--threads",
        "1",
        "--max-tokens",
        "32",
        "--json",
        db=db,
    )
    assert again.returncode == 0, again.stderr
    with open_store(f"sqlite:///{db}") as store:
        second = store.get_run(json.loads(again.stdout.strip().splitlines()[-1])["run_id"])
    for model in ("gemma3:270m", "smollm2:135m"):
        assert second.load[model]["resident_before"] is True and second.load[model]["loaded"] is False
        assert "load_s" not in second.load[model]
