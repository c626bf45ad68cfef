"""The SQLite store: one file, WAL-journalled, safe against a killed process and against worker threads.

Models are kept as JSON (the same pydantic serialisation every store uses); the keys that queries and
uniqueness depend on are real columns beside it.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sizeup.records import Attempt, RunRecord, TaskResult, creation_order
from sizeup.store.base import Store, StoreError, newest_start_per_arm
from sizeup.tasks.types import Task

SCHEMA_VERSION = 1
BUSY_TIMEOUT_S = 30.0  # another process (a second `sizeup run`, an analysis) may hold the write lock

# No extra index on attempts: the primary key's (run_id, task_id, side) prefix already serves it.
# attempts.ord keeps the position the strategy gave, so the chronological order is not lost to tree order.
# progress_starts holds only the "task started" records, so the task in flight is found without reading
# the run's samples (one a second). (No ';' inside this text: it is split on ';' into statements.)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tasks (
    task_id TEXT PRIMARY KEY, seq INTEGER NOT NULL, source TEXT NOT NULL, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS tasks_by_seq ON tasks(seq);
CREATE TABLE IF NOT EXISTS runs (run_id TEXT PRIMARY KEY, started_at TEXT NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS results (
    run_id TEXT NOT NULL, task_id TEXT NOT NULL, side TEXT NOT NULL, seq INTEGER NOT NULL,
    status TEXT NOT NULL, model TEXT NOT NULL, strategy TEXT NOT NULL, data TEXT NOT NULL,
    UNIQUE (run_id, task_id, side));
CREATE INDEX IF NOT EXISTS results_by_run ON results(run_id, seq);
CREATE TABLE IF NOT EXISTS attempts (
    run_id TEXT NOT NULL, task_id TEXT NOT NULL, side TEXT NOT NULL, attempt_id TEXT NOT NULL,
    parent_id TEXT, depth INTEGER NOT NULL, ord INTEGER NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (run_id, task_id, side, attempt_id),
    FOREIGN KEY (run_id, task_id, side) REFERENCES results(run_id, task_id, side) ON DELETE CASCADE);
CREATE TABLE IF NOT EXISTS progress (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS progress_by_run ON progress(run_id, seq);
CREATE INDEX IF NOT EXISTS progress_starts ON progress(run_id, seq) WHERE json_extract(data, '$.kind') = 'start'
"""


