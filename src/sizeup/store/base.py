"""The repository contract every store implements (SQLite and MongoDB), and helpers both share."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Any

from sizeup.records import RunRecord, TaskResult
from sizeup.tasks.types import Task


class StoreError(RuntimeError):
    """The store could not be opened or written; the message is one line for the user."""


def redacted_url(url: str) -> str:
    """The URL with its password replaced by ***, fit for messages. Greedy up to the last '@' before the
    path, so an unescaped '@' inside the password cannot leak the rest of it."""
    return re.sub(r"(//[^/:@]*):[^/]*@", r"\1:***@", url)


def newest_start_per_arm(
    starts: Iterable[tuple[int, dict[str, Any]]], arms: set[str]
) -> dict[str, tuple[int, dict[str, Any]]]:
    """From `start` records newest first, as (seq, record): the first of each of `arms`. Stops reading once
    every arm has its record, so a backend's cursor reads a few rows however long the run."""
    found: dict[str, tuple[int, dict[str, Any]]] = {}
    for seq, record in starts:
        arm = record.get("arm")
        if arm in arms and arm not in found:
            found[arm] = (seq, record)
            if len(found) == len(arms):
                break
    return found


class Store(ABC):
    url: str

    # -- tasks ---------------------------------------------------------------------------------
    @abstractmethod
    def import_tasks(self, tasks: Iterable[Task], *, clear: bool = True) -> int:
        """Store tasks atomically: all of them or, if iterating raises, none (the store is left as it
        was and the exception propagates). `clear` empties the task table first; otherwise tasks are
        upserted by task_id. Returns how many tasks were written."""

    @abstractmethod
    def list_tasks(
        self, *, task_ids: Iterable[str] | None = None, source: str | None = None, limit: int | None = None
    ) -> list[Task]:
        """Tasks in import order, filtered."""

    @abstractmethod
    def count_tasks(self) -> int: ...

    # -- runs ----------------------------------------------------------------------------------
    @abstractmethod
    def save_run(self, run: RunRecord) -> None:
        """Insert or replace the run record."""

    @abstractmethod
    def get_run(self, run_id: str) -> RunRecord | None: ...

    @abstractmethod
    def list_runs(self) -> list[RunRecord]:
        """Newest first."""

    # -- results -------------------------------------------------------------------------------
    @abstractmethod
    def save_result(self, result: TaskResult) -> None:
        """Write one arm's result on one task with its attempts, atomically and idempotently:
        writing the same (run_id, task_id, arm) again replaces it, never duplicates."""

    @abstractmethod
    def results(self, run_id: str, arm: str | None = None) -> list[TaskResult]:
        """All results of a run (or of one arm), in the order they were saved, each with its attempts in the
        order they were made."""

    @abstractmethod
    def finished(self, run_id: str) -> set[tuple[str, str]]:
        """(task_id, arm) pairs already stored for a run; --resume skips them."""

    # -- progress (what a live dashboard shows while a run goes on) --------------------------------
    @abstractmethod
    def save_progress(self, run_id: str, record: dict[str, Any]) -> None:
        """Append a small progress record (a task started, a monitor sample). Never needed to read results."""

    @abstractmethod
    def progress(self, run_id: str, since: int = 0, last: int | None = None) -> list[tuple[int, dict[str, Any]]]:
        """A run's progress records after `since` (a sequence number), in order, as (seq, record); with `last`,
        only the newest `last` of them (a page that keeps a window need not read a long run's history). Sequence
        numbers are small counters, not clocks (a JavaScript number must hold them exactly), and
        one writer per run (the driver) makes them appear in order, so a poller that asks for the records
        after the last seq it saw misses none."""

    @abstractmethod
    def latest_starts(self, run_id: str, arms: Iterable[str]) -> dict[str, tuple[int, dict[str, Any]]]:
        """The newest `start` progress record (kind "start": a task started) of each of `arms` that has one, as
        {arm: (seq, record)}, however old: what a live view needs for the task in flight, which a poller
        reading only the records after its last seq would have lost a second after it appeared."""

    @abstractmethod
    def run_version(self, run_id: str) -> tuple[int, int]:
        """(results stored, last progress seq) of a run: a poller that saw the same pair has nothing new."""

    def close(self) -> None:  # noqa: B027
        pass

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
