"""What a live dashboard costs and how live it is.

1. Latency: a run of N tasks (a scripted model that answers in `--delay` seconds) goes on while Debian's
   chromium shows its live page; the page notes when each result's cell appears, the store says when the
   result was stored; the median of the differences is printed (goal < 2 s).
2. Runner overhead: the time the runner spent writing progress records (its `progress_writes_s`) against the
   run's wall time, with the dashboard open (goal < 1 %).

    python benchmarks/dashboard_bench.py [--tasks 20] [--delay 0.5] [--json]
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
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--delay", type=float, default=0.5, help="seconds the scripted model takes per call")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "bench_delay_plugin.py").write_text(PLUGIN)
        env = {
            **os.environ,
            "SIZEUP_PLUGINS": "bench_delay_plugin",
            "PYTHONPATH": os.pathsep.join(filter(None, [tmp, os.environ.get("PYTHONPATH")])),
        }
        db = Path(tmp, "s.db")
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
        subprocess.run(
            [*CLI, "import", "--jsonl-file", str(tasks), "--db", f"sqlite:///{db}"],
            env=env,
            check=True,
            capture_output=True,
        )
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        dashboard = subprocess.Popen(
            [*CLI, "dashboard", "--db", f"sqlite:///{db}", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            _wait(url)
            run = subprocess.Popen(
                [
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
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
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
                run.wait(timeout=600)
                page.wait_for_function(f"Object.keys(window.__seen).length >= {args.tasks}", timeout=60_000)
                seen = page.evaluate("window.__seen")
                browser.close()
        finally:
            dashboard.kill()
        with sqlite3.connect(db) as conn:
            stored = {
                task: datetime.fromisoformat(json.loads(data)["finished_at"]).timestamp()
                for task, data in conn.execute("select task_id, data from results")
            }
            (config,) = conn.execute("select data from runs").fetchone()
        lags = sorted(seen[task] - stored[task] for task in stored if task in seen)
        record = json.loads(config)
        walls = [json.loads(d)["wall_s"] for (d,) in sqlite3.connect(db).execute("select data from results")]
    progress_s = record["config"].get("progress_writes_s", 0.0)
    summary = {
        "results": len(lags),
        "lag_s_median": statistics.median(lags),
        "lag_s_max": max(lags),
        "progress_writes_s": progress_s,
        "tasks_wall_s": sum(walls),
        "overhead_pct": 100 * progress_s / sum(walls) if sum(walls) else None,
    }
    print(
        f"{len(lags)} results: from stored to shown, median {summary['lag_s_median']:.2f} s, max "
        f"{summary['lag_s_max']:.2f} s; progress writes {progress_s:.3f} s of {sum(walls):.1f} s of tasks "
        f"({summary['overhead_pct']:.2f} %)",
        file=sys.stderr,
    )
    if args.json:
        print(json.dumps(summary))
    return 0


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
