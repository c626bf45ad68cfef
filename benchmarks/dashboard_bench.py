"""What a live dashboard costs and how live it is. The same run (N tasks, a scripted model that answers in
`--delay` seconds) is made in pairs in one invocation, each run on a fresh store: once with nobody watching
("closed"), once with the dashboard serving Debian's chromium its live page ("open").

1. Latency (open run): the page notes when each result's cell appears, the stored result says when it was
   finished (its finished_at, set just before the store write, so the write is inside the figure); the median
   and max of the differences are printed (goal < 2 s).
2. Runner overhead:
   - the run's wall time (its started_at to its last result's finished_at, from the store) with the
     dashboard open against closed: (open - closed) / closed, from the medians of --rounds pairs of runs
     (alternated: closed first, then open first). One pair is noisy at the 1 % level;
   - the runner's own extra writes (the progress records every run makes, open or closed: its
     `progress_writes_s`) against that run's wall time (goal < 1 %). A run that did not record the figure
     is reported as missing, never as 0 %.

The defaults (10 tasks, 2 rounds) give the latency over 20 results and the overhead on the same 10 tasks.

    python benchmarks/dashboard_bench.py [--tasks 10] [--delay 0.5] [--rounds 2] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

TESTS = Path(__file__).resolve().parents[1] / "tests"
CLI = [sys.executable, "-m", "sizeup.cli"]
PLUGIN = """
import time
from sizeup.models import register_provider
from sizeup.models.types import Completion, ModelClient, PromptStyle, Usage

class Timed(ModelClient):
    provider = "bench-delay"
    def __init__(self, model):
        self.model, self.style = model, PromptStyle.CHAT
    def generate(self, prompt, params=None):
        if prompt.user != "Hi":
            time.sleep(float(self.model))
        return Completion("```python\\ndef answer_for(x):\\n    return x\\n```", Usage(5, 7, total_s=0.01), "stop")

register_provider("bench-delay")(lambda model, settings: Timed(model))
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=10)
    parser.add_argument("--delay", type=float, default=0.5, help="seconds the scripted model takes per call")
    parser.add_argument("--rounds", type=int, default=2, help="pairs of runs (closed, open), alternated")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "bench_delay_plugin.py").write_text(PLUGIN)
        env = {
            **os.environ,
            "SIZEUP_PLUGINS": "bench_delay_plugin",
            "PYTHONPATH": os.pathsep.join(filter(None, [tmp, os.environ.get("PYTHONPATH")])),
        }
        tasks = Path(tmp, "tasks.jsonl")
        tasks.write_text(
            "".join(
                json.dumps(
                    {
                        "task_id": f"b/{i:03d}",
                        "prompt": "x",
                        "entry_point": "answer_for",
                        "tests": [f"assert answer_for({i}) == {i}"],
                    }
                )
                + "\n"
                for i in range(args.tasks)
            )
        )
        runs: dict[str, list[dict[str, Any]]] = {"closed": [], "open": []}
        for round_ in range(args.rounds):
            # Alternate which goes first, so that a machine warming up (or a neighbour's load) does not
            # always favour the same side.
            order = ("closed", "open") if round_ % 2 == 0 else ("open", "closed")
            for side in order:
                db = Path(tmp, f"{side}-{round_}.db")
                runs[side].append(one_run(db, tasks, env, args, dashboard=side == "open"))
    summary = summarize(runs, args.tasks)
    print(describe(summary), file=sys.stderr)
    if args.json:
        print(json.dumps(summary))
    return 0


