"""The store contract against real backends: every contract test runs on SQLite (a real file) and on a real
MongoDB-wire server (FerretDB, or $SIZEUP_TEST_MONGODB_URI; see mongo_server.py). Round trips, atomicity,
idempotence, crashes, threads, exports and copies; then what is particular to each backend (URLs, errors).
"""

from __future__ import annotations

import csv
import json
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pymongo
import pytest

import mongo_server as mongo
import sizeup
from sizeup.analysis import compare
from sizeup.records import LARGE, SMALL, Attempt, Budget, Measured, ResourceSummary, RunRecord, TaskResult
from sizeup.store import SQLiteStore, Store, StoreError, open_store
from sizeup.store.base import redacted_url
from sizeup.store.mongo import MongoStore
from sizeup.store.transfer import (
    EXPORT_FIELDS,
    atomic_text_file,
    copy_store,
    export_run,
    export_samples,
    result_row,
)
from sizeup.tasks import load_mbpp
from sizeup.tasks.types import Task, TaskFormatError
from sizeup.verdicts import Status

SRC_DIR = Path(sizeup.__file__).resolve().parents[1]

# The MongoDB fixtures, made visible to pytest in this module (a test asks for them by these names).
mongo_server = mongo.mongo_server
mongodb_url = mongo.mongodb_url


def make_task(i: int, source: str = "mbpp", tag: str = "") -> Task:
    return Task(
        task_id=f"{source}/{i}",
        source=source,
        prompt=f"Write f{i}{tag}",
        entry_point=f"f{i}",
        tests=[f"assert f{i}(1) == {i}", f"assert f{i}(2) == {2 * i}"],
        setup_code="import math",
        challenge_tests=[f"assert f{i}(0) == 0"],
        reference=f"def f{i}(x): return x * {i}",
        stub=f"def f{i}(x):\n    '''times {i}'''\n",
    )


def make_attempt(attempt_id: str, tag: str = "") -> Attempt:
    parent = attempt_id.rpartition(".")[0] or None
    return Attempt(
        attempt_id=attempt_id,
        parent_id=parent,
        depth=attempt_id.count("."),
        seed=7,
        prompt=f"p{tag}",
        response=f"```python\nx = 1{tag}\n```",
        code=f"x = 1{tag}",
        prompt_tokens=11,
        completion_tokens=22,
        ttft_s=0.25,
        gen_s=1.5,
        finish_reason="stop",
        status="failed",
        tests_passed=1,
        tests_total=3,
        feedback="AssertionError",
        exec_wall_s=0.3,
        exec_cpu_s=0.2,
        exec_peak_rss_mb=12.5,
        error=f"e{tag}",
    )


def make_result(
    run_id: str, task_id: str, side: str = SMALL, attempt_ids: tuple[str, ...] = ("0", "1", "0.0"), tag: str = ""
) -> TaskResult:
    server = ResourceSummary(
        wall_s=3.0,
        cpu_s=2.5,
        peak_rss_mb=900.0,
        mean_cpu_pct=80.0,
        peak_cpu_pct=390.0,
        processes=2,
        samples=30,
        method={"cpu_s": Measured.KERNEL, "peak_rss_mb": Measured.SAMPLED},
    )
    return TaskResult(
        run_id=run_id,
        task_id=task_id,
        side=side,
        model=f"qwen-0.5b{tag}",
        strategy="ab-mcts",
        status="passed",
        tests_passed=3,
        tests_total=3,
        best_attempt_id=attempt_ids[-1],
        depth_reached=1,
        model_calls=len(attempt_ids),
        wall_s=4.0,
        prompt_tokens=33,
        completion_tokens=66,
        ttft_s=0.2,
        gen_s=3.1,
        server=server,
        sandbox_executions=3,
        sandbox_cpu_s=0.6,
        sandbox_peak_rss_mb=14.0,
        sandbox_wall_s=0.9,
        attempts=[make_attempt(a, tag) for a in attempt_ids],
        finished_at="2024-05-01T12:00:00+00:00",
    )


