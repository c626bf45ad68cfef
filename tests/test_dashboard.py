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
import threading
import time
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

import sizeup.analysis
from requirements import need
from sizeup.dashboard import create_app
from sizeup.dashboard.app import estimated_times_left
from sizeup.records import ArmSpec, RunRecord, TaskResult
from sizeup.store import open_store

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
    # The task in flight stays on the page while its task runs (3 s a task: three polls), not for one poll.
    # Sampled every 250 ms for 4 s, while the run is running.
    shown = page.evaluate("""() => new Promise((done) => {
        const seen = []; const timer = setInterval(() => {
            if (document.getElementById('run-status').textContent === 'running')
                seen.push(document.getElementById('in-flight').textContent !== '');
            if (seen.length >= 16) { clearInterval(timer); done(seen); } }, 250); })""")
    assert sum(shown) >= 0.75 * len(shown), f"the task in flight was shown in only {sum(shown)} of {len(shown)} looks"
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


def test_a_token_less_dashboard_refuses_foreign_host_names_and_bad_since(tmp_path):
    """DNS rebinding: a page of evil.example whose name now resolves to 127.0.0.1 sends Host: evil.example."""
    db = tmp_path / "s.db"
    subprocess.run([*CLI, "tasks", "--db", f"sqlite:///{db}"], env=_env(), capture_output=True)
    with open_store(f"sqlite:///{db}") as store:
        store.save_run(
            RunRecord(run_id="r1", task_ids=["t0"], arms=[ArmSpec(name="a", strategy="single", models=["m"])])
        )
    proc, url = start_dashboard(db)
    try:
        port = url.rsplit(":", 1)[1]
        for host in ("evil.example", f"evil.example:{port}", "127.0.0.1.evil.example", "localhost.evil.example"):
            answer = httpx.get(f"{url}/api/runs", headers={"Host": host})
            assert answer.status_code == 400, host
            assert "r1" not in answer.text
        assert httpx.get(f"{url}/", headers={"Host": "evil.example"}).status_code == 400
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost"):
            assert httpx.get(f"{url}/api/runs", headers={"Host": host}).status_code == 200, host
        for since in ("abc", "-1", "1.5", "9" * 40, "\u0661"):
            answer = httpx.get(f"{url}/api/runs/r1", params={"since": since})
            assert answer.status_code == 400 and "since" in answer.json()["error"], since
        assert httpx.get(f"{url}/api/runs/r1", params={"since": "0"}).status_code == 200
    finally:
        proc.kill()


# -- the JSON API in-process (Starlette's TestClient; no browser) --------------------------------------------

ARMS = [ArmSpec(name="big", strategy="single", models=["L"]), ArmSpec(name="small", strategy="single", models=["S"])]


def _result(task_id: str, arm: str, wall_s: float) -> TaskResult:
    return TaskResult(
        run_id="r1", task_id=task_id, arm=arm, model="m", strategy="single", status="passed", wall_s=wall_s
    )


@pytest.fixture
def api(tmp_path):
    """A store with a running run of 4 tasks and two arms, and a client of a dashboard on it."""
    url = f"sqlite:///{tmp_path / 's.db'}"
    store = open_store(url)
    store.save_run(RunRecord(run_id="r1", task_ids=[f"t{i}" for i in range(4)], arms=ARMS))
    with TestClient(create_app(url), base_url="http://127.0.0.1") as client:
        yield store, client
    store.close()


def test_the_task_in_flight_stays_after_the_poll_that_first_saw_it(api):
    store, client = api
    store.save_progress("r1", {"kind": "start", "task_id": "t0", "arm": "big"})
    first = client.get("/api/runs/r1").json()
    assert first["in_flight"]["task_id"] == "t0" and first["in_flight"]["arm"] == "big"
    for cpu in (10.0, 20.0, 30.0):  # the poller moves `since` past the start record, a sample at a time
        store.save_progress("r1", {"kind": "sample", "task_id": "t0", "arm": "big", "cpu_pct": cpu, "rss_mb": 1})
        data = client.get("/api/runs/r1", params={"since": first["last_seq"], "version": first["version"]}).json()
        assert [s["cpu_pct"] for s in data["samples"]] == [cpu]
        flight = data["in_flight"]
        assert flight is not None and (flight["task_id"], flight["arm"]) == ("t0", "big")
        first["last_seq"] = data["last_seq"]
    store.save_result(_result("t0", "big", 5.0))  # that task ended; the next arm's turn starts
    store.save_progress("r1", {"kind": "start", "task_id": "t0", "arm": "small"})
    data = client.get("/api/runs/r1", params={"since": first["last_seq"], "version": first["version"]}).json()
    assert (data["in_flight"]["task_id"], data["in_flight"]["arm"]) == ("t0", "small")
    store.save_result(_result("t0", "small", 1.0))
    data = client.get("/api/runs/r1", params={"since": data["last_seq"], "version": data["version"]}).json()
    assert data["in_flight"] is None  # both started tasks are stored: nothing runs


