"""Getting runs out of a store: per-task rows (JSONL or CSV), EvalPlus samples, and copies between stores.

Everything here goes through the Store contract, so it works the same on SQLite and MongoDB. Files are
written to a temporary file beside the target and renamed over it: a reader never sees half a file, and
an export that fails leaves the previous file as it was.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TextIO

from sizeup.records import SMALL, RunRecord, TaskResult, result_shape, server_measured, tokens_measured
from sizeup.store.base import Store, StoreError

ExportFormat = Literal["jsonl", "csv"]

# One row per task and arm. Model figures are the model server's processes (ResourceSummary);
# sandbox figures are the candidate executions. `side` repeats `arm`, for scripts written before arms.
# `worker` ({id, cpus, pinned, node, concurrency, ...}) and `budget` ({tokens, calls, cpu_s}) are objects:
# nested in JSONL, JSON text in a CSV cell; empty (null) where the result has none (stored before workers, or
# an arm without a budget).
EXPORT_FIELDS = (
    "run_id",
    "task_id",
    "arm",
    "side",
    "model",
    "strategy",
    "stopped_by",
    "status",
    "tests_passed",
    "tests_total",
    "best_attempt_id",
    "depth_reached",
    "model_calls",
    "wall_s",
    "prompt_tokens",
    "completion_tokens",
    "ttft_s",
    "gen_s",
    "decode_tokens_per_s",
    "model_cpu_s",
    "model_peak_rss_mb",
    "model_mean_cpu_pct",
    "sandbox_executions",
    "sandbox_cpu_s",
    "sandbox_peak_rss_mb",
    "sandbox_wall_s",
    "finished_at",
    "visible_passed",
    "visible_total",
    "hidden_passed",
    "hidden_total",
    "wider_steps",
    "deeper_steps",
    "first_pass_from",
    "worker",
    "budget",
)
NESTED_FIELDS = ("worker", "budget")


def result_row(result: TaskResult) -> dict[str, Any]:
    """The exported figures of one result, in EXPORT_FIELDS order."""
    row = result.model_dump(include=set(EXPORT_FIELDS), mode="json")
    row["side"] = result.arm
    shape = result_shape(result)
    row["wider_steps"], row["deeper_steps"] = shape["wider"], shape["deeper"]
    row["first_pass_from"] = shape["first_pass_from"]
    # A figure sizeup could not measure (a server it could not watch, a server reporting no usage) is empty,
    # never 0: compare and report say the same.
    cpu_ok = server_measured(result, "cpu_s")
    row["model_cpu_s"] = result.server.cpu_s if cpu_ok else None
    row["model_mean_cpu_pct"] = result.server.mean_cpu_pct if cpu_ok else None
    row["model_peak_rss_mb"] = result.server.peak_rss_mb if server_measured(result, "peak_rss_mb") else None
    row["prompt_tokens"] = result.prompt_tokens if tokens_measured(result) else None
    return {field: row[field] for field in EXPORT_FIELDS}


def csv_row(row: dict[str, Any]) -> dict[str, Any]:
    """A row for a CSV file: the nested objects as JSON text (a missing one stays an empty cell)."""
    return {k: json.dumps(v, sort_keys=True) if k in NESTED_FIELDS and v is not None else v for k, v in row.items()}


@contextmanager
def atomic_text_file(path: str | Path, newline: str | None = None) -> Iterator[TextIO]:
    """Write `path` all at once: a temporary file in the same directory (so the rename cannot cross
    file systems), flushed to disk, then renamed over the target. On any error the target is untouched."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline=newline) as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _run(store: Store, run_id: str) -> RunRecord:
    run = store.get_run(run_id)
    if run is None:
        raise StoreError(f"no run {run_id!r} in {store.url}")
    return run


def export_run(store: Store, run_id: str, fmt: ExportFormat, path: str | Path) -> int:
    """Write one row per stored result of the run (task and arm), in save order. Returns the row count."""
    if fmt not in ("jsonl", "csv"):
        raise ValueError(f"unknown export format {fmt!r}: expected jsonl or csv")
    _run(store, run_id)
    rows = [result_row(r) for r in store.results(run_id)]
    if fmt == "jsonl":
        with atomic_text_file(path) as out:
            for row in rows:
                out.write(json.dumps(row) + "\n")
    else:
        with atomic_text_file(path, newline="") as out:  # the csv module writes its own line ends
            writer = csv.DictWriter(out, fieldnames=EXPORT_FIELDS)
            writer.writeheader()
            writer.writerows(csv_row(row) for row in rows)
    return len(rows)


def evalplus_task_id(task_id: str, source: str | None) -> str:
    """EvalPlus names MBPP tasks "Mbpp/2" where the MBPP files say 2; HumanEval ids already match."""
    if source == "mbpp" and task_id.isdigit():
        return f"Mbpp/{task_id}"
    return task_id


def export_samples(store: Store, run_id: str, path: str | Path, arm: str = SMALL) -> int:
    """Write the kept candidate of each task of one arm as EvalPlus samples, {"task_id", "solution"}
    per line, so `evalplus.evaluate --samples FILE` can judge the same code. A task whose result kept no
    attempt gets an empty solution, which EvalPlus counts as a failure, as sizeup did. Returns the count."""
    _run(store, run_id)
    results = store.results(run_id, arm)
    sources = {t.task_id: t.source for t in store.list_tasks(task_ids=[r.task_id for r in results])}
    with atomic_text_file(path) as out:
        for result in results:
            code = next((a.code for a in result.attempts if a.attempt_id == result.best_attempt_id), "")
            sample = {"task_id": evalplus_task_id(result.task_id, sources.get(result.task_id)), "solution": code}
            out.write(json.dumps(sample) + "\n")
    return len(results)


@dataclass(frozen=True)
class CopySummary:
    tasks: int
    runs: int
    results: int
    attempts: int


def copy_store(src: Store, dst: Store, run_id: str | None = None) -> CopySummary:
    """Copy tasks and runs with their results and attempts from `src` into `dst`.

    Without `run_id`: every task and every run. With it: that run, and the tasks it names or has results
    for. Writes are the stores' idempotent upserts, so an interrupted copy is completed by copying again,
    and what `dst` holds besides is kept (tasks are merged by id, results by run, task and arm).
    """
    if run_id is None:
        runs = list(reversed(src.list_runs()))  # oldest first, so equal start times keep their order
        tasks = src.list_tasks()
        first_results = None
    else:
        runs = [_run(src, run_id)]
        first_results = src.results(run_id)
        tasks = src.list_tasks(task_ids={*runs[0].task_ids, *(r.task_id for r in first_results)})
    dst.import_tasks(tasks, clear=False)
    copied_results = copied_attempts = 0
    for run in runs:  # one run's results in memory at a time
        results = first_results if first_results is not None else src.results(run.run_id)
        # The run first: a copy cut short looks like an interrupted run, and copying again completes it.
        dst.save_run(run)
        for result in results:
            dst.save_result(result)
        copied_results += len(results)
        copied_attempts += sum(len(r.attempts) for r in results)
    return CopySummary(tasks=len(tasks), runs=len(runs), results=copied_results, attempts=copied_attempts)
