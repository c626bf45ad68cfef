"""What does a container cost per candidate? The docker backend, warm pool and cold, beside the process backend.

Every backend runs the same MBPP reference solutions against their tests, one sample at a time, in this process:
ms per sample is the median over rounds of (wall time of the round) / samples. Warm: the pool's start-up is
measured apart (startup_s) and not in the samples. Cold (pool_size=0): every candidate gets a container of its
own, created, started, provisioned and removed, and the round's time includes waiting for the last removals.

    DOCKER_HOST=unix:///run/sizeup-podman/podman.sock python benchmarks/docker_bench.py [--samples N]
        [--rounds R] [--image IMAGE] [--pool-size P] [--mbpp PATH] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from sizeup.sandbox import ProcessSandbox, Sandbox
from sizeup.sandbox.docker import DockerSandbox, DockerUnavailable
from sizeup.tasks import Task, load_mbpp

DEFAULT_MBPP = Path(__file__).resolve().parents[2] / "shared" / "data" / "mbpp.jsonl"


def one_round(make: Callable[[], Sandbox], tasks: list[Task]) -> tuple[float, int, list]:
    """(ms per sample, passed, executions) for one round on a sandbox made fresh by `make` (warm: its start-up
    is outside the timing; the close, which waits for a cold sandbox's removals, is inside)."""
    sandbox: Sandbox = make()
    start = time.perf_counter()
    try:
        runs = [sandbox.run(task.reference, task.tests, setup_code=task.setup_code) for task in tasks]
    finally:
        sandbox.close()
    ms = (time.perf_counter() - start) * 1000 / len(tasks)
    return ms, sum(run.status.value == "passed" for run in runs), runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mbpp", type=Path, default=DEFAULT_MBPP)
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--image", default="sizeup-python:3.11")
    parser.add_argument("--pool-size", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not args.mbpp.is_file():
        sys.exit(f"docker_bench: no MBPP file at {args.mbpp} (use --mbpp PATH)")
    tasks = [task for task in load_mbpp(args.mbpp) if task.reference][: args.samples]

    startups: list[float] = []

    def warm() -> DockerSandbox:
        sandbox = DockerSandbox(args.image, pool_size=args.pool_size)
        sandbox.run("x = 1", ["assert x == 1"])  # as a long run would be: past its first execution
        startups.append(sandbox.startup_s)
        return sandbox

    backends = {
        "process": ProcessSandbox,
        "docker-warm": warm,
        "docker-cold": lambda: DockerSandbox(args.image, pool_size=0),
    }
    try:
        DockerSandbox(args.image, pool_size=0).close()
    except DockerUnavailable as err:
        sys.exit(f"docker_bench: {err}")

    print(f"{len(tasks)} MBPP references, {args.rounds} rounds, one sample at a time", file=sys.stderr)
    results: dict[str, dict] = {}
    for name, make in backends.items():
        rounds = [one_round(make, tasks) for _ in range(args.rounds)]
        runs = rounds[-1][2]
        results[name] = {
            "ms_per_sample": statistics.median(ms for ms, _, _ in rounds),
            "passed": rounds[-1][1],
            "median_run_wall_ms": statistics.median(run.wall_s for run in runs) * 1000,
            "median_cpu_ms": statistics.median(run.cpu_s for run in runs) * 1000,
            "containers_started": sum(run.figures.get("containers_started", 0) for run in runs),
        }
        row = results[name]
        print(
            f"  {name:12} {row['ms_per_sample']:8.1f} ms/sample  ({row['passed']}/{len(tasks)} passed; median "
            f"run {row['median_run_wall_ms']:.1f} ms, cpu {row['median_cpu_ms']:.1f} ms, "
            f"{row['containers_started']:.0f} containers started)",
            file=sys.stderr,
        )
    base = results["process"]["ms_per_sample"]
    ratios = {name: row["ms_per_sample"] / base for name, row in results.items()}
    for name, ratio in ratios.items():
        print(f"  {name:12} ratio to process: {ratio:.2f}", file=sys.stderr)
    startup_s = statistics.median(startups)
    print(f"  warm pool start-up ({args.pool_size} containers): {startup_s:.2f} s, not in the samples", file=sys.stderr)
    if args.json:
        print(
            json.dumps(
                {
                    "samples": len(tasks),
                    "rounds": args.rounds,
                    "image": args.image,
                    "pool_size": args.pool_size,
                    "pool_startup_s": round(startup_s, 3),
                    "ms_per_sample": {k: round(v["ms_per_sample"], 2) for k, v in results.items()},
                    "ratio_to_process": {k: round(v, 2) for k, v in ratios.items()},
                    "passed": {k: v["passed"] for k, v in results.items()},
                }
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