def test_polls_read_the_results_only_when_a_result_was_stored(api, monkeypatch):
    store, client = api
    store.save_result(_result("t0", "big", 5.0))
    reads = []  # the dashboard's own store is another SQLiteStore: patched through the class
    real = type(store).results
    monkeypatch.setattr(type(store), "results", lambda self, *a, **k: reads.append(a) or real(self, *a, **k))
    first = client.get("/api/runs/r1").json()
    assert not first["unchanged"] and len(first["cells"]) == 1 and len(reads) == 1
    since, version = first["last_seq"], first["version"]
    for i in range(3):  # a sample a second: new progress, no new result
        store.save_progress("r1", {"kind": "sample", "task_id": "t1", "arm": "big", "cpu_pct": i, "rss_mb": 1})
        data = client.get("/api/runs/r1", params={"since": since, "version": version}).json()
        assert data["unchanged"] and "cells" not in data and len(data["samples"]) == 1
        since, version = data["last_seq"], data["version"]
    assert len(reads) == 1, "a poll with only new samples re-read every result"
    store.save_result(_result("t1", "big", 5.0))
    data = client.get("/api/runs/r1", params={"since": since, "version": version}).json()
    assert not data["unchanged"] and {c["task_id"] for c in data["cells"]} == {"t0", "t1"} and len(reads) == 2


def test_an_arms_eta_counts_the_other_arms_turns():
    """4 tasks, arms big (10 s a task) and small (2 s) taking turns; task t0 done by both. big's last task
    ends after big, small, big, small, big: 34 s; small's after one more turn: 36 s (its own term alone
    would say 6 s)."""
    run = RunRecord(run_id="r1", task_ids=[f"t{i}" for i in range(4)], arms=ARMS)
    done = [_result("t0", "big", 10.0), _result("t0", "small", 2.0)]
    assert estimated_times_left(run, done) == {"big": 34.0, "small": 36.0}
    # small has not finished a task yet: big's last turn comes after small's turns, so no estimate yet.
    assert estimated_times_left(run, done[:1]) == {"big": None, "small": None}
    # big is through; small has its last three tasks left.
    done += [_result(t, "big", 10.0) for t in ("t1", "t2", "t3")]
    assert estimated_times_left(run, done) == {"big": 0.0, "small": 6.0}
    # Several workers share the tasks.
    run.config["concurrency"] = 2
    assert estimated_times_left(run, done[:2]) == {"big": 17.0, "small": 18.0}


def test_the_eta_shown_is_the_estimate_and_the_page_says_how(api):
    store, client = api
    store.save_result(_result("t0", "big", 10.0))
    store.save_result(_result("t0", "small", 2.0))
    arms = client.get("/api/runs/r1").json()["arms"]
    assert (arms["big"]["eta_s"], arms["small"]["eta_s"]) == (34.0, 36.0)
    script = client.get("/static/app.js").text
    assert "ETA: the arms take turns on each task" in script


def test_a_slow_compare_does_not_stall_polling(api, monkeypatch):
    """The compare's bootstrap runs in a worker thread: polls go on meanwhile."""
    store, client = api
    store.save_result(_result("t0", "big", 10.0))
    real = sizeup.analysis.compare

    def slow_compare(*args, **kwargs):
        time.sleep(3.0)
        return real(*args, **kwargs)

    monkeypatch.setattr(sizeup.analysis, "compare", slow_compare)
    answer = {}
    compare = threading.Thread(target=lambda: answer.setdefault("r", client.get("/api/runs/r1/compare")))
    compare.start()
    time.sleep(0.5)  # the compare is sleeping now
    started = time.monotonic()
    assert client.get("/api/runs/r1").status_code == 200
    polled = time.monotonic() - started
    compare.join()
    assert answer["r"].status_code == 200
    assert polled < 2.0, f"a poll waited {polled:.1f} s for a compare"


def test_a_token_less_app_answers_only_loopback_hosts(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    open_store(url).close()
    for base, code in [
        ("http://127.0.0.1", 200),
        ("http://localhost:8765", 200),
        ("http://[::1]:8765", 200),
        ("http://evil.example", 400),
        ("http://10.0.0.7", 400),
        ("http://testserver", 400),
    ]:
        with TestClient(create_app(url), base_url=base) as client:
            assert client.get("/api/runs").status_code == code, base
    with TestClient(create_app(url, host="10.0.0.7"), base_url="http://10.0.0.7") as client:
        assert client.get("/api/runs").status_code == 200  # the address it was bound to
    with TestClient(create_app(url, token="t0k"), base_url="http://dash.example") as client:  # remote, with a token
        assert client.get("/api/runs").status_code == 401
        assert client.get("/api/runs", headers={"Authorization": "Bearer t0k"}).status_code == 200