def one_run(db: Path, tasks: Path, env: dict[str, str], args: argparse.Namespace, dashboard: bool) -> dict[str, Any]:
    """One run of the tasks on a fresh store, with or without the dashboard's live page polling it."""
    subprocess.run(
        [*CLI, "import", "--jsonl-file", str(tasks), "--db", f"sqlite:///{db}"],
        env=env,
        check=True,
        capture_output=True,
    )
    command = [
        *CLI,
        "run",
        "--all",
        "--provider",
        "bench-delay",
        "--arm",
        f"name=timed strategy=single models={args.delay}",
        "--sandbox",
        "process",
        "--db",
        f"sqlite:///{db}",
    ]
    seen: dict[str, float] = {}
    if not dashboard:
        subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    else:
        from playwright.sync_api import sync_playwright

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        server = subprocess.Popen(
            [*CLI, "dashboard", "--db", f"sqlite:///{db}", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            _wait(url)
            run = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            run_id = _run_id(db)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path="/usr/bin/chromium",
                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"],
                )
                page = browser.new_page()
                page.goto(f"{url}/run/{run_id}")
                page.wait_for_selector("#task-grid")
                page.evaluate("""() => { window.__seen = {}; const note = () => {
                    for (const td of document.querySelectorAll('#task-grid td.cell-passed')) {
                        const task = td.parentElement.firstChild.textContent;
                        if (!(task in window.__seen)) window.__seen[task] = Date.now() / 1000; } };
                    new MutationObserver(note).observe(document.getElementById('grid'), {childList: true,
                    subtree: true}); note(); }""")
                if run.wait(timeout=600) != 0:
                    raise RuntimeError(f"the run failed (exit {run.returncode})")
                page.wait_for_function(f"Object.keys(window.__seen).length >= {args.tasks}", timeout=60_000)
                seen = page.evaluate("window.__seen")
                browser.close()
        finally:
            server.kill()
    with sqlite3.connect(db) as conn:
        finished = {
            task: datetime.fromisoformat(json.loads(data)["finished_at"]).timestamp()
            for task, data in conn.execute("select task_id, data from results")
        }
        (config,) = conn.execute("select data from runs").fetchone()
    record = json.loads(config)
    if len(finished) != args.tasks:
        raise RuntimeError(f"the run stored {len(finished)} results of {args.tasks}")
    started = datetime.fromisoformat(record["started_at"]).timestamp()
    return {
        "run_wall_s": max(finished.values()) - started,
        "progress_writes_s": record["config"].get("progress_writes_s"),  # None: not recorded
        "lags_s": sorted(seen[task] - finished[task] for task in finished if task in seen),
    }


def summarize(runs: dict[str, list[dict[str, Any]]], tasks: int) -> dict[str, Any]:
    """The figures, from the runs' own numbers; a figure that is missing stays None."""
    lags = sorted(lag for run in runs["open"] for lag in run["lags_s"])
    walls = {side: statistics.median(run["run_wall_s"] for run in runs[side]) for side in runs}
    writes = [run["progress_writes_s"] for side in runs for run in runs[side]]
    shares = [
        100 * run["progress_writes_s"] / run["run_wall_s"]
        for side in runs
        for run in runs[side]
        if run["progress_writes_s"] is not None and run["run_wall_s"] > 0
    ]
    return {
        "tasks": tasks,
        "rounds": len(runs["open"]),
        "results_seen": len(lags),
        "lag_s_median": statistics.median(lags) if lags else None,
        "lag_s_max": max(lags) if lags else None,
        "run_wall_s_closed": walls["closed"],
        "run_wall_s_open": walls["open"],
        "open_vs_closed_pct": 100 * (walls["open"] - walls["closed"]) / walls["closed"] if walls["closed"] else None,
        "progress_writes_s": writes,
        # Every run's share, or None when any run lacks the figure: a partial max would understate it.
        "progress_writes_pct_max": max(shares) if shares and len(shares) == len(writes) else None,
        "progress_writes_missing": sum(w is None for w in writes),
    }


def describe(summary: dict[str, Any]) -> str:
    def figure(value: float | None, fmt: str) -> str:
        return "missing" if value is None else format(value, fmt)

    writes = summary["progress_writes_s"]
    missing = summary["progress_writes_missing"]
    return (
        f"{summary['tasks']} tasks, {summary['rounds']} pair(s) of runs. Dashboard open: {summary['results_seen']} "
        f"results seen, from finished (then stored) to shown median {figure(summary['lag_s_median'], '.2f')} s, max "
        f"{figure(summary['lag_s_max'], '.2f')} s. Run wall time closed {summary['run_wall_s_closed']:.2f} s, "
        f"open {summary['run_wall_s_open']:.2f} s: open costs {figure(summary['open_vs_closed_pct'], '+.2f')} %. "
        f"Progress writes {', '.join('missing' if w is None else f'{w:.4f} s' for w in writes)}"
        + (f" ({missing} run(s) did not record it)" if missing else "")
        + f": at most {figure(summary['progress_writes_pct_max'], '.3f')} % of a run's wall time"
    )


def _wait(url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/api/runs", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError("the dashboard did not start")


def _run_id(db: Path) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with sqlite3.connect(db) as conn:
                row = conn.execute("select run_id from runs").fetchone()
            if row:
                return str(row[0])
        except sqlite3.OperationalError:
            pass
        time.sleep(0.1)
    raise RuntimeError("no run appeared")


if __name__ == "__main__":
    sys.exit(main())
