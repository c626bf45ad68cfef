"""The SQLite store against real files: round trips, atomicity, idempotence, URLs, crashes, threads."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import sizeup
from sizeup.records import Attempt, Measured, ResourceSummary, RunRecord, Side, TaskResult
from sizeup.store import SQLiteStore, StoreError, open_store
from sizeup.tasks.types import Task, TaskFormatError

SRC_DIR = Path(sizeup.__file__).resolve().parents[1]


def make_task(i: int, source: str = "mbpp", tag: str = "") -> Task:
    return Task(task_id=f"{source}/{i}", source=source, prompt=f"Write f{i}{tag}", entry_point=f"f{i}",
                tests=[f"assert f{i}(1) == {i}", f"assert f{i}(2) == {2 * i}"], setup_code="import math",
                challenge_tests=[f"assert f{i}(0) == 0"], reference=f"def f{i}(x): return x * {i}",
                stub=f"def f{i}(x):\n    '''times {i}'''\n")


def make_attempt(attempt_id: str, tag: str = "") -> Attempt:
    parent = attempt_id.rpartition(".")[0] or None
    return Attempt(attempt_id=attempt_id, parent_id=parent, depth=attempt_id.count("."), seed=7,
                   prompt=f"p{tag}", response=f"```python\nx = 1{tag}\n```", code=f"x = 1{tag}",
                   prompt_tokens=11, completion_tokens=22, ttft_s=0.25, gen_s=1.5, finish_reason="stop",
                   status="failed", tests_passed=1, tests_total=3, feedback="AssertionError", exec_wall_s=0.3,
                   exec_cpu_s=0.2, exec_peak_rss_mb=12.5, error=f"e{tag}")


def make_result(run_id: str, task_id: str, side: Side = Side.SMALL,
                attempt_ids: tuple[str, ...] = ("0", "1", "0.0"), tag: str = "") -> TaskResult:
    server = ResourceSummary(wall_s=3.0, cpu_s=2.5, peak_rss_mb=900.0, mean_cpu_pct=80.0, peak_cpu_pct=390.0,
                             processes=2, samples=30,
                             method={"cpu_s": Measured.KERNEL, "peak_rss_mb": Measured.SAMPLED})
    return TaskResult(run_id=run_id, task_id=task_id, side=side, model=f"qwen-0.5b{tag}", strategy="ab-mcts",
                      status="passed", tests_passed=3, tests_total=3, best_attempt_id=attempt_ids[-1],
                      depth_reached=1, model_calls=len(attempt_ids), wall_s=4.0, prompt_tokens=33,
                      completion_tokens=66, ttft_s=0.2, gen_s=3.1, server=server, sandbox_executions=3,
                      sandbox_cpu_s=0.6, sandbox_peak_rss_mb=14.0, sandbox_wall_s=0.9,
                      attempts=[make_attempt(a, tag) for a in attempt_ids],
                      finished_at="2024-05-01T12:00:00+00:00")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    with SQLiteStore(tmp_path / "s.db") as opened:
        yield opened


# -- tasks -------------------------------------------------------------------------------------------
def test_tasks_round_trip_in_import_order(store: SQLiteStore) -> None:
    tasks = [make_task(i) for i in (5, 1, 3)] + [Task(task_id="bare", source="builtin", prompt="p")]
    assert store.import_tasks(tasks) == 4
    assert store.list_tasks() == tasks
    assert store.count_tasks() == 4


def test_list_tasks_filters(store: SQLiteStore) -> None:
    store.import_tasks([make_task(i) for i in range(5)] + [make_task(i, "humaneval") for i in range(3)])

    def ids(**filters: Any) -> list[str]:
        return [t.task_id for t in store.list_tasks(**filters)]

    assert ids(task_ids=["mbpp/4", "mbpp/1", "nope"]) == ["mbpp/1", "mbpp/4"]  # import order, not asked order
    assert ids(source="humaneval") == [f"humaneval/{i}" for i in range(3)]
    assert ids(limit=2) == ["mbpp/0", "mbpp/1"]
    assert ids(source="mbpp", task_ids=["humaneval/0", "mbpp/2"]) == ["mbpp/2"]
    assert store.list_tasks(task_ids=[]) == []
    assert store.list_tasks(limit=0) == []


def _tasks_then_failure(tasks: list[Task]) -> Iterator[Task]:
    yield from tasks
    raise TaskFormatError("bad.jsonl", 4, "tests", "expected a list")


@pytest.mark.parametrize("clear", [True, False])
def test_import_is_atomic_when_the_loader_fails(store: SQLiteStore, clear: bool) -> None:
    before = [make_task(i) for i in range(5)]
    store.import_tasks(before)
    incoming = [make_task(0, tag=" changed"), make_task(10), make_task(11)]  # an update and two new
    with pytest.raises(TaskFormatError, match="bad.jsonl:4"):
        store.import_tasks(_tasks_then_failure(incoming), clear=clear)
    assert store.list_tasks() == before
    # The connection is not left inside a transaction: the next import works and commits.
    assert store.import_tasks([make_task(20)], clear=False) == 1
    assert store.count_tasks() == 6


def test_clear_replaces_and_upsert_merges(store: SQLiteStore) -> None:
    first = [make_task(i) for i in range(974)]
    assert store.import_tasks(first) == 974
    assert store.import_tasks(first, clear=False) == 974
    assert store.count_tasks() == 974
    # Upsert: changed content, original place in the order; new tasks go to the end.
    assert store.import_tasks([make_task(2, tag=" v2"), make_task(2000)], clear=False) == 2
    listed = store.list_tasks()
    assert len(listed) == 975
    assert listed[2].prompt == "Write f2 v2" and listed[-1].task_id == "mbpp/2000"
    other = [make_task(i, source="humaneval") for i in range(164)]
    assert store.import_tasks(other, clear=True) == 164
    assert store.list_tasks() == other


def test_task_iterable_may_read_the_store(store: SQLiteStore) -> None:
    store.import_tasks([make_task(1)])

    def derived() -> Iterator[Task]:  # e.g. a loader that skips ids already present
        yield make_task(2)
        yield make_task(3, tag=f" after {store.count_tasks()}")

    assert store.import_tasks(derived(), clear=False) == 2
    assert store.list_tasks()[-1].prompt == "Write f3 after 2"


def test_duplicate_ids_in_one_import_last_wins(store: SQLiteStore) -> None:
    tasks = [make_task(1), make_task(2), make_task(1, tag=" again")]
    assert store.import_tasks(tasks) == 2
    assert [(t.task_id, t.prompt) for t in store.list_tasks()] == [("mbpp/1", "Write f1 again"),
                                                                    ("mbpp/2", "Write f2")]


# -- runs --------------------------------------------------------------------------------------------
def test_runs_round_trip_replace_and_newest_first(store: SQLiteStore) -> None:
    old = RunRecord(run_id="r1", started_at="2024-01-01T00:00:00+00:00", config={"large": {"model": "q7b"}},
                    environment={"cpu": "x", "cores": 16}, task_ids=["a", "b"],
                    load={"large": {"wall_s": 9.5}})
    new = RunRecord(run_id="r2", started_at="2024-02-01T00:00:00+00:00")
    store.save_run(old)
    store.save_run(new)
    assert store.get_run("r1") == old
    assert store.get_run("missing") is None
    assert [r.run_id for r in store.list_runs()] == ["r2", "r1"]
    finished = old.model_copy(update={"status": "finished"})
    store.save_run(finished)
    assert store.get_run("r1") == finished
    assert len(store.list_runs()) == 2


# -- results -----------------------------------------------------------------------------------------
def test_result_round_trip_with_attempts_in_tree_order(store: SQLiteStore) -> None:
    result = make_result("r", "t1", attempt_ids=("0.10", "1", "0", "0.2", "0.2.0"))
    store.save_result(result)
    (back,) = store.results("r")
    assert [a.attempt_id for a in back.attempts] == ["0", "1", "0.2", "0.10", "0.2.0"]
    by_id = {a.attempt_id: a for a in result.attempts}
    assert all(a == by_id[a.attempt_id] for a in back.attempts)
    assert back.model_copy(update={"attempts": result.attempts}) == result
    assert back.server.method == {"cpu_s": Measured.KERNEL, "peak_rss_mb": Measured.SAMPLED}


def test_results_keep_save_order_and_filter_by_side(store: SQLiteStore) -> None:
    for task_id in ("c", "a", "b"):
        store.save_result(make_result("r", task_id, Side.LARGE, attempt_ids=("0",)))
        store.save_result(make_result("r", task_id, Side.SMALL))
    store.save_result(make_result("other-run", "a"))
    assert [(r.task_id, r.side) for r in store.results("r")] == [
        ("c", Side.LARGE), ("c", Side.SMALL), ("a", Side.LARGE), ("a", Side.SMALL),
        ("b", Side.LARGE), ("b", Side.SMALL)]
    large = store.results("r", Side.LARGE)
    assert [r.task_id for r in large] == ["c", "a", "b"]
    assert all(len(r.attempts) == 1 for r in large)
    assert store.results("nobody") == []


def test_save_result_is_idempotent(store: SQLiteStore) -> None:
    store.save_result(make_result("r", "t", attempt_ids=("0", "0.0", "0.1", "1"), tag="first"))
    store.save_result(make_result("r", "t2"))
    second = make_result("r", "t", attempt_ids=("0", "2"), tag="second")
    store.save_result(second)
    results = store.results("r")
    assert [r.task_id for r in results] == ["t", "t2"]  # a replaced result keeps its place
    assert results[0] == second
    rows = sqlite3.connect(store.path).execute("SELECT COUNT(*) FROM attempts WHERE task_id = 't'").fetchone()
    assert rows == (2,)


def test_failed_save_leaves_previous_result(store: SQLiteStore) -> None:
    good = make_result("r", "t")
    store.save_result(good)
    with pytest.raises(StoreError, match="save result"):
        store.save_result(make_result("r", "t", attempt_ids=("0", "0"), tag="dup"))  # duplicate attempt id
    assert store.results("r") == [good]


def test_finished(store: SQLiteStore) -> None:
    store.save_result(make_result("r", "a", Side.LARGE))
    store.save_result(make_result("r", "a", Side.SMALL))
    store.save_result(make_result("r", "b", Side.SMALL))
    store.save_result(make_result("r", "b", Side.SMALL))
    store.save_result(make_result("r2", "c", Side.SMALL))
    assert store.finished("r") == {("a", Side.LARGE), ("a", Side.SMALL), ("b", Side.SMALL)}
    assert store.finished("none") == set()


# -- opening -----------------------------------------------------------------------------------------
def test_relative_url_and_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SIZEUP_DB", raising=False)
    with open_store("sqlite:///sub/dir/rel.db") as s:
        assert isinstance(s, SQLiteStore) and s.url == "sqlite:///sub/dir/rel.db"
    assert (tmp_path / "sub/dir/rel.db").is_file()
    with open_store() as s:
        s.import_tasks([make_task(1)])
    assert (tmp_path / "sizeup.db").is_file()


def test_absolute_env_and_bare_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    absolute = tmp_path / "abs" / "a.db"
    with open_store(f"sqlite:///{absolute}") as s:  # "sqlite:///" + "/tmp/..." = four slashes
        s.import_tasks([make_task(1)])
    monkeypatch.setenv("SIZEUP_DB", f"sqlite:///{absolute}")
    with open_store() as s:
        assert s.count_tasks() == 1
    with open_store(str(tmp_path / "bare.sqlite")) as s:
        s.import_tasks([make_task(2)])
    assert (tmp_path / "bare.sqlite").is_file()
    monkeypatch.setenv("SIZEUP_DB", str(tmp_path / "bare.sqlite"))
    with open_store() as s:
        assert [t.task_id for t in s.list_tasks()] == ["mbpp/2"]


@pytest.mark.parametrize("url, needle", [
    ("mongodb://user:secret@db.example:27017/sizeup", "MongoDB stores are not supported yet"),
    ("postgres://host/db", "postgres://host/db"),
    ("sizeup.txt", "sizeup.txt"),
    ("sqlite://two-slashes.db", "sqlite://two-slashes.db"),
    ("sqlite:///", "names no file"),
])
def test_unsupported_urls(url: str, needle: str) -> None:
    with pytest.raises(StoreError) as caught:
        open_store(url)
    message = str(caught.value)
    assert needle in message and "\n" not in message and "secret" not in message


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    SQLiteStore(path).close()
    with sqlite3.connect(path) as raw:
        assert raw.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("1",)
        raw.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    with pytest.raises(StoreError, match=r"has schema version 2; this sizeup understands 1"):
        SQLiteStore(path)


def test_unopenable_paths_name_the_path(tmp_path: Path) -> None:
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "junk.db").write_bytes(b"not a database at all, " * 100)
    (tmp_path / "dir.db").mkdir()
    for bad in (tmp_path / "a_file" / "s.db", tmp_path / "junk.db", tmp_path / "dir.db"):
        with pytest.raises(StoreError) as caught:
            SQLiteStore(bad)
        assert str(bad) in str(caught.value) and "\n" not in str(caught.value)


# -- crashes and threads -----------------------------------------------------------------------------
CRASH_SCRIPT = """
import os, signal, sys
sys.path.insert(0, {src!r})
from sizeup.records import Attempt, Side, TaskResult
from sizeup.store import SQLiteStore

