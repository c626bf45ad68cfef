"""`sizeup dashboard` in a real browser: Debian's chromium driven by Playwright (it cannot download its own),
against a dashboard on a random loopback port while a run goes on in another process."""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from requirements import need

TESTS_DIR = Path(__file__).parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CLI = [sys.executable, "-m", "sizeup.cli"]


def _env() -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(TESTS_DIR), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "SIZEUP_PLUGINS": "scripted_plugin", "PYTHONPATH": path}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    need(
        "a browser",
        "SIZEUP_REQUIRE_BROWSER",
        sync_playwright is not None and os.path.exists(CHROMIUM),
        "playwright or Debian's chromium is missing (make test installs both)",
    )
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield chromium
        chromium.close()


def start_dashboard(db: Path, *extra: str) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    proc = subprocess.Popen(
        [*CLI, "dashboard", "--db", f"sqlite:///{db}", "--port", str(port), *extra],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/api/runs", timeout=2).status_code in (200, 401):
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"the dashboard did not start: {proc.stdout.read() if proc.stdout else ''}")


@pytest.fixture(scope="module")
def live_run(tmp_path_factory):
    """A run of 5 tasks on a slow scripted model, going on in another process; the dashboard on its store."""
    tmp = tmp_path_factory.mktemp("dash")
    db = tmp / "s.db"
    tasks = tmp / "tasks.jsonl"
    tasks.write_text(
        "".join(
            json.dumps(
                {
                    "task_id": f"d/{i}",
                    "prompt": "Return x.",
                    "entry_point": "answer_for",
                    "tests": [f"assert answer_for({i}) == {i}"],
                }
            )
            + "\n"
            for i in range(5)
        )
    )
    subprocess.run(
        [*CLI, "import", "--jsonl-file", str(tasks), "--db", f"sqlite:///{db}"],
        check=True,
        env=_env(),
        capture_output=True,
    )
    run = subprocess.Popen(
        [
            *CLI,
            "run",
            "--all",
            "--provider",
            "scripted-plugin",
            "--arm",
            "name=slow strategy=single models=sleeper",
            "--arm",
            "name=evil strategy=single models=evil",
            "--sandbox",
            "process",
            "--db",
            f"sqlite:///{db}",
        ],
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    dashboard, url = start_dashboard(db)
    deadline = time.monotonic() + 60
    run_id = None
    while time.monotonic() < deadline and run_id is None:
        try:
            with sqlite3.connect(db) as conn:
                row = conn.execute("select run_id from runs").fetchone()
                run_id = row[0] if row else None
        except sqlite3.OperationalError:
            pass
        time.sleep(0.2)
    yield {"db": db, "url": url, "run_id": run_id, "run": run}
    run.kill()
    dashboard.kill()


def test_the_live_page_advances_without_reloading(browser, live_run):
    page = browser.new_page()
    page.goto(f"{live_run['url']}/run/{live_run['run_id']}")
    page.wait_for_selector("#task-grid")
    page.evaluate("window.__sameDocument = 'still here'")
    finished = "document.querySelectorAll('#task-grid td.cell:not(.cell-pending):not(.cell-running)').length"
    first = page.evaluate(finished)
    page.wait_for_function(f"{finished} > {first}", timeout=30_000)  # a new result showed up by itself
    assert page.evaluate("window.__sameDocument") == "still here"  # no reload happened
    assert page.locator("#run-status").inner_text() in ("running", "finished")
    page.close()


def test_a_tasks_tree_shows_the_reply_as_text_never_as_markup(browser, live_run):
    db, url, run_id = live_run["db"], live_run["url"], live_run["run_id"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with sqlite3.connect(db) as conn:
            if conn.execute("select count(*) from results where side = 'evil'").fetchone()[0]:
                break
        time.sleep(0.3)
    page = browser.new_page()
    page.goto(f"{url}/run/{run_id}/task/d/0")
    page.wait_for_selector("ul.tree")
    page.locator("details summary").last.click()
    assert "<script>window.__pwned = 1</script>" in page.locator("pre.node-reply").last.inner_text()
    assert page.evaluate("window.__pwned") is None  # neither the <script> nor the onerror ever ran
    assert "kept" in page.locator("ul.tree").last.inner_text()
    page.close()


def test_the_compare_page_shows_what_sizeup_compare_says(browser, live_run):
    run = live_run["run"]
    run.wait(timeout=120)  # the run finished: its numbers no longer move
    url, run_id = live_run["url"], live_run["run_id"]
    expected = json.loads(
        subprocess.run(
            [*CLI, "compare", run_id, "--json", "--db", f"sqlite:///{live_run['db']}"],
            env=_env(),
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert httpx.get(f"{url}/api/runs/{run_id}/compare").json() == json.loads(json.dumps(expected))
    page = browser.new_page()
    page.goto(f"{url}/run/{run_id}/compare")
    page.wait_for_selector("#arms tbody tr")
    for arm in expected["arms"]:
        shown = page.locator(f"#arms tr[data-arm='{arm['name']}'] td.success").inner_text()
        assert shown.startswith(f"{round(100 * arm['success_rate'])} %")
    page.wait_for_selector("#plots img.plot", timeout=60_000)
    page.close()


def test_a_non_loopback_bind_needs_a_token_and_requests_without_it_get_401(tmp_path):
    db = tmp_path / "s.db"
    subprocess.run([*CLI, "tasks", "--db", f"sqlite:///{db}"], env=_env(), capture_output=True)
    refused = subprocess.run(
        [*CLI, "dashboard", "--host", "0.0.0.0", "--db", f"sqlite:///{db}"],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 1 and refused.stderr.strip().count("\n") == 0 and "--token" in refused.stderr
    proc, url = start_dashboard(db, "--token", "s3cret")
    try:
        assert httpx.get(f"{url}/api/runs").status_code == 401
        assert httpx.get(f"{url}/api/runs", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert httpx.get(f"{url}/?token=s3cret").cookies.get("sizeup_token") == "s3cret"
    finally:
        proc.kill()
