"""Tasks per hour on this machine: one worker with all its N CPUs against N workers with a CPU each, and
the same N workers as Ray actors, on the same MBPP tasks with the embedded models (the seed's two arms).

    python benchmarks/scale_bench.py [--tasks 20] [--max-tokens 128] [--json]

Two rates per configuration, both from the results it stored: `tasks_per_hour` over the whole run (model
servers' start-up included: each worker starts its own) and `tasks_per_hour_steady`, between the first and
the last result stored (start-up left out). A task counts once both arms have stored it.

With --json the last line is {"tasks_per_hour": {"local-1xN", "local-Nx1", "ray-Nx1"}, "tasks_per_hour_steady":
{...}, "ray_overhead_pct", "speedup_N_workers", "workers", ...} with N this machine's CPUs (2 here: local-1x2,
local-2x1, ray-2x1, speedup_2_workers): ray_overhead_pct compares Ray with local processes at the same
workers, speedup_N_workers N workers with one (both from the steady rates).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from rich.console import Console

from sizeup.cli.plan import seed_arms
from sizeup.cli.runner import RunConfig, Runner
from sizeup.store import open_store
from sizeup.tasks import load_mbpp

DEFAULT_MBPP = Path(__file__).resolve().parents[2] / "shared" / "data" / "mbpp.jsonl"


def timed_run(db: str, tasks: list, config: RunConfig, max_tokens: int) -> tuple[float, float | None, int]:
    """(whole-run rate, steady rate, tasks stored by every arm), rates in tasks per hour."""
    arms = seed_arms("gemma3:270m", "smollm2:135m", {"max_tokens": max_tokens, "max_depth": 1})
    with open_store(db) as store:
        store.import_tasks(tasks, clear=False)
        started = time.perf_counter()
        run_id = Runner(store, config, arms, Console(stderr=True, quiet=True)).run(tasks)
        elapsed = time.perf_counter() - started
        results = store.results(run_id)
    done: dict[str, list[datetime]] = {}
    for result in results:
        done.setdefault(result.task_id, []).append(datetime.fromisoformat(result.finished_at))
    finished = sorted(max(times) for times in done.values() if len(times) == len(arms))
    steady = None
    if len(finished) >= 2:
        span = (finished[-1] - finished[0]).total_seconds()
        steady = 3600 * (len(finished) - 1) / span if span > 0 else None
    return 3600 * len(finished) / elapsed, steady, len(finished)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mbpp", default=str(DEFAULT_MBPP))
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    cpus = len(os.sched_getaffinity(0))
    tasks = list(load_mbpp(args.mbpp))[10 : 10 + args.tasks]
    one, many, ray = f"local-1x{cpus}", f"local-{cpus}x1", f"ray-{cpus}x1"
    configs = {
        one: RunConfig(workers=1, n_threads=cpus),
        many: RunConfig(workers=cpus),
        ray: RunConfig(workers=cpus, executor="ray"),
    }
    rates: dict[str, float] = {}
    steady: dict[str, float | None] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, config in configs.items():
            rates[name], steady[name], stored = timed_run(f"sqlite:///{tmp}/{name}.db", tasks, config, args.max_tokens)
            shown = f"{steady[name]:.0f}" if steady[name] is not None else "n/a"
            print(
                f"{name}: {stored}/{len(tasks)} tasks stored; {rates[name]:.0f} tasks/h over the run, "
                f"{shown} tasks/h after start-up",
                file=sys.stderr,
            )

    def ratio(a: float | None, b: float | None) -> float | None:
        return a / b if a is not None and b else None

    overhead = ratio(steady[many], steady[ray])
    summary = {
        "tasks_per_hour": rates,
        "tasks_per_hour_steady": steady,
        "ray_overhead_pct": 100 * (1 - 1 / overhead) if overhead else None,
        f"speedup_{cpus}_workers": ratio(steady[many], steady[one]),
        "workers": cpus,
        "tasks": len(tasks),
        "cpus": cpus,
    }
    if args.json:
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