def result(i):
    attempts = [Attempt(attempt_id="0"), Attempt(attempt_id="0.0", parent_id="0", depth=1)]
    return TaskResult(run_id="r", task_id=f"t{{i}}", side=Side.SMALL, model="m", strategy="s",
                      status="passed", attempts=attempts)

store = SQLiteStore({path!r})
for i in range(5):
    store.save_result(result(i))
with store._transaction("save result") as conn:
    store._write_result(conn, result(5))
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_sigkill_keeps_every_committed_result(tmp_path: Path) -> None:
    path = tmp_path / "crash.db"
    script = textwrap.dedent(CRASH_SCRIPT).format(src=str(SRC_DIR), path=str(path))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert Path(f"{path}-wal").exists()  # killed, not closed: the WAL was never cleaned up
    with SQLiteStore(path) as reopened:
        results = reopened.results("r")
        assert [r.task_id for r in results] == [f"t{i}" for i in range(5)]
        assert all([a.attempt_id for a in r.attempts] == ["0", "0.0"] for r in results)


def test_threads_share_one_store(store: SQLiteStore) -> None:
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(50):
                store.save_result(make_result("r", f"w{n}-{i}"))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(store.results("r")) == 200
    assert len(store.finished("r")) == 200


def test_two_connections_on_one_file(tmp_path: Path) -> None:
    """A second process (an analysis, a resumed run) may hold its own connection; writers wait, not fail."""
    path = tmp_path / "shared.db"
    stores = [SQLiteStore(path), SQLiteStore(path)]
    threads = [threading.Thread(target=lambda s=s, n=n: [s.save_result(make_result("r", f"{n}-{i}"))
                                                        for i in range(50)])
               for n, s in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(stores[0].finished("r")) == 100
    for s in stores:
        s.close()


def test_timing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Not an assertion on speed: figures for the lead to quote."""
    with SQLiteStore(tmp_path / "timing.db") as s:
        start = time.perf_counter()
        s.import_tasks(make_task(i) for i in range(974))
        import_s = time.perf_counter() - start
        ids = tuple(f"0.{i}" for i in range(10))
        start = time.perf_counter()
        for i in range(1000):  # 1000 results x 10 attempts, one transaction each, as the runner saves them
            s.save_result(make_result("r", f"t{i}", attempt_ids=ids))
        save_s = time.perf_counter() - start
        start = time.perf_counter()
        results = s.results("r")
        read_s = time.perf_counter() - start
    assert sum(len(r.attempts) for r in results) == 10_000
    with capsys.disabled():
        print(f"\n[store timing] import 974 tasks: {import_s * 1000:.0f} ms; save 1000 results with 10 000 "
              f"attempts: {save_s:.2f} s; read them back: {read_s:.2f} s")
