"""Tasks per hour on this machine: one worker with all its N CPUs against N workers with a CPU each, and
the same N workers as Ray actors, on the same MBPP tasks with the embedded models (the seed's two arms).

    python benchmarks/scale_bench.py [--tasks 20] [--rounds 3] [--max-tokens 128] [--json]

Two rates per configuration, both from the results it stored: `tasks_per_hour` over the whole run (model
servers' start-up included: each worker starts its own; a Ray run starts its local Ray instance too) and
`tasks_per_hour_steady`, between the first and the last result stored (start-up left out). A task counts once
both arms have stored it.

One 20-task run of a configuration differs from the next by a few per cent (which worker gets the long task
last, the machine's other work), as much as the Ray overhead being measured. So every configuration runs
--rounds times, interleaved (round r starts with configuration r: no configuration always runs first), on the
same tasks (the models' seeds fixed: the same replies, the same work); each rate is the median over rounds,
and every round's figures are printed too.

With --json the last line is {"tasks_per_hour": {"local-1xN", "local-Nx1", "ray-Nx1"}, "tasks_per_hour_steady":
{...}, "ray_overhead_pct", "speedup_N_workers", "workers", ...} with N this machine's CPUs (2 here: local-1x2,
local-2x1, ray-2x1, speedup_2_workers): ray_overhead_pct compares Ray with local processes at the same
workers, speedup_N_workers N workers with one (both from the median steady rates);
`ray_overhead_pct_whole_run` compares the whole-run rates (start-up included) and `rounds` holds each round's
rates.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from sizeup.cli.plan import seed_arms
from sizeup.cli.runner import RunConfig, Runner
from sizeup.store import open_store
from sizeup.tasks import load_mbpp

DEFAULT_MBPP = Path(__file__).resolve().parents[2] / "shared" / "data" / "mbpp.jsonl"


def timed_run(db: str, tasks: list, config: RunConfig, max_tokens: int) -> dict[str, Any]:
    """One run: its whole-run and steady rates (tasks per hour), the tasks every arm stored, and the completion
    tokens it generated (the same in every round of a configuration: the work is the same)."""
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
    return {
        "whole": 3600 * len(finished) / elapsed,
        "steady": steady,
        "stored": len(finished),
        "tokens": sum(r.completion_tokens for r in results),
    }


def median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def overhead_pct(local: float | None, ray: float | None) -> float | None:
    """How much slower Ray is than local processes, in per cent of the local rate's time per task."""
    return 100 * (1 - ray / local) if local and ray else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mbpp", default=str(DEFAULT_MBPP))
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
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
    names = list(configs)
    rounds: list[dict[str, dict[str, Any]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            rounds.append({})
            for name in names[r % len(names) :] + names[: r % len(names)]:  # round r starts with config r
                run = timed_run(f"sqlite:///{tmp}/{name}-{r}.db", tasks, configs[name], args.max_tokens)
                rounds[-1][name] = run
                shown = f"{run['steady']:.0f}" if run["steady"] is not None else "n/a"
                print(
                    f"round {r + 1}/{args.rounds} {name}: {run['stored']}/{len(tasks)} tasks stored, "
                    f"{run['tokens']} completion tokens; {run['whole']:.0f} tasks/h over the run, "
                    f"{shown} tasks/h after start-up",
                    file=sys.stderr,
                )
    rates = {name: median([rd[name]["whole"] for rd in rounds]) for name in names}
    steady = {name: median([rd[name]["steady"] for rd in rounds]) for name in names}
    many_rate, one_rate = steady[many], steady[one]
    speedup = many_rate / one_rate if many_rate and one_rate else None
    summary = {
        "tasks_per_hour": rates,
        "tasks_per_hour_steady": steady,
        "ray_overhead_pct": overhead_pct(steady[many], steady[ray]),
        "ray_overhead_pct_whole_run": overhead_pct(rates[many], rates[ray]),
        f"speedup_{cpus}_workers": speedup,
        "workers": cpus,
        "tasks": len(tasks),
        "cpus": cpus,
        "rounds": [
            {name: {k: run[k] for k in ("whole", "steady", "tokens")} for name, run in rd.items()} for rd in rounds
        ],
    }
    print(
        f"median of {args.rounds} rounds: ray_overhead_pct {summary['ray_overhead_pct']} (steady), "
        f"{summary['ray_overhead_pct_whole_run']} (whole run); per round (steady): "
        f"{[overhead_pct(rd[many]['steady'], rd[ray]['steady']) for rd in rounds]}",
        file=sys.stderr,
    )
    if args.json:
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
