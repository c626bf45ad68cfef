"""The MongoDB store, for teams sharing one server. Written for what every MongoDB-wire server offers,
FerretDB 1.x included: single-document atomic writes, unique indexes, upserts — no transactions, and no
renameCollection(dropTarget=True) (FerretDB 1.24 answers NotImplemented to both).

Atomicity without transactions comes from versions and one atomic single-document commit:

* tasks: each import writes a whole new *generation* of task documents (the current tasks copied, plus
  the upserts, or only the new tasks when clearing), then flips `meta.tasks.current` to it with a
  compare-and-set. Readers only see the current generation, so a loader that raises, a process killed
  mid-import, or a concurrent import leaves the visible tasks exactly as they were. The previous
  generation is kept until the next import, so a reader that looked up `current` just before a flip still
  reads complete data.
* results: a save notes a fresh `write_id` as pending in the result document (created as a stub that
  readers skip), inserts its attempts under that write_id, then commits with one find-and-modify on the
  result document: it adds this write's version of the result under `versions` and raises `write_id`
  to it ($max). Readers use the version and the attempts of `write_id` only, so a killed save is
  invisible and a replaced result never mixes two trees. After the commit, the attempts and versions of
  the write it replaced and of pending writes that a killed save left behind are deleted, so a resumed
  run leaves each (run, task, side, attempt_id) stored once. Write ids grow with time and $max keeps the
  newest: concurrent saves of one key end with the newest, never with a result whose attempts were deleted.

Every write that runs once per save is an insert or is filtered by _id alone: FerretDB's SQLite handler
filters anything else by decoding every document of the collection in Go (measured at 400 stored results:
69 ms per save with a conditional commit, 9 ms with this one).

Progress records (a task started, a monitor sample; what a live dashboard polls) are numbered by a counter
per run in `meta` (one find-and-modify by _id, then the insert): small integers that a browser's JSON
holds exactly, where nanosecond clocks (> 2^53) would be rounded and make a poller skip or repeat records.

Opened read-only (the dashboard), the store never writes: no schema document, no index, no counter; every
write method refuses with a StoreError, so a read-only MongoDB user can open it.

There is no `samples` collection: EvalPlus samples are derived from the stored attempts at export time
(sizeup.store.transfer.export_samples), so keeping them twice could only let the copies disagree.

Models are kept as the same pydantic JSON as in SQLite (`data`), with the fields that queries, uniqueness
and a person browsing the database need beside it; JSON rather than BSON documents, because config and
environment dicts may hold keys ('.', '$') or integers BSON cannot keep.
"""

from __future__ import annotations

import itertools
import json
import re
import secrets
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import unquote_plus

import pymongo
from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.errors import (
    BulkWriteError,
    ConnectionFailure,
    DuplicateKeyError,
    OperationFailure,
    PyMongoError,
    ServerSelectionTimeoutError,
)

from sizeup.records import Attempt, RunRecord, TaskResult, creation_order
from sizeup.store.base import Store, StoreError, newest_start_per_arm, redacted_url
from sizeup.tasks.types import Task

SCHEMA_VERSION = 1
DEFAULT_DATABASE = "sizeup"
CONNECT_TIMEOUT_MS = 3000  # an unreachable server is reported in seconds, not after pymongo's 30 s
SOCKET_TIMEOUT_MS = 120_000  # a server that stops answering mid-operation must not hang a run forever
ORPHAN_AGE_S = 3600  # a staged task generation never committed after this long belongs to a killed import
READ_RETRIES = 5

_AUTH_FAILED = 18  # MongoDB error codes
_UNAUTHORIZED = 13
_TASKS = "tasks"  # _id of the meta document naming the current task generation


class _VersionClock:
    """Write ids and generations: strings that sort in time order across processes (nanoseconds, then
    random bits against ties), strictly increasing within one process even if the clock steps back."""

    def __init__(self) -> None:
        self._last = 0
        self._lock = threading.Lock()

    def next(self) -> str:
        with self._lock:
            self._last = max(time.time_ns(), self._last + 1)
            return f"{self._last:020d}-{secrets.token_hex(4)}"

    @staticmethod
    def at(seconds_ago: float) -> str:
        """The smallest id that could have been made `seconds_ago`."""
        return f"{int((time.time() - seconds_ago) * 1e9):020d}"


