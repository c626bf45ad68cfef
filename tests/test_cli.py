"""The command line as a user meets it: the seed's flat flags, subcommands, errors, resume."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sizeup.cli.main import build_flat_parser, main

SIZEUP = [sys.executable, "-m", "sizeup.cli"]


def run_cli(*args: str, db: Path) -> tuple[int, str, str]:
    proc = subprocess.run(
        [*SIZEUP, *args, "--db", f"sqlite:///{db}"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "COLUMNS": "200"},
    )
    return proc.returncode, proc.stdout, proc.stderr


def task_count(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("select count(*) from tasks").fetchone()[0]


def test_seed_import_flags_store_974_then_upsert_keeps_974(mbpp_path, tmp_path):
    db = tmp_path / "s.db"
    assert main(["--import-data", "--jsonl-file", str(mbpp_path), "--db", f"sqlite:///{db}"]) == 0
    assert task_count(db) == 974
    assert main(["--import-data", "--jsonl-file", str(mbpp_path), "--no-clear", "--db", f"sqlite:///{db}"]) == 0
    assert task_count(db) == 974


def test_a_broken_line_names_file_and_line_and_changes_nothing(mbpp_path, tmp_path, capsys):
    db = tmp_path / "s.db"
    main(["import", "--jsonl-file", str(mbpp_path), "--db", f"sqlite:///{db}"])
    lines = mbpp_path.read_text().splitlines()
    lines[499] = lines[499][:-20]  # line 500 is cut short: invalid JSON
    broken = tmp_path / "broken.jsonl"
    broken.write_text("\n".join(lines[:600]) + "\n")
    capsys.readouterr()
    assert main(["--import-data", "--jsonl-file", str(broken), "--db", f"sqlite:///{db}"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"sizeup: {broken}:500:") and "\n" not in err
    assert task_count(db) == 974  # the store was left as it was, not cleared


def test_seed_run_flags_parse_exactly():
    args = build_flat_parser().parse_args(
        [
            "--all",
            "--large-model",
            "X",
            "--small-model",
            "Y",
            "--max-depth",
            "3",
            "--url",
            "http://h:11434",
            "--task",
            "t",
            "--task-type",
            "gcd",
        ]
    )
    assert (args.all, args.large_model, args.small_model, args.max_depth, args.url) == (
        True,
        "X",
        "Y",
        3,
        "http://h:11434",
    )
    assert (args.task, args.task_type) == ("t", "gcd")


def test_tasks_json_has_the_stable_keys(mbpp_path, tmp_path):
    db = tmp_path / "s.db"
    main(["import", "--jsonl-file", str(mbpp_path), "--db", f"sqlite:///{db}"])
    code, out, _ = run_cli("tasks", "--json", "--limit", "3", db=db)
    tasks = json.loads(out)
    assert code == 0 and len(tasks) == 3
    assert {"task_id", "source", "prompt", "tests"} <= set(tasks[0])
    assert tasks[0]["task_id"] == "1" and len(tasks[0]["tests"]) == 3


def test_isolated_without_bubblewrap_is_one_line_and_starts_nothing(tmp_path):
    # bwrap is looked up on PATH: an empty PATH is a machine without it.
    (tmp_path / "empty").mkdir()
    db = tmp_path / "s.db"
    proc = subprocess.run(
        [*SIZEUP, "run", "--task-type", "gcd", "--sandbox", "isolated", "--db", f"sqlite:///{db}"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PATH": str(tmp_path / "empty")},
    )
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        "sizeup: isolated sandbox unavailable: bwrap (bubblewrap) is not installed; use --sandbox process"
    )
    with sqlite3.connect(db) as conn:  # no run was opened, no model server started
        assert conn.execute("select count(*) from runs").fetchone()[0] == 0


def test_a_run_without_isolation_says_so_at_the_start_and_in_the_comparison(models_ready, tmp_path):
    (tmp_path / "empty").mkdir()
    db = tmp_path / "s.db"
    proc = subprocess.run(
        [
            *SIZEUP,
            "run",
            "--task-type",
            "gcd",
            "--max-depth",
            "0",
            "--max-tokens",
            "16",
            "--json",
            "--db",
            f"sqlite:///{db}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PATH": str(tmp_path / "empty"), "COLUMNS": "200"},
    )
    assert proc.returncode == 0, proc.stderr
    first_line = proc.stderr.strip().splitlines()[0]
    assert first_line.startswith("sandbox: process: NOT isolated: candidates run as this user")
    code, out, _ = run_cli("compare", "--json", db=db)
    sandbox = json.loads(out)["sandbox"]
    assert sandbox["backends"] == ["process"] and sandbox["isolated"] is False
    code, terminal, _ = run_cli("compare", db=db)
    assert "Sandbox: process: NOT isolated" in " ".join(terminal.split())


def test_embedded_run_prints_run_id_and_compare_has_every_stable_key(models_ready, tmp_path):
    db = tmp_path / "s.db"
    code, out, err = run_cli("run", "--task-type", "gcd", "--max-depth", "1", "--max-tokens", "48", "--json", db=db)
    assert code == 0, err
    run_id = json.loads(out.strip().splitlines()[-1])["run_id"]
    code, out, _ = run_cli("compare", "--json", db=db)
    data = json.loads(out)
    assert data["run_id"] == run_id and data["tasks"] == 1
    for side in ("large", "small"):
        s = data["sides"][side]
        for key in (
            "model",
            "strategy",
            "success_rate",
            "mean_test_pass_ratio",
            "wall_s_median",
            "wall_s_total",
            "model_peak_rss_mb",
            "model_cpu_s",
            "prompt_tokens",
            "completion_tokens",
            "model_calls",
        ):
            assert key in s, key
        assert s["model_peak_rss_mb"] > 50 and s["model_cpu_s"] > 0 and s["completion_tokens"] > 0
    assert set(data["efficiency"]) >= {"time_pct_faster", "memory_pct_less", "success_rate_diff"}
    assert set(data["branching"]) >= {"mean_depth", "max_depth", "model_instances"}
    from sizeup.store import open_store

    with open_store(f"sqlite:///{db}") as store:
        results = store.results(run_id)
        run = store.get_run(run_id)
    for result in results:  # every figure says how it was measured
        assert result.decode_tokens_per_s and result.decode_tokens_per_s > 0  # a rate, not a speed goal: load varies
        assert result.method["completion_tokens"] == "server"  # the embedded server counts llama.cpp's tokens
        assert result.method["decode_tokens_per_s"] == "client_stream (total - ttft)"  # it sends no timings
        assert result.method["model_cpu_s"] == "kernel" and "sandbox_peak_rss_mb" in result.method
        assert result.ttft_s and result.ttft_s > 0 and result.sandbox_executions == len(result.attempts)
        assert result.method["sandbox_backend"] == run.config["sandbox_backend"] == "isolated"
        assert result.method["model_processes"].startswith("embedded_server")
    assert run.load["gemma3:270m"]["load_s"] > 0 and run.load["smollm2:135m"]["rss_after_load_mb"] > 50
    assert "one request at a time" in run.config["server_concurrency"]
    assert run.config["server_attribution"] == "per_arm"
    assert data["sandbox"] == {
        "backends": ["isolated"],
        "isolated": True,
        "note": "isolated (bubblewrap namespaces, no network, read-only system, a uid of its own)",
    }


def _results(db: Path) -> list[tuple[str, str]]:
    try:
        with sqlite3.connect(db) as conn:
            return conn.execute("select task_id, side from results").fetchall()
    except sqlite3.OperationalError:  # the run has created the file but not its tables yet
        return []


def test_killed_run_resumes_without_duplicates(models_ready, tmp_path):
    db = tmp_path / "s.db"
    cmd = [
        *SIZEUP,
        "run",
        "--task-type",
        "prime,gcd,sort",
        "--max-depth",
        "0",
        "--max-tokens",
        "32",
        "--db",
        f"sqlite:///{db}",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and len(_results(db)) < 2:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the run and its model servers die mid-run
    proc.wait()
    before = _results(db)
    assert 2 <= len(before) < 6
    with sqlite3.connect(db) as conn:
        (run_id,) = conn.execute("select run_id from runs").fetchone()
    code, _, err = run_cli("run", "--resume", run_id, db=db)
    assert code == 0, err
    after = _results(db)
    assert len(after) == len(set(after)) == 6
    assert set(before) <= set(after)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["run", "--all"], "no tasks selected"),
        (["run", "--task-type", "nosuch"], "nosuch"),
        (["compare"], "no runs"),
        (["run", "--all", "--provider", "nope"], "unknown provider 'nope'"),
        (["--all", "--workers", "0"], "--workers 0: at least 1"),
    ],
)
def test_user_errors_are_one_line_and_non_zero(tmp_path, capsys, argv, message):
    db = tmp_path / "e.db"
    assert main([*argv, "--db", f"sqlite:///{db}"]) == 1
    err = capsys.readouterr().err.strip()
    assert message in err and err.count("\n") == 0
    if db.exists():  # nothing half-written: no run record of a run that never started
        with sqlite3.connect(db) as conn:
            assert conn.execute("select count(*) from runs").fetchone() == (0,)


def test_measure_prints_kernel_figures_and_passes_the_exit_code(tmp_path):
    code = "b = bytearray(100 * 1024 * 1024); import sys; sys.exit(3)"
    proc = subprocess.run(
        [*SIZEUP, "measure", "--json", "--", sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    data = json.loads(proc.stdout)
    assert proc.returncode == 3 and data["exit_code"] == 3
    assert 100 < data["peak_rss_mb"] < 140 and data["method"]["peak_rss_mb"] == "kernel"
    assert data["wall_s"] > 0 and data["cpu_s"] > 0


def test_a_cpu_budget_with_workers_on_a_shared_server_is_one_line_and_starts_nothing(tmp_path, capsys):
    db = tmp_path / "s.db"
    argv = ["run", "--task-type", "gcd", "--provider", "ollama", "--workers", "2", "--budget-cpu", "5"]
    assert main([*argv, "--db", f"sqlite:///{db}"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("sizeup: arm ") and "a CPU budget cannot be enforced with --workers 2" in err
    assert "\n" not in err
    with sqlite3.connect(db) as conn:  # no run was opened, no worker or server started
        assert conn.execute("select count(*) from runs").fetchone()[0] == 0


def test_a_harness_error_with_hidden_tests_counts_them_in_both_totals():
    """The kept answer could not be run: the verdict still covers visible + hidden tests, none of them passed,
    and tests_total counts the hidden ones as hidden_total does (not the visible tests alone)."""
    from sizeup.cli.runner import judge_held_out
    from sizeup.records import Attempt
    from sizeup.tasks import Task
    from sizeup.verdicts import Status

    task = Task(
        task_id="h/1",
        source="test",
        prompt="p",
        tests=["assert f(1) == 1", "assert f(2) == 2"],
        hidden_tests=["assert f(3) == 3", "assert f(4) == 4", "assert f(5) == 5"],
    )
    best = Attempt(attempt_id="0", status=Status.HARNESS_ERROR, tests_passed=0, tests_total=2)
    held = judge_held_out(task, best, sandbox=None, limits=None)  # type: ignore[arg-type]  # nothing is run
    assert held.status == Status.HARNESS_ERROR
    assert (held.tests_passed, held.tests_total, held.hidden_passed, held.hidden_total) == (0, 5, 0, 3)
    assert held.tests_total - held.hidden_total == len(task.tests)