class SQLiteStore(Store):
    def __init__(self, path: str | Path, url: str | None = None, *, read_only: bool = False):
        self.read_only = read_only  # a dashboard's: opened with mode=ro, so it can never write
        self.path = str(path)  # as the user wrote it, for messages
        self.url = url or f"sqlite:///{self.path}"
        self._file = self.path if self.path == ":memory:" else str(Path(self.path).expanduser())
        # Reentrant so that a task iterable which itself reads the store cannot deadlock import_tasks.
        self._lock = threading.RLock()
        self._conn = self._connect()

    # -- opening -------------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = None
        try:
            if self.read_only:
                uri = f"file:{Path(self._file).resolve()}?mode=ro"
                conn = sqlite3.connect(
                    uri, uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
                )
                conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
                self._check_version(conn)  # nothing is created or migrated read-only, but a newer store is refused
                return conn
            if self._file != ":memory:":
                Path(self._file).parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: we issue BEGIN/COMMIT ourselves, so a transaction spans exactly
            # what we say (the sqlite3 module's implicit transactions would not cover the task iterator).
            conn = sqlite3.connect(self._file, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")  # committed work survives SIGKILL; readers never block
            conn.execute("PRAGMA synchronous=NORMAL")  # WAL keeps crash safety; only power loss can cost
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
            self._check_schema(conn)
        except (sqlite3.Error, OSError, StoreError) as exc:
            if conn is not None:
                conn.close()
            if isinstance(exc, StoreError):
                raise
            raise StoreError(f"cannot open store {self.path}: {exc}") from exc
        return conn

    def _check_version(self, conn: sqlite3.Connection) -> None:
        """Refuse a store written by a newer sizeup (a store with no meta table yet is older, or empty)."""
        if not conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone():
            return
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        version = int(row[0]) if row and str(row[0]).isdigit() else None
        if row is not None and (version is None or version > SCHEMA_VERSION):
            raise StoreError(f"store {self.path} has schema version {row[0]}; this sizeup understands {SCHEMA_VERSION}")

    def _check_schema(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            self._check_version(conn)
            for statement in _SCHEMA.split(";"):
                conn.execute(statement)
            conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            conn.execute("COMMIT")
        except BaseException:
            conn.rollback()
            raise

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- plumbing ------------------------------------------------------------------------------
    @contextmanager
    def _transaction(self, action: str) -> Iterator[sqlite3.Connection]:
        """One write transaction; any exception rolls it back. SQLite errors become one-line StoreErrors,
        anything else (a loader's TaskFormatError, KeyboardInterrupt) propagates unchanged."""
        with self._lock:
            try:
                # Outside the rollback below: a nested write must fail alone, not undo the outer one.
                self._conn.execute("BEGIN IMMEDIATE")  # take the write lock now, not halfway through
            except sqlite3.Error as exc:
                raise StoreError(f"cannot {action} in store {self.path}: {exc}") from exc
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException as exc:
                try:
                    self._conn.rollback()
                except sqlite3.Error:
                    pass  # the connection is unusable (closed); nothing was committed anyway
                if isinstance(exc, sqlite3.Error):
                    raise StoreError(f"cannot {action} in store {self.path}: {exc}") from exc
                raise

    @contextmanager
    def _reading(self, action: str) -> Iterator[sqlite3.Connection]:
        """Reads inside one transaction see one snapshot, even while another process writes."""
        with self._lock:
            try:
                # Inside a write already (a task iterable reading the store)? That one is the snapshot.
                own = not self._conn.in_transaction
                if own:
                    self._conn.execute("BEGIN")
                try:
                    yield self._conn
                finally:
                    if own:
                        self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise StoreError(f"cannot {action} from store {self.path}: {exc}") from exc

    def _query(self, action: str, sql: str, params: tuple = ()) -> list[tuple]:
        with self._reading(action) as conn:
            return conn.execute(sql, params).fetchall()

    # -- tasks ---------------------------------------------------------------------------------
    def import_tasks(self, tasks: Iterable[Task], *, clear: bool = True) -> int:
        written: set[str] = set()
        with self._transaction("import tasks") as conn:
            if clear:
                conn.execute("DELETE FROM tasks")
            next_seq = conn.execute("SELECT COALESCE(MAX(seq) + 1, 0) FROM tasks").fetchone()[0]
            for task in tasks:  # may raise mid-way: the transaction then leaves the store untouched
                # An existing task keeps its place in the import order; only its content changes.
                conn.execute(
                    "INSERT INTO tasks (task_id, seq, source, data) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT(task_id) DO UPDATE SET source = excluded.source, data = excluded.data",
                    (task.task_id, next_seq, task.source, task.model_dump_json()),
                )
                next_seq += 1
                written.add(task.task_id)
        return len(written)

    def list_tasks(
        self, *, task_ids: Iterable[str] | None = None, source: str | None = None, limit: int | None = None
    ) -> list[Task]:
        where: list[str] = []
        params: list[str | int] = []
        if task_ids is not None:
            # json_each instead of "IN (?, ?, ...)": no limit on how many ids a caller passes.
            where.append("task_id IN (SELECT value FROM json_each(?))")
            params.append(json.dumps(list(task_ids)))
        if source is not None:
            where.append("source = ?")
            params.append(source)
        sql = "SELECT data FROM tasks" + (" WHERE " + " AND ".join(where) if where else "")
        sql += " ORDER BY seq LIMIT ?"
        params.append(-1 if limit is None else limit)  # LIMIT -1 is SQLite for "no limit"
        return [Task.model_validate_json(data) for (data,) in self._query("list tasks", sql, tuple(params))]

    def count_tasks(self) -> int:
        return self._query("count tasks", "SELECT COUNT(*) FROM tasks")[0][0]

    # -- runs ----------------------------------------------------------------------------------
    def save_run(self, run: RunRecord) -> None:
        with self._transaction("save run") as conn:
            conn.execute(
                "INSERT INTO runs (run_id, started_at, data) VALUES (?, ?, ?) ON CONFLICT(run_id) "
                "DO UPDATE SET started_at = excluded.started_at, data = excluded.data",
                (run.run_id, run.started_at, run.model_dump_json()),
            )

    def get_run(self, run_id: str) -> RunRecord | None:
        rows = self._query("read run", "SELECT data FROM runs WHERE run_id = ?", (run_id,))
        return RunRecord.model_validate_json(rows[0][0]) if rows else None

    def list_runs(self) -> list[RunRecord]:
        rows = self._query("list runs", "SELECT data FROM runs ORDER BY started_at DESC, rowid DESC")
        return [RunRecord.model_validate_json(data) for (data,) in rows]

    # -- results -------------------------------------------------------------------------------
    def save_result(self, result: TaskResult) -> None:
        with self._transaction("save result") as conn:
            self._write_result(conn, result)

    def _write_result(self, conn: sqlite3.Connection, result: TaskResult) -> None:
        key = (result.run_id, result.task_id, result.arm)
        # A replaced result keeps its original place in the save order.
        conn.execute(
            "INSERT INTO results (run_id, task_id, side, seq, status, model, strategy, data) "
            "VALUES (?, ?, ?, (SELECT COALESCE(MAX(seq) + 1, 0) FROM results WHERE run_id = ?), ?, ?, ?, ?) "
            "ON CONFLICT(run_id, task_id, side) DO UPDATE SET status = excluded.status, "
            "model = excluded.model, strategy = excluded.strategy, data = excluded.data",
            (
                *key,
                result.run_id,
                result.status,
                result.model,
                result.strategy,
                result.model_dump_json(exclude={"attempts"}),
            ),
        )
        conn.execute("DELETE FROM attempts WHERE run_id = ? AND task_id = ? AND side = ?", key)
        conn.executemany(
            "INSERT INTO attempts (run_id, task_id, side, attempt_id, parent_id, depth, ord, data) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(*key, a.attempt_id, a.parent_id, a.depth, i, a.model_dump_json()) for i, a in enumerate(result.attempts)],
        )

    def results(self, run_id: str, arm: str | None = None) -> list[TaskResult]:
        # The arm's column is called side, as in the stores made before arms.
        side_filter, params = ("", (run_id,)) if arm is None else (" AND side = ?", (run_id, arm))
        with self._reading("read results") as conn:
            rows = conn.execute(
                "SELECT task_id, side, data FROM results WHERE run_id = ?" + side_filter + " ORDER BY seq", params
            ).fetchall()
            attempt_rows = conn.execute(
                "SELECT task_id, side, data FROM attempts WHERE run_id = ?" + side_filter, params
            ).fetchall()
        trees: dict[tuple[str, str], list[Attempt]] = {}
        for task_id, side_value, data in attempt_rows:
            trees.setdefault((task_id, side_value), []).append(Attempt.model_validate_json(data))
        out = []
        for task_id, side_value, data in rows:
            result = TaskResult.model_validate_json(data)
            result.attempts = creation_order(trees.get((task_id, side_value), []))
            out.append(result)
        return out

    def finished(self, run_id: str) -> set[tuple[str, str]]:
        rows = self._query("read results", "SELECT task_id, side FROM results WHERE run_id = ?", (run_id,))
        return {(task_id, arm) for task_id, arm in rows}

    # -- progress --------------------------------------------------------------------------------
    def save_progress(self, run_id: str, record: dict[str, Any]) -> None:
        with self._transaction("save progress") as conn:
            conn.execute("INSERT INTO progress (run_id, data) VALUES (?, ?)", (run_id, json.dumps(record)))

    def progress(self, run_id: str, since: int = 0, last: int | None = None) -> list[tuple[int, dict[str, Any]]]:
        try:
            rows = self._query(
                "read progress",
                "SELECT seq, data FROM progress WHERE run_id = ? AND seq > ? ORDER BY seq DESC LIMIT ?",
                (run_id, since, -1 if last is None else last),  # LIMIT -1: no limit
            )
        except StoreError:  # a store written before progress records (opened read-only: no table)
            return []
        return [(seq, json.loads(data)) for seq, data in reversed(rows)]

    def latest_starts(self, run_id: str, arms: Iterable[str]) -> dict[str, tuple[int, dict[str, Any]]]:
        wanted = set(arms)
        if not wanted:
            return {}
        try:
            with self._reading("read progress") as conn:
                # Newest first, through progress_starts (the WHERE term is the index's own).
                cursor = conn.execute(
                    "SELECT seq, data FROM progress WHERE run_id = ? AND json_extract(data, '$.kind') = 'start' "
                    "ORDER BY seq DESC",
                    (run_id,),
                )
                try:
                    return newest_start_per_arm(((seq, json.loads(data)) for seq, data in cursor), wanted)
                finally:
                    cursor.close()
        except StoreError:  # a store written before progress records (opened read-only: no table)
            return {}

    def run_version(self, run_id: str) -> tuple[int, int]:
        (results,) = self._query("read results", "SELECT COUNT(*) FROM results WHERE run_id = ?", (run_id,))[0]
        try:
            (last,) = self._query(
                "read progress", "SELECT COALESCE(MAX(seq), 0) FROM progress WHERE run_id = ?", (run_id,)
            )[0]
        except StoreError:
            last = 0
        return int(results), int(last)