_clock = _VersionClock()


def _version_name(write_id: str) -> str:
    """The field of `versions` holding what that write wrote: a name, not a number, so that no server
    takes it for an array index."""
    return f"w{write_id}"


def _version(write_id: str) -> str:
    return f"versions.{_version_name(write_id)}"


class MongoStore(Store):
    def __init__(self, url: str, *, timeout_ms: int = CONNECT_TIMEOUT_MS, read_only: bool = False):
        self.read_only = read_only  # a dashboard's: never writes, not even the schema document or indexes
        self._url = url
        self.url = redacted_url(url)  # what messages and `sizeup` output show: never the password
        self._timeout_ms = timeout_ms
        try:
            self._client: pymongo.MongoClient = pymongo.MongoClient(
                url,
                serverSelectionTimeoutMS=timeout_ms,
                connectTimeoutMS=timeout_ms,
                socketTimeoutMS=SOCKET_TIMEOUT_MS,
                appname="sizeup",
            )
            self._db = self._client.get_default_database(default=DEFAULT_DATABASE)
        except (PyMongoError, ValueError, TypeError) as exc:  # InvalidURI, a bad database name, bad options
            raise StoreError(f"bad MongoDB URL {self.url}: {self._one_line(exc)}") from None
        try:
            self._client.admin.command("ping")
            if read_only:
                self._read_schema()
            else:
                self._check_schema()
                self._create_indexes()
        except BaseException as exc:
            self._client.close()
            if isinstance(exc, PyMongoError):
                raise self._error("open", exc) from None
            raise

    # -- opening -------------------------------------------------------------------------------
    def _check_schema(self) -> None:
        meta = self._db.meta
        self._insert_once(meta, {"_id": "schema_version", "value": SCHEMA_VERSION})
        self._read_schema(required=True)
        self._insert_once(meta, {"_id": _TASKS, "current": None, "previous": None})

    def _read_schema(self, *, required: bool = False) -> None:
        """Refuse a store of a newer schema. Read-only, a database nothing was ever written to is simply empty."""
        doc = self._db.meta.find_one({"_id": "schema_version"})
        if doc is None and not required:
            return
        found = (doc or {}).get("value")
        if not isinstance(found, int) or found > SCHEMA_VERSION:
            raise StoreError(f"store {self.url} has schema version {found}; this sizeup understands {SCHEMA_VERSION}")

    @staticmethod
    def _insert_once(collection: Any, doc: dict[str, Any]) -> None:
        """Create a document unless it exists; a second process creating it at the same moment is fine."""
        try:
            fields = {name: value for name, value in doc.items() if name != "_id"}  # _id comes from the filter
            collection.update_one({"_id": doc["_id"]}, {"$setOnInsert": fields}, upsert=True)
        except DuplicateKeyError:
            pass

    def _create_indexes(self) -> None:
        # create_index is a no-op when the index exists, so every open may ask.
        db = self._db
        # A task id is unique within a generation, and readers only ever see one generation.
        db.tasks.create_index(
            [("gen", ASCENDING), ("task_id", ASCENDING)], unique=True, name="task_id_unique_per_generation"
        )
        db.tasks.create_index([("gen", ASCENDING), ("seq", ASCENDING)], name="tasks_in_import_order")
        db.runs.create_index([("started_at", DESCENDING), ("seq", DESCENDING)], name="runs_newest_first")
        # One result per (run, task, side). The _id holds the same key as JSON, so that every write of a save
        # filters by _id alone; this index states it in fields, and its run_id prefix serves per-run reads.
        db.results.create_index(
            [("run_id", ASCENDING), ("task_id", ASCENDING), ("side", ASCENDING)],
            unique=True,
            name="one_result_per_run_task_side",
        )
        db.results.create_index([("run_id", ASCENDING), ("seq", ASCENDING)], name="results_by_run")
        db.progress.create_index([("run_id", ASCENDING), ("seq", ASCENDING)], name="progress_by_run")
        # The newest "task started" record of each arm, without reading the run's samples.
        db.progress.create_index(
            [("run_id", ASCENDING), ("kind", ASCENDING), ("seq", ASCENDING)], name="progress_by_run_and_kind"
        )
        db.attempts.create_index(
            [
                ("run_id", ASCENDING),
                ("task_id", ASCENDING),
                ("side", ASCENDING),
                ("write_id", ASCENDING),
                ("attempt_id", ASCENDING),
            ],
            unique=True,
            name="one_attempt_per_write",
        )

    def close(self) -> None:
        self._client.close()

    # -- plumbing ------------------------------------------------------------------------------
    def _one_line(self, exc: BaseException) -> str:
        """pymongo's message, first line, without the raw server reply and never with the password."""
        text = str(exc)
        if isinstance(exc, BulkWriteError) and exc.details.get("writeErrors"):
            text = str(exc.details["writeErrors"][0].get("errmsg", text))  # the reason, not "batch op errors"
        text = (text.split(", full error:")[0].split(", Timeout:")[0].splitlines() or [""])[0]
        text = re.sub(r" \(configured timeouts: [^)]*\)", "", text)
        text = text or type(exc).__name__
        password = self._password()
        for secret in (password, unquote_plus(password or "")):
            if secret:
                text = text.replace(secret, "***")
        return text

    def _password(self) -> str | None:
        authority = self._url.split("://", 1)[-1].split("/", 1)[0]
        if "@" not in authority:
            return None
        credentials = authority.rsplit("@", 1)[0]
        return credentials.split(":", 1)[1] if ":" in credentials else None

    def _error(self, action: str, exc: PyMongoError) -> StoreError:
        if isinstance(exc, ServerSelectionTimeoutError):
            return StoreError(
                f"cannot reach MongoDB at {self.url}: no server answered within "
                f"{self._timeout_ms / 1000:g} s ({self._one_line(exc)})"
            )
        if isinstance(exc, OperationFailure) and exc.code == _AUTH_FAILED:
            return StoreError(
                f"authentication failed for MongoDB store {self.url}: check the user name and password in the URL"
            )
        if isinstance(exc, OperationFailure) and exc.code == _UNAUTHORIZED:
            return StoreError(f"not authorized to {action} in MongoDB store {self.url}: {self._one_line(exc)}")
        if isinstance(exc, ConnectionFailure):
            return StoreError(f"lost the connection to MongoDB at {self.url} ({action}): {self._one_line(exc)}")
        return StoreError(f"cannot {action} in store {self.url}: {self._one_line(exc)}")

    def _writing(self, action: str) -> None:
        if self.read_only:
            raise StoreError(f"cannot {action} in store {self.url}: it is opened read-only")

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """Server errors become one-line StoreErrors; anything else (a loader's TaskFormatError) propagates."""
        try:
            yield
        except PyMongoError as exc:
            raise self._error(action, exc) from None

    # -- tasks ---------------------------------------------------------------------------------
    def _tasks_generation(self) -> tuple[str | None, str | None]:
        meta = self._db.meta.find_one({"_id": _TASKS}) or {}
        return meta.get("current"), meta.get("previous")

    def import_tasks(self, tasks: Iterable[Task], *, clear: bool = True) -> int:
        self._writing("import tasks")
        with self._errors("import tasks"):
            base, _ = self._tasks_generation()
            staged: dict[str, dict[str, Any]] = {}
            if not clear and base is not None:
                for doc in self._db.tasks.find(
                    {"gen": base}, {"_id": 0, "task_id": 1, "seq": 1, "source": 1, "data": 1}
                ).sort("seq", ASCENDING):
                    staged[doc["task_id"]] = doc
        next_seq = max((doc["seq"] for doc in staged.values()), default=-1) + 1
        written: set[str] = set()
        # The whole iterable is read before anything is written: a loader that raises leaves no trace.
        for task in tasks:
            # An existing task keeps its place in the import order; only its content changes.
            if task.task_id in staged:
                seq = staged[task.task_id]["seq"]
            else:
                seq, next_seq = next_seq, next_seq + 1
            staged[task.task_id] = {
                "task_id": task.task_id,
                "seq": seq,
                "source": task.source,
                "data": task.model_dump_json(),
            }
            written.add(task.task_id)
        generation = _clock.next()
        with self._errors("import tasks"):
            try:
                self._stage_tasks(generation, list(staged.values()))
                self._commit_tasks(base, generation, len(staged))
            except BaseException:
                self._discard_generation(generation)
                raise
        return len(written)

    def _stage_tasks(self, generation: str, docs: list[dict[str, Any]]) -> None:
        if docs:
            self._db.tasks.insert_many([{**doc, "gen": generation} for doc in docs], ordered=False)

    def _commit_tasks(self, base: str | None, generation: str, expected: int) -> None:
        """The import's single atomic step: make `generation` current if `base` still is."""
        staged = self._db.tasks.count_documents({"gen": generation})
        if staged != expected:
            raise StoreError(
                f"cannot import tasks in store {self.url}: {expected - staged} staged tasks "
                "vanished before the commit; nothing was changed"
            )
        before = self._db.meta.find_one_and_update(
            {"_id": _TASKS, "current": base},
            {"$set": {"current": generation, "previous": base}},
            return_document=ReturnDocument.BEFORE,
        )
        if before is None:
            raise StoreError(
                f"cannot import tasks in store {self.url}: another import finished first; "
                "nothing was changed, run this import again"
            )
        # The generation readers may still be reading stays (it is `previous` now); the one before goes,
        # with generations that killed imports staged and never committed.
        superseded = before.get("previous")
        if superseded not in (None, base, generation):
            self._db.tasks.delete_many({"gen": superseded})
        self._db.tasks.delete_many({"gen": {"$lt": _clock.at(ORPHAN_AGE_S), "$nin": [generation, base]}})

    def _discard_generation(self, generation: str) -> None:
        try:
            self._db.tasks.delete_many({"gen": generation})
        except PyMongoError:
            pass  # invisible anyway (never current); a later import removes it once it is old

    def list_tasks(
        self, *, task_ids: Iterable[str] | None = None, source: str | None = None, limit: int | None = None
    ) -> list[Task]:
        if limit == 0:
            return []  # pymongo's limit(0) means "no limit"
        with self._errors("list tasks"):
            current, _ = self._tasks_generation()
            if current is None:
                return []
            query: dict[str, Any] = {"gen": current}
            if task_ids is not None:
                query["task_id"] = {"$in": list(task_ids)}
            if source is not None:
                query["source"] = source
            cursor = self._db.tasks.find(query, {"_id": 0, "data": 1}).sort("seq", ASCENDING)
            if limit is not None and limit > 0:
                cursor = cursor.limit(limit)
            return [Task.model_validate_json(doc["data"]) for doc in cursor]

    def count_tasks(self) -> int:
        with self._errors("count tasks"):
            current, _ = self._tasks_generation()
            return 0 if current is None else self._db.tasks.count_documents({"gen": current})

    # -- runs ----------------------------------------------------------------------------------
    def save_run(self, run: RunRecord) -> None:
        self._writing("save run")
        with self._errors("save run"):
            for retry in itertools.count():
                try:
                    # seq: first save's time; newest-first listing breaks started_at ties by it, as SQLite's rowid.
                    self._db.runs.update_one(
                        {"_id": run.run_id},
                        {
                            "$set": {"started_at": run.started_at, "status": run.status, "data": run.model_dump_json()},
                            "$setOnInsert": {"seq": _clock.next()},
                        },
                        upsert=True,
                    )
                    return
                except DuplicateKeyError:
                    if retry:  # two first saves raced; the second try updates the one that won
                        raise

    def get_run(self, run_id: str) -> RunRecord | None:
        with self._errors("read run"):
            doc = self._db.runs.find_one({"_id": run_id}, {"data": 1})
        return RunRecord.model_validate_json(doc["data"]) if doc else None

    def list_runs(self) -> list[RunRecord]:
        with self._errors("list runs"):
            docs = list(self._db.runs.find({}, {"data": 1}).sort([("started_at", DESCENDING), ("seq", DESCENDING)]))
        return [RunRecord.model_validate_json(doc["data"]) for doc in docs]

    # -- results -------------------------------------------------------------------------------
    def save_result(self, result: TaskResult) -> None:
        self._writing("save result")
        key = {"run_id": result.run_id, "task_id": result.task_id, "side": result.arm}
        key_id = json.dumps([result.run_id, result.task_id, result.arm])  # unambiguous: ids hold '/'
        write_id = _clock.next()
        attempts = [
            {
                **key,
                "write_id": write_id,
                "attempt_id": a.attempt_id,
                "parent_id": a.parent_id,
                "depth": a.depth,
                "ord": i,
                "status": a.status,
                "data": a.model_dump_json(),
            }
            for i, a in enumerate(result.attempts)
        ]
        with self._errors("save result"):
            self._announce_write(key, key_id, write_id)
            try:
                if attempts:
                    self._db.attempts.insert_many(attempts, ordered=True)
                before = self._commit_result(key_id, write_id, result)
            except BaseException:
                self._discard_write(key, key_id, write_id)
                raise
            if before.get("write_id", "") > write_id:  # a newer save of this key committed first
                self._discard_write(key, key_id, write_id)
                return
            # The write just replaced, and pending writes that a killed save left behind.
            stale = [w for w in before.get("pending", []) if w < write_id]
            stale += [before["write_id"]] if before.get("write_id") else []
            if stale:
                self._db.attempts.delete_many({**key, "write_id": {"$in": stale}})
                self._db.results.update_one(
                    {"_id": key_id}, {"$pullAll": {"pending": stale}, "$unset": {_version(w): "" for w in stale}}
                )

    def _announce_write(self, key: dict[str, str], key_id: str, write_id: str) -> None:
        """Note the write id in the result document before writing attempts under it, so that a save
        killed before its commit leaves a trace the next save of this key cleans up. A first save
        creates the document as an uncommitted stub (empty write_id) that readers skip."""
        for retry in itertools.count():
            try:
                # seq: the first save's time; a replaced result keeps its original place in the run.
                self._db.results.update_one(
                    {"_id": key_id},
                    {"$addToSet": {"pending": write_id}, "$setOnInsert": {**key, "seq": write_id, "write_id": ""}},
                    upsert=True,
                )
                return
            except DuplicateKeyError:
                if retry:  # two first saves raced; the second try updates the one that won
                    raise

    def _commit_result(self, key_id: str, write_id: str, result: TaskResult) -> dict[str, Any]:
        """The save's single atomic step: add this write's version of the result and make write_id the
        newest committed write id ($max, so an older write committing late changes nothing that readers
        see). Returns the document as it was before."""
        version = {
            "model": result.model,
            "strategy": result.strategy,
            "status": result.status,
            "tests_passed": result.tests_passed,
            "tests_total": result.tests_total,
            "attempt_count": len(result.attempts),
            "data": result.model_dump_json(exclude={"attempts"}),
        }
        return (
            self._db.results.find_one_and_update(
                {"_id": key_id},
                {"$max": {"write_id": write_id}, "$set": {_version(write_id): version}, "$pull": {"pending": write_id}},
                return_document=ReturnDocument.BEFORE,
            )
            or {}
        )

    def _discard_write(self, key: dict[str, str], key_id: str, write_id: str) -> None:
        try:
            self._db.attempts.delete_many({**key, "write_id": write_id})
            self._db.results.update_one(
                {"_id": key_id}, {"$pull": {"pending": write_id}, "$unset": {_version(write_id): ""}}
            )
        except PyMongoError:
            pass  # never committed, so never read; still listed as pending, so the next save removes them

    def results(self, run_id: str, arm: str | None = None) -> list[TaskResult]:
        query: dict[str, Any] = {"run_id": run_id}
        if arm is not None:
            query["side"] = arm
        with self._errors("read results"):
            # Results and attempts are two reads; a save committing between them could leave a result
            # without its tree. attempt_count tells, and a re-read gets the settled state.
            for _ in range(READ_RETRIES):
                complete = self._read_results(query)
                if complete is not None:
                    return complete
        raise StoreError(
            f"cannot read results from store {self.url}: run {run_id} kept changing during {READ_RETRIES} reads"
        )

    def _read_results(self, query: dict[str, Any]) -> list[TaskResult] | None:
        rows = [
            row
            for row in self._db.results.find(query, {"task_id": 1, "side": 1, "write_id": 1, "versions": 1}).sort(
                "seq", ASCENDING
            )
            if row["write_id"]
        ]  # not the stubs of first saves never committed
        committed = {(row["task_id"], row["side"]): row["write_id"] for row in rows}
        trees: dict[tuple[str, str], list[Attempt]] = {}
        for doc in self._db.attempts.find(query, {"task_id": 1, "side": 1, "write_id": 1, "data": 1}):
            tree_key = (doc["task_id"], doc["side"])
            if committed.get(tree_key) == doc["write_id"]:
                trees.setdefault(tree_key, []).append(Attempt.model_validate_json(doc["data"]))
        out = []
        for row in rows:
            version = row["versions"][_version_name(row["write_id"])]
            tree = trees.get((row["task_id"], row["side"]), [])
            if len(tree) != version["attempt_count"]:
                return None
            result = TaskResult.model_validate_json(version["data"])
            result.attempts = creation_order(tree)
            out.append(result)
        return out

    def finished(self, run_id: str) -> set[tuple[str, str]]:
        with self._errors("read results"):
            rows = list(self._db.results.find({"run_id": run_id}, {"_id": 0, "task_id": 1, "side": 1, "write_id": 1}))
        return {(row["task_id"], row["side"]) for row in rows if row["write_id"]}

    # -- progress --------------------------------------------------------------------------------
    def save_progress(self, run_id: str, record: dict[str, Any]) -> None:
        self._writing("save progress")
        with self._errors("save progress"):
            seq = self._next_progress_seq(run_id)
            doc = {"run_id": run_id, "seq": seq, "kind": record.get("kind"), "data": json.dumps(record)}
            self._db.progress.insert_one(doc)

    def _next_progress_seq(self, run_id: str) -> int:
        """1, 2, 3, ... per run: one atomic increment of the run's counter document, found by _id."""
        for retry in itertools.count():
            try:
                counter = self._db.meta.find_one_and_update(
                    {"_id": json.dumps(["progress_seq", run_id])},
                    {"$inc": {"value": 1}},
                    upsert=True,
                    return_document=ReturnDocument.AFTER,
                )
                if counter is None:  # an upsert always returns the document; never None
                    raise StoreError(f"cannot save progress in store {self.url}: no sequence number came back")
                return int(counter["value"])
            except DuplicateKeyError:
                if retry:  # two first increments raced; the second try increments the one that won
                    raise
        raise AssertionError("unreachable")

    def progress(self, run_id: str, since: int = 0, last: int | None = None) -> list[tuple[int, dict[str, Any]]]:
        with self._errors("read progress"):
            cursor = self._db.progress.find({"run_id": run_id, "seq": {"$gt": since}})
            if last is not None:  # the newest `last`, read newest first, then put back in order
                docs = list(cursor.sort("seq", DESCENDING).limit(last))[::-1]
            else:
                docs = list(cursor.sort("seq", ASCENDING))
            return [(int(doc["seq"]), json.loads(doc["data"])) for doc in docs]

    def latest_starts(self, run_id: str, arms: Iterable[str]) -> dict[str, tuple[int, dict[str, Any]]]:
        wanted = set(arms)
        if not wanted:
            return {}
        with self._errors("read progress"):
            cursor = self._db.progress.find({"run_id": run_id, "kind": "start"}, {"seq": 1, "data": 1})
            with cursor.sort("seq", DESCENDING) as docs:
                return newest_start_per_arm(((int(d["seq"]), json.loads(d["data"])) for d in docs), wanted)

    def run_version(self, run_id: str) -> tuple[int, int]:
        with self._errors("read results"):
            results = self._db.results.count_documents({"run_id": run_id, "write_id": {"$ne": ""}})
            last = self._db.progress.find_one({"run_id": run_id}, sort=[("seq", DESCENDING)])
        return int(results), int(last["seq"]) if last else 0
