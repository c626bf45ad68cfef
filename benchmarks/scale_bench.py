"""Tasks per hour on this machine: one worker with all its CPUs against several workers with a CPU each, and
the same workers as Ray actors, on the same MBPP tasks with the embedded models (the seed's two arms).

    python benchmarks/scale_bench.py [--tasks 20] [--max-tokens 128] [--json]

With --json the last line is {"tasks_per_hour": {"local-1x2", "local-2x1", "ray-2x1"}, "ray_overhead_pct",
"speedup_2_workers", ...}: ray_overhead_pct compares Ray with local processes at the same workers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console

from sizeup.cli.plan import seed_arms
from sizeup.cli.runner import RunConfig, Runner
from sizeup.store import open_store
from sizeup.tasks import load_mbpp

DEFAULT_MBPP = Path(__file__).resolve().parents[2] / "shared" / "data" / "mbpp.jsonl"


def timed_run(db: str, tasks: list, config: RunConfig, max_tokens: int) -> tuple[float, int]:
    arms = seed_arms("gemma3:270m", "smollm2:135m", {"max_tokens": max_tokens, "max_depth": 1})
    with open_store(db) as store:
        store.import_tasks(tasks, clear=False)
        started = time.perf_counter()
        run_id = Runner(store, config, arms, Console(stderr=True, quiet=True)).run(tasks)
        elapsed = time.perf_counter() - started
        return elapsed, len(store.results(run_id))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mbpp", default=str(DEFAULT_MBPP))
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    cpus = len(os.sched_getaffinity(0))
    tasks = list(load_mbpp(args.mbpp))[10 : 10 + args.tasks]
    configs = {
        f"local-1x{cpus}": RunConfig(workers=1, n_threads=cpus),
        f"local-{cpus}x1": RunConfig(workers=cpus),
        f"ray-{cpus}x1": RunConfig(workers=cpus, executor="ray"),
    }
    rates, seconds = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, config in configs.items():
            elapsed, stored = timed_run(f"sqlite:///{tmp}/{name}.db", tasks, config, args.max_tokens)
            seconds[name] = elapsed
            rates[name] = 3600 * len(tasks) / elapsed
            print(
                f"{name}: {len(tasks)} tasks ({stored} results) in {elapsed:.0f} s = {rates[name]:.0f} tasks/h",
                file=sys.stderr,
            )
    local, ray = rates[f"local-{cpus}x1"], rates[f"ray-{cpus}x1"]
    summary = {
        "tasks_per_hour": {k.replace(str(cpus), "2") if cpus == 2 else k: v for k, v in rates.items()},
        "ray_overhead_pct": 100 * (local - ray) / local,
        "speedup_2_workers": local / rates[f"local-1x{cpus}"],
        "seconds": seconds,
        "tasks": len(tasks),
        "cpus": cpus,
    }
    if args.json:
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