@pytest.fixture(params=["sqlite", "mongodb"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 's.db'}"
    return request.getfixturevalue("mongodb_url")


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    with open_store(store_url) as opened:
        yield opened


def backend(url: str) -> str:
    return "mongodb" if url.startswith("mongodb") else "sqlite"


def raw_mongo(url: str) -> pymongo.database.Database:
    """The store's database through a client of the test's own, to look under the contract."""
    return pymongo.MongoClient(url, serverSelectionTimeoutMS=3000).get_default_database()


def raw_attempt_count(url: str, task_id: str) -> int:
    """Attempt records of a task as stored, stale ones included: what resume must never duplicate."""
    if backend(url) == "mongodb":
        return raw_mongo(url).attempts.count_documents({"task_id": task_id})
    with sqlite3.connect(url.removeprefix("sqlite:///")) as raw:
        return raw.execute("SELECT COUNT(*) FROM attempts WHERE task_id = ?", (task_id,)).fetchone()[0]


# -- tasks -------------------------------------------------------------------------------------------
def test_tasks_round_trip_in_import_order(store: Store) -> None:
    tasks = [make_task(i) for i in (5, 1, 3)] + [Task(task_id="bare", source="builtin", prompt="p")]
    assert store.import_tasks(tasks) == 4
    assert store.list_tasks() == tasks
    assert store.count_tasks() == 4


def test_empty_store(store: Store) -> None:
    assert (store.list_tasks(), store.count_tasks(), store.list_runs()) == ([], 0, [])
    assert (store.results("r"), store.finished("r"), store.get_run("r")) == ([], set(), None)


def test_list_tasks_filters(store: Store) -> None:
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
def test_import_is_atomic_when_the_loader_fails(store: Store, store_url: str, clear: bool) -> None:
    before = [make_task(i) for i in range(5)]
    store.import_tasks(before)
    incoming = [make_task(0, tag=" changed"), make_task(10), make_task(11)]  # an update and two new
    with pytest.raises(TaskFormatError, match="bad.jsonl:4"):
        store.import_tasks(_tasks_then_failure(incoming), clear=clear)
    assert store.list_tasks() == before
    if backend(store_url) == "mongodb":  # nothing staged was left behind either
        assert raw_mongo(store_url).tasks.count_documents({}) == 5
    # The store is not left mid-import: the next import works and commits.
    assert store.import_tasks([make_task(20)], clear=False) == 1
    assert store.count_tasks() == 6


def test_clear_replaces_and_upsert_merges(store: Store) -> None:
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


def test_task_iterable_may_read_the_store(store: Store) -> None:
    store.import_tasks([make_task(1)])

    def derived() -> Iterator[Task]:  # e.g. a loader that looks at what is stored
        yield make_task(2)
        (stored,) = store.list_tasks(task_ids=["mbpp/1"])
        yield make_task(3, tag=f" after {stored.prompt}")

    assert store.import_tasks(derived(), clear=False) == 2
    assert store.list_tasks()[-1].prompt == "Write f3 after Write f1"
    assert store.count_tasks() == 3


def test_duplicate_ids_in_one_import_last_wins(store: Store) -> None:
    tasks = [make_task(1), make_task(2), make_task(1, tag=" again")]
    assert store.import_tasks(tasks) == 2
    assert [(t.task_id, t.prompt) for t in store.list_tasks()] == [("mbpp/1", "Write f1 again"), ("mbpp/2", "Write f2")]


# -- runs --------------------------------------------------------------------------------------------
def test_runs_round_trip_replace_and_newest_first(store: Store) -> None:
    old = RunRecord(
        run_id="r1",
        started_at="2024-01-01T00:00:00+00:00",
        config={"large": {"model": "q7b"}},
        environment={"cpu": "x", "cores": 16, "python.version": "3.11", "$odd": 2**70},
        task_ids=["a", "b"],
        load={"large": {"wall_s": 9.5}},
    )
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


def test_runs_with_equal_start_times_list_last_saved_first(store: Store) -> None:
    for run_id in ("a", "b", "c"):
        store.save_run(RunRecord(run_id=run_id, started_at="2024-01-01T00:00:00+00:00"))
    store.save_run(RunRecord(run_id="a", started_at="2024-01-01T00:00:00+00:00", status="finished"))
    assert [r.run_id for r in store.list_runs()] == ["c", "b", "a"]  # replacing keeps a run's place


# -- results -----------------------------------------------------------------------------------------
def test_result_round_trip_with_attempts_in_tree_order(store: Store) -> None:
    result = make_result("r", "t1", attempt_ids=("0.10", "1", "0", "0.2", "0.2.0"))
    store.save_result(result)
    (back,) = store.results("r")
    assert [a.attempt_id for a in back.attempts] == ["0", "1", "0.2", "0.10", "0.2.0"]
    by_id = {a.attempt_id: a for a in result.attempts}
    assert all(a == by_id[a.attempt_id] for a in back.attempts)
    assert back.model_copy(update={"attempts": result.attempts}) == result
    assert back.server.method == {"cpu_s": Measured.KERNEL, "peak_rss_mb": Measured.SAMPLED}


def test_results_keep_save_order_and_filter_by_side(store: Store) -> None:
    for task_id in ("c", "a", "b"):
        store.save_result(make_result("r", task_id, LARGE, attempt_ids=("0",)))
        store.save_result(make_result("r", task_id, SMALL))
    store.save_result(make_result("other-run", "a"))
    assert [(r.task_id, r.arm) for r in store.results("r")] == [
        ("c", LARGE),
        ("c", SMALL),
        ("a", LARGE),
        ("a", SMALL),
        ("b", LARGE),
        ("b", SMALL),
    ]
    large = store.results("r", LARGE)
    assert [r.task_id for r in large] == ["c", "a", "b"]
    assert all(len(r.attempts) == 1 for r in large)
    assert store.results("nobody") == []


def test_save_result_is_idempotent(store: Store, store_url: str) -> None:
    store.save_result(make_result("r", "t", attempt_ids=("0", "0.0", "0.1", "1"), tag="first"))
    store.save_result(make_result("r", "t2"))
    second = make_result("r", "t", attempt_ids=("0", "2"), tag="second")
    store.save_result(second)
    store.save_result(second)
    results = store.results("r")
    assert [r.task_id for r in results] == ["t", "t2"]  # a replaced result keeps its place
    assert results[0] == second
    assert raw_attempt_count(store_url, "t") == 2  # the replaced tree is gone, not hidden


def test_result_without_attempts(store: Store) -> None:
    bare = make_result("r", "t", attempt_ids=("0",)).model_copy(update={"attempts": [], "best_attempt_id": None})
    store.save_result(bare)
    assert store.results("r") == [bare]


def test_failed_save_leaves_previous_result(store: Store, store_url: str) -> None:
    good = make_result("r", "t")
    store.save_result(good)
    with pytest.raises(StoreError, match="save result"):
        store.save_result(make_result("r", "t", attempt_ids=("0", "0"), tag="dup"))  # duplicate attempt id
    assert store.results("r") == [good]
    assert raw_attempt_count(store_url, "t") == 3


def test_finished(store: Store) -> None:
    store.save_result(make_result("r", "a", LARGE))
    store.save_result(make_result("r", "a", SMALL))
    store.save_result(make_result("r", "b", SMALL))
    store.save_result(make_result("r", "b", SMALL))
    store.save_result(make_result("r2", "c", SMALL))
    assert store.finished("r") == {("a", LARGE), ("a", SMALL), ("b", SMALL)}
    assert store.finished("none") == set()


# -- schema --------------------------------------------------------------------------------------------
def test_newer_schema_is_refused(store_url: str) -> None:
    open_store(store_url).close()
    if backend(store_url) == "mongodb":
        meta = raw_mongo(store_url).meta
        assert meta.find_one({"_id": "schema_version"})["value"] == 1
        meta.update_one({"_id": "schema_version"}, {"$set": {"value": 2}})
    else:
        with sqlite3.connect(store_url.removeprefix("sqlite:///")) as raw:
            assert raw.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("1",)
            raw.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    with pytest.raises(StoreError, match=r"has schema version 2; this sizeup understands 1") as caught:
        open_store(store_url)
    assert "\n" not in str(caught.value)
    with pytest.raises(StoreError, match=r"has schema version 2"):  # the dashboard's read-only view too
        open_store(store_url, read_only=True)


# -- crashes, threads, two processes -----------------------------------------------------------------
# The child kills itself with SIGKILL in the middle of a write: inside the open SQLite transaction, or on
# MongoDB after the staged documents are written and before the single-document commit. The killed save
# is a task's first save, or the replacement of a stored result by a different tree.
CRASH_SCRIPT = """
import os, signal, sys
sys.path.insert(0, {src!r})
from sizeup.records import Attempt, TaskResult
from sizeup.store import open_store
from sizeup.tasks.types import Task

def result(i, tree=("0", "0.0")):
    attempts = [Attempt(attempt_id=a, parent_id=a.rpartition(".")[0] or None, depth=a.count(".")) for a in tree]
    return TaskResult(run_id="r", task_id=f"t{{i}}", side="small", model="m", strategy="s",
                      status="passed", attempts=attempts)

def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

def tasks_then_death():
    for i in range(100):
        yield Task(task_id=f"new{{i}}", source="s", prompt="p")
    die()

store = open_store({url!r})
store.import_tasks([Task(task_id=f"t{{i}}", source="s", prompt="p") for i in range(3)])
for i in range(5):
    store.save_result(result(i))
killed = result({index}, ("0", "1", "2"))
if {what!r} == "import" and {backend!r} == "sqlite":
    store.import_tasks(tasks_then_death(), clear=True)  # rows written inside the transaction
elif {what!r} == "import":
    store._commit_tasks = die  # a whole generation staged, never made current
    store.import_tasks([Task(task_id=f"new{{i}}", source="s", prompt="p") for i in range(100)], clear=True)
elif {backend!r} == "sqlite":
    with store._transaction("save result") as conn:
        store._write_result(conn, killed)
        die()
else:
    store._commit_result = die  # the attempts are written, the result never committed
    store.save_result(killed)
"""


@pytest.mark.parametrize("what", ["first-save", "replacement", "import"])
def test_sigkill_keeps_every_committed_write_exactly_once(store_url: str, what: str) -> None:
    index = 4 if what == "replacement" else 5  # the task whose save is killed
    script = textwrap.dedent(CRASH_SCRIPT).format(
        src=str(SRC_DIR), url=store_url, what=what, index=index, backend=backend(store_url)
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    if backend(store_url) == "sqlite":  # killed, not closed: the WAL was never cleaned up
        assert Path(store_url.removeprefix("sqlite:///") + "-wal").exists()
    elif what == "import":  # killed mid-write indeed: the staged generation is there, uncommitted
        assert raw_mongo(store_url).tasks.count_documents({}) == 3 + 100
    else:  # the killed save's three attempts are there, uncommitted, beside any committed tree
        assert raw_attempt_count(store_url, f"t{index}") == 3 + (2 if what == "replacement" else 0)
    with open_store(store_url) as reopened:
        results = reopened.results("r")
        assert [r.task_id for r in results] == [f"t{i}" for i in range(5)]
        assert all([a.attempt_id for a in r.attempts] == ["0", "0.0"] for r in results)
        assert [t.task_id for t in reopened.list_tasks()] == ["t0", "t1", "t2"]
        # Resume: the task is saved again and exists once, with one tree.
        reopened.save_result(results[0].model_copy(update={"task_id": f"t{index}"}))
        assert [r.task_id for r in reopened.results("r")].count(f"t{index}") == 1
    assert raw_attempt_count(store_url, f"t{index}") == 2  # the resumed save's tree; the killed one's is gone
    assert all(raw_attempt_count(store_url, f"t{i}") == 2 for i in range(5))


def test_threads_share_one_store(store: Store) -> None:
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


def test_two_stores_on_one_url(store_url: str) -> None:
    """A second process (an analysis, a resumed run) may hold its own connection; writers wait, not fail."""
    stores = [open_store(store_url), open_store(store_url)]
    threads = [
        threading.Thread(target=lambda s=s, n=n: [s.save_result(make_result("r", f"{n}-{i}")) for i in range(50)])
        for n, s in enumerate(stores)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(stores[0].finished("r")) == 100
    assert len(stores[1].results("r")) == 100
    for s in stores:
        s.close()


def test_timing(store: Store, store_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Not an assertion on speed: figures for the lead to quote."""
    start = time.perf_counter()
    store.import_tasks(make_task(i) for i in range(974))
    import_s = time.perf_counter() - start
    ids = tuple(f"0.{i}" for i in range(10))
    start = time.perf_counter()
    for i in range(1000):  # 1000 results x 10 attempts, one save each, as the runner saves them
        store.save_result(make_result("r", f"t{i}", attempt_ids=ids))
    save_s = time.perf_counter() - start
    start = time.perf_counter()
    results = store.results("r")
    read_s = time.perf_counter() - start
    assert sum(len(r.attempts) for r in results) == 10_000
    with capsys.disabled():
        print(
            f"\n[store timing, {backend(store_url)}] import 974 tasks: {import_s * 1000:.0f} ms; save 1000 "
            f"results with 10 000 attempts: {save_s:.2f} s; read them back: {read_s:.2f} s"
        )


# -- real data ---------------------------------------------------------------------------------------
def test_import_mbpp(store: Store, store_url: str, mbpp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tasks = list(load_mbpp(mbpp_path))
    assert len(tasks) == 974
    start = time.perf_counter()
    assert store.import_tasks(load_mbpp(mbpp_path)) == 974
    import_s = time.perf_counter() - start
    assert store.count_tasks() == 974
    assert store.list_tasks() == tasks
    assert store.list_tasks(task_ids=["11", "974"]) == [tasks[10], tasks[-1]]
    with capsys.disabled():
        print(f"\n[store timing, {backend(store_url)}] import 974 MBPP tasks: {import_s * 1000:.0f} ms")


def synthetic_run(store: Store, run_id: str = "cmp", tasks: int = 36, seed: int = 7) -> RunRecord:
    """A run with varied outcomes and costs on both sides, so every comparison figure is exercised."""
    rng = random.Random(seed)
    run = RunRecord(
        run_id=run_id,
        started_at="2024-03-01T00:00:00+00:00",
        task_ids=[f"mbpp/{i}" for i in range(tasks)],
        load={"large": {"wall_s": 4.5}, "small": {"wall_s": 1.25}},
        status="finished",
    )
    store.import_tasks([make_task(i) for i in range(tasks)], clear=False)
    store.save_run(run)
    for i in range(tasks):
        for side in (LARGE, SMALL):
            ids = ("0",) if side == LARGE else tuple(f"0.{k}" for k in range(rng.randint(1, 6)))
            result = make_result(run_id, f"mbpp/{i}", side, attempt_ids=ids, tag=side)
            server = result.server.model_copy(
                update={"cpu_s": rng.uniform(0.1, 9), "peak_rss_mb": rng.uniform(100, 4000)}
            )
            passed = rng.random() < (0.45 if side == LARGE else 0.6)
            store.save_result(
                result.model_copy(
                    update={
                        "status": Status.PASSED
                        if passed
                        else rng.choice([Status.FAILED, Status.TIMEOUT, Status.ERROR]),
                        "tests_passed": 3 if passed else rng.randint(0, 2),
                        "depth_reached": ids[-1].count("."),
                        "wall_s": rng.uniform(0.5, 30),
                        "ttft_s": rng.choice([None, rng.uniform(0.01, 2)]),
                        "prompt_tokens": rng.randint(10, 900),
                        "completion_tokens": rng.randint(10, 900),
                        "server": server,
                    }
                )
            )
    return run


def test_compare_is_identical_on_sqlite_and_mongodb(tmp_path: Path, mongodb_url: str) -> None:
    with open_store(f"sqlite:///{tmp_path / 'cmp.db'}") as sqlite_store, open_store(mongodb_url) as mongo_store:
        run = synthetic_run(sqlite_store)
        summary = copy_store(sqlite_store, mongo_store)
        assert (summary.runs, summary.results) == (1, 72)
        from_sqlite = compare(run, sqlite_store.results(run.run_id))
        from_mongo = compare(mongo_store.get_run(run.run_id), mongo_store.results(run.run_id))
    assert from_sqlite["tasks"] == 36 and from_sqlite["quality"]["only_small_solved"] > 0
    # Through JSON: the same numbers to the last bit, and a NaN (a figure with no data) equal to itself.
    assert json.dumps(from_mongo, sort_keys=True) == json.dumps(from_sqlite, sort_keys=True)


# -- export and copy -----------------------------------------------------------------------------------
def test_export_run_jsonl_and_csv_round_trip(store: Store, tmp_path: Path) -> None:
    run = synthetic_run(store, tasks=5)
    results = store.results(run.run_id)
    expected = [result_row(r) for r in results]
    assert expected[0]["model_peak_rss_mb"] == results[0].server.peak_rss_mb
    assert export_run(store, run.run_id, "jsonl", tmp_path / "out" / "rows.jsonl") == 10
    lines = (tmp_path / "out" / "rows.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == expected
    assert export_run(store, run.run_id, "csv", tmp_path / "rows.csv") == 10
    with open(tmp_path / "rows.csv", newline="") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames or ()) == EXPORT_FIELDS
        rows = list(reader)
    nested = {"worker", "budget"}
    assert rows == [
        {k: "" if v is None else json.dumps(v, sort_keys=True) if k in nested else str(v) for k, v in row.items()}
        for row in expected
    ]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["rows.jsonl"]  # no temp file left
    with pytest.raises(StoreError, match="no run 'nope'"):
        export_run(store, "nope", "csv", tmp_path / "rows.csv")
    with pytest.raises(ValueError, match="unknown export format"):
        export_run(store, run.run_id, "xlsx", tmp_path / "rows.xlsx")  # type: ignore[arg-type]
    assert len((tmp_path / "rows.csv").read_text().splitlines()) == 11  # the failed exports left it as it was


def test_every_export_row_carries_its_worker_and_budget(store: Store, tmp_path: Path) -> None:
    """Issue 17: every export row has `worker` {id, cpus, node, concurrency}, as its stored result does;
    `budget` too. CSV cells hold them as JSON; a result stored before workers has an empty cell, not a guess."""
    store.save_run(RunRecord(run_id="w"))
    worker = {
        "id": 1,
        "cpus": [2, 3],
        "pinned": True,
        "node": {"host": "n1", "cpu_model": "x", "cores": 4, "gpu": None},
        "concurrency": 2,
    }
    store.save_result(
        make_result("w", "mbpp/1").model_copy(update={"worker": worker, "budget": Budget(tokens=64, cpu_s=2.5)})
    )
    store.save_result(make_result("w", "mbpp/2"))  # as stored before workers existed: no worker, no budget
    assert export_run(store, "w", "jsonl", tmp_path / "rows.jsonl") == 2
    first, old = [json.loads(line) for line in (tmp_path / "rows.jsonl").read_text().splitlines()]
    assert first["worker"] == worker and {"id", "cpus", "node", "concurrency"} <= set(first["worker"])
    assert first["budget"] == {"tokens": 64, "calls": None, "cpu_s": 2.5}
    assert old["worker"] is None and old["budget"] is None
    export_run(store, "w", "csv", tmp_path / "rows.csv")
    with open(tmp_path / "rows.csv", newline="") as f:
        cells = list(csv.DictReader(f))
    assert json.loads(cells[0]["worker"]) == worker and json.loads(cells[0]["budget"])["cpu_s"] == 2.5
    assert cells[1]["worker"] == "" and cells[1]["budget"] == ""


def test_atomic_text_file_leaves_the_old_file_on_error(tmp_path: Path) -> None:
    target = tmp_path / "samples.jsonl"
    target.write_text("old\n")
    with pytest.raises(RuntimeError), atomic_text_file(target) as out:
        out.write("half a fi")
        raise RuntimeError("disk full")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["samples.jsonl"]


def test_export_samples_in_evalplus_format(store: Store, tmp_path: Path) -> None:
    store.import_tasks(
        [Task(task_id="2", source="mbpp", prompt="p"), Task(task_id="HumanEval/0", source="humaneval", prompt="p")]
    )
    store.save_run(RunRecord(run_id="r"))
    kept = make_result("r", "2", attempt_ids=("0", "0.1"))
    kept.attempts[1].code = "def f(x):\n    return x\n"
    store.save_result(kept)
    store.save_result(make_result("r", "HumanEval/0", attempt_ids=("0",)).model_copy(update={"best_attempt_id": None}))
    store.save_result(make_result("r", "2", LARGE, attempt_ids=("0",), tag="large"))
    assert export_samples(store, "r", tmp_path / "small.jsonl", SMALL) == 2
    samples = [json.loads(line) for line in (tmp_path / "small.jsonl").read_text().splitlines()]
    assert samples == [
        {"task_id": "Mbpp/2", "solution": "def f(x):\n    return x\n"},
        {"task_id": "HumanEval/0", "solution": ""},
    ]
    assert export_samples(store, "r", tmp_path / "large.jsonl", "large") == 1
    assert json.loads((tmp_path / "large.jsonl").read_text()) == {"task_id": "Mbpp/2", "solution": "x = 1large"}


def test_copy_store_one_run_then_everything(store: Store, tmp_path: Path) -> None:
    one = synthetic_run(store, "one", tasks=4)
    two = synthetic_run(store, "two", tasks=6, seed=3)
    store.import_tasks([make_task(99, source="humaneval")], clear=False)  # a task no run uses
    with open_store(f"sqlite:///{tmp_path / 'dst.db'}") as dst:
        dst.import_tasks([make_task(500, source="local")])  # the destination's own task stays
        summary = copy_store(store, dst, run_id="one")
        assert (summary.tasks, summary.runs, summary.results) == (4, 1, 8)
        assert summary.attempts == sum(len(r.attempts) for r in store.results("one"))
        assert [r.run_id for r in dst.list_runs()] == ["one"]
        assert dst.results("one") == store.results("one")
        assert {t.task_id for t in dst.list_tasks()} == {"local/500", *one.task_ids}

        summary = copy_store(store, dst)
        assert (summary.tasks, summary.runs, summary.results) == (7, 2, 20)
        copy_store(store, dst)  # again: idempotent
        assert [r.run_id for r in dst.list_runs()] == [r.run_id for r in store.list_runs()]
        for run in (one, two):
            assert dst.get_run(run.run_id) == run
            assert dst.results(run.run_id) == store.results(run.run_id)
        assert dst.list_tasks()[0].task_id == "local/500"
        assert dst.list_tasks()[1:] == store.list_tasks()
        with pytest.raises(StoreError, match="no run 'nope'"):
            copy_store(store, dst, run_id="nope")


# -- SQLite: URLs and files ----------------------------------------------------------------------------
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


@pytest.mark.parametrize(
    "url, needle",
    [
        ("postgres://user:secret@host/db", "postgres://user:***@host/db"),
        ("sizeup.txt", "sizeup.txt"),
        ("sqlite://two-slashes.db", "sqlite://two-slashes.db"),
        ("sqlite:///", "names no file"),
        ("mongodb://user:secret@db/bad/name", "bad MongoDB URL mongodb://user:***@db/bad/name"),
        ("mongodb://user:sec@ret@db/x", "mongodb://user:***@db/x"),  # unescaped '@' in the password
    ],
)
def test_unsupported_urls(url: str, needle: str) -> None:
    with pytest.raises(StoreError) as caught:
        open_store(url)
    message = str(caught.value)
    assert needle in message and "\n" not in message and "secret" not in message and "ret@" not in message


def test_redacted_url() -> None:
    assert (
        redacted_url("mongodb://bob:pw@h1:1,h2:2/db?authSource=admin")
        == "mongodb://bob:***@h1:1,h2:2/db?authSource=admin"
    )
    assert redacted_url("mongodb://bob@h/db") == "mongodb://bob@h/db"
    assert redacted_url("mongodb://h/db") == "mongodb://h/db"


def test_unopenable_paths_name_the_path(tmp_path: Path) -> None:
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "junk.db").write_bytes(b"not a database at all, " * 100)
    (tmp_path / "dir.db").mkdir()
    for bad in (tmp_path / "a_file" / "s.db", tmp_path / "junk.db", tmp_path / "dir.db"):
        with pytest.raises(StoreError) as caught:
            SQLiteStore(bad)
        assert str(bad) in str(caught.value) and "\n" not in str(caught.value)


# -- MongoDB: opening, errors, what is under the contract ----------------------------------------------
def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens once the socket is closed


def test_unreachable_mongodb_fails_fast_in_one_line() -> None:
    url = f"mongodb://bob:hunter2@127.0.0.1:{_closed_port()}/sizeup"
    start = time.monotonic()
    with pytest.raises(StoreError) as caught:
        open_store(url)
    elapsed = time.monotonic() - start
    message = str(caught.value)
    assert message.startswith(f"cannot reach MongoDB at {redacted_url(url)}: no server answered within 3 s")
    assert "\n" not in message and "hunter2" not in message
    assert elapsed < 10


def test_mongodb_url_from_environment(mongodb_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIZEUP_DB", mongodb_url)
    with open_store() as s:
        assert isinstance(s, MongoStore) and s.url == mongodb_url
        s.import_tasks([make_task(1)])
    assert raw_mongo(mongodb_url).name == mongodb_url.rsplit("/", 1)[1].split("?")[0]
    assert raw_mongo(mongodb_url).tasks.count_documents({}) == 1


def test_mongodb_authentication_failure_hides_the_password(mongo_server: Any) -> None:
    scheme, rest = mongo_server.uri.split("://", 1)
    hosts = rest.split("@", 1)[-1]  # replace any credentials the test server was given
    url = mongo.with_database(f"{scheme}://intruder:s3cr3t-pw@{hosts}", "sizeup_auth_test")
    with pytest.raises(StoreError) as caught:
        open_store(url)
    message = str(caught.value)
    assert message.startswith("authentication failed for MongoDB store mongodb://intruder:***@")
    assert "s3cr3t" not in message and "\n" not in message


def test_mongodb_indexes(mongodb_url: str) -> None:
    open_store(mongodb_url).close()
    db = raw_mongo(mongodb_url)
    unique = {
        name: info["key"]
        for coll in ("tasks", "results", "attempts")
        for name, info in db[coll].index_information().items()
        if info.get("unique")
    }
    assert unique == {
        "task_id_unique_per_generation": [("gen", 1), ("task_id", 1)],
        "one_result_per_run_task_side": [("run_id", 1), ("task_id", 1), ("side", 1)],
        "one_attempt_per_write": [("run_id", 1), ("task_id", 1), ("side", 1), ("write_id", 1), ("attempt_id", 1)],
    }
    assert db.results.index_information()["results_by_run"]["key"] == [("run_id", 1), ("seq", 1)]


def test_mongodb_older_save_never_overwrites_a_newer_one(mongodb_url: str) -> None:
    """Two processes saving one (run, task, side) at once: the save that started first but commits last
    is superseded, and its attempts do not linger."""
    with open_store(mongodb_url) as slow, open_store(mongodb_url) as fast:
        assert isinstance(slow, MongoStore)
        real_commit = slow._commit_result

        def commit_after_the_other_save(*args: Any) -> bool:
            fast.save_result(make_result("r", "t", attempt_ids=("0", "1"), tag="fast"))
            return real_commit(*args)

        slow._commit_result = commit_after_the_other_save  # type: ignore[method-assign]
        slow.save_result(make_result("r", "t", attempt_ids=("0", "1", "2"), tag="slow"))
        (kept,) = slow.results("r")
    assert kept == make_result("r", "t", attempt_ids=("0", "1"), tag="fast")
    assert raw_attempt_count(mongodb_url, "t") == 2


def test_mongodb_import_of_superseded_base_is_refused(mongodb_url: str) -> None:
    """Two imports at once: the one whose starting point changed under it changes nothing."""
    with open_store(mongodb_url) as first, open_store(mongodb_url) as second:
        first.import_tasks([make_task(i) for i in range(3)])

        def tasks_while_another_import_commits() -> Iterator[Task]:
            yield make_task(10)
            second.import_tasks([make_task(20)], clear=False)

        with pytest.raises(StoreError, match="another import finished first"):
            first.import_tasks(tasks_while_another_import_commits(), clear=False)
        assert [t.task_id for t in first.list_tasks()] == ["mbpp/0", "mbpp/1", "mbpp/2", "mbpp/20"]
    # The refused import's staging is gone; the generation before the winner's is kept for readers.
    assert raw_mongo(mongodb_url).tasks.count_documents({}) == 3 + 4


# -- progress records (what `sizeup dashboard` polls) -----------------------------------------------------


def test_progress_seqs_are_counters_a_browser_holds_exactly(store: Store) -> None:
    """The dashboard's page keeps the last seq as a JavaScript number and asks for the records after it:
    a seq above 2^53 (a nanosecond clock) would be rounded, and the page would skip or repeat records."""
    for i in range(30):
        store.save_progress("r", {"kind": "sample", "i": i})
        store.save_progress("other", {"kind": "sample", "i": -i})
    records = store.progress("r")
    seqs = [seq for seq, _ in records]
    assert [r["i"] for _, r in records] == list(range(30))
    assert seqs == sorted(set(seqs)) and all(0 < seq < 2**53 and float(seq) == seq for seq in seqs)
    for k in (0, 7, 29):
        as_javascript = int(json.loads(json.dumps(float(seqs[k]))))  # what the page sends back as `since`
        assert [r["i"] for _, r in store.progress("r", as_javascript)] == list(range(k + 1, 30))
    assert store.run_version("r")[1] == seqs[-1]
    assert store.progress("nope") == [] and store.run_version("nope") == (0, 0)
    # A page that keeps a window reads only the newest records, still in order.
    assert [r["i"] for _, r in store.progress("r", last=5)] == list(range(25, 30))
    assert [r["i"] for _, r in store.progress("r", seqs[26], last=5)] == [27, 28, 29]


def test_latest_starts_finds_each_arms_newest_start_however_old(store: Store) -> None:
    store.save_progress("r", {"kind": "start", "task_id": "t0", "arm": "big"})
    store.save_progress("r", {"kind": "start", "task_id": "t0", "arm": "small"})
    store.save_progress("r", {"kind": "start", "task_id": "t1", "arm": "big"})
    store.save_progress("other", {"kind": "start", "task_id": "x", "arm": "small"})
    for i in range(40):  # a sample a second, long after the starts
        store.save_progress("r", {"kind": "sample", "task_id": "t1", "arm": "big", "cpu_pct": i})
    latest = store.latest_starts("r", ["big", "small", "absent"])
    assert {arm: (r["task_id"], r["arm"]) for arm, (_, r) in latest.items()} == {
        "big": ("t1", "big"),
        "small": ("t0", "small"),
    }
    seqs = {seq for seq, _ in store.progress("r")}
    assert latest["big"][0] in seqs and latest["big"][0] > latest["small"][0]
    assert store.latest_starts("r", []) == {} and store.latest_starts("nope", ["big"]) == {}


def _everything(store_url: str) -> Any:
    """All that is stored, under the contract: every row (SQLite) or every document and index (MongoDB)."""
    if backend(store_url) == "mongodb":
        db = raw_mongo(store_url)
        return {
            name: (
                sorted(json.dumps(doc, sort_keys=True, default=str) for doc in db[name].find()),
                sorted(index["name"] for index in db[name].list_indexes()),
            )
            for name in sorted(db.list_collection_names())
        }
    with sqlite3.connect(store_url.removeprefix("sqlite:///")) as raw:
        return list(raw.iterdump())


def test_a_read_only_store_reads_everything_and_writes_nothing(store_url: str) -> None:
    with open_store(store_url) as writer:
        writer.import_tasks([make_task(i) for i in range(3)])
        writer.save_run(RunRecord(run_id="r", task_ids=["mbpp/0"]))
        writer.save_result(make_result("r", "mbpp/0"))
        writer.save_progress("r", {"kind": "start", "task_id": "mbpp/0", "arm": SMALL})
    before = _everything(store_url)
    with open_store(store_url, read_only=True) as reader:
        assert [t.task_id for t in reader.list_tasks()] == ["mbpp/0", "mbpp/1", "mbpp/2"]
        assert reader.count_tasks() == 3 and [r.run_id for r in reader.list_runs()] == ["r"]
        assert reader.results("r") == [make_result("r", "mbpp/0")] and reader.finished("r") == {("mbpp/0", SMALL)}
        assert reader.run_version("r")[0] == 1 and set(reader.latest_starts("r", [SMALL])) == {SMALL}
        writes = [
            lambda: reader.import_tasks([make_task(9)]),
            lambda: reader.save_run(RunRecord(run_id="r2")),
            lambda: reader.save_result(make_result("r", "mbpp/1")),
            lambda: reader.save_progress("r", {"kind": "sample"}),
        ]
        for write in writes:
            with pytest.raises(StoreError, match="read-?only"):
                write()
    assert _everything(store_url) == before


def test_a_read_only_mongodb_store_creates_nothing_in_an_empty_database(mongodb_url: str) -> None:
    """The dashboard opens the store read-only: not even the schema document or an index may be written,
    so that a user with read access alone can open it."""
    with open_store(mongodb_url, read_only=True) as reader:
        assert isinstance(reader, MongoStore) and reader.read_only
        assert reader.list_runs() == [] and reader.list_tasks() == [] and reader.count_tasks() == 0
        assert reader.results("r") == [] and reader.progress("r") == [] and reader.run_version("r") == (0, 0)
        assert reader.latest_starts("r", ["a"]) == {}
    assert raw_mongo(mongodb_url).list_collection_names() == []


def test_a_read_only_mongodb_store_still_refuses_a_newer_schema(mongodb_url: str) -> None:
    open_store(mongodb_url).close()
    raw_mongo(mongodb_url).meta.update_one({"_id": "schema_version"}, {"$set": {"value": 99}})
    with pytest.raises(StoreError, match="schema version 99"):
        open_store(mongodb_url, read_only=True)
