"""How many wrong programs do a task's tests let through? Mutation analysis of MBPP's reference solutions:
the visible tests alone against visible + hidden (derived) tests.

Every reference gets a few mutants from simple AST operators (a comparison flipped, an arithmetic operator
swapped, a constant moved by one, a boolean negated, a `return` inside a branch dropped). A mutant that
gives the reference's outputs on every input tried (the visible tests' calls plus a pool of inputs mutated
from them with a seed of its own, never from the hidden tests) may be equivalent to it and is dropped. Of
the rest, the script counts those the visible tests kill (failed, error, timeout or memory exceeded; a
harness error is counted apart as unjudged), and those visible + hidden tests kill; the goal is that hidden
tests kill at least half of the mutants the visible tests let through. Everything runs in sizeup's sandbox.

    python benchmarks/test_adequacy.py [--mbpp PATH] [--limit N] [--per-task K] [--mutants M] [--json]

With --json the last line is {"mutants", "killed_visible", "killed_visible_hidden", "tasks_with_hidden",
"equivalent_dropped", "unjudged", ...}.
"""

from __future__ import annotations

import argparse
import ast
import copy
import json
import random
import sys
import time
from pathlib import Path

from sizeup.sandbox import Limits, make_sandbox
from sizeup.tasks import Task, load_mbpp
from sizeup.tasks.asserts import parse_test
from sizeup.tasks.derive import _HARNESS, CALL_BOUND_S, _parse_outputs, derive_tests, mutated_calls, with_derived
from sizeup.verdicts import Status

DEFAULT_MBPP = Path(__file__).resolve().parents[2] / "shared" / "data" / "mbpp.jsonl"
SWAPS = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.FloorDiv,
    ast.FloorDiv: ast.Mult,
    ast.Mod: ast.FloorDiv,
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
}


def mutants(code: str, rng: random.Random, wanted: int) -> list[str]:
    """Up to `wanted` distinct single-edit mutants of the code."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return []
    sites = []
    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp) and type(node.op) in SWAPS:
            sites.append(("op", node))
        elif isinstance(node, ast.Compare) and type(node.ops[0]) in SWAPS:
            sites.append(("cmp", node))
        elif isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(node.value, bool):
            sites.append(("const", node))
        elif isinstance(node, ast.If):
            sites.append(("negate", node))
            if any(isinstance(s, ast.Return) for s in node.body):
                sites.append(("drop_return", node))
    rng.shuffle(sites)
    found: list[str] = []
    for kind, site in sites:
        if len(found) >= wanted:
            break
        index = list(ast.walk(tree)).index(site)
        mutant_tree = copy.deepcopy(tree)
        node = list(ast.walk(mutant_tree))[index]
        if kind == "op":
            node.op = SWAPS[type(node.op)]()
        elif kind == "cmp":
            node.ops[0] = SWAPS[type(node.ops[0])]()
        elif kind == "const":
            node.value += rng.choice([-1, 1])
        elif kind == "negate":
            node.test = ast.UnaryOp(op=ast.Not(), operand=node.test)
        else:
            node.body = [s for s in node.body if not isinstance(s, ast.Return)] or [ast.Pass()]
        try:
            source = ast.unparse(ast.fix_missing_locations(mutant_tree))
        except (ValueError, TypeError, RecursionError):
            continue
        if source not in found and source != ast.unparse(tree):
            found.append(source)
    return found


def outputs(sandbox, program: str, setup: str, calls: list[str]) -> list[str | None]:
    limits = Limits(timeout_s=30, test_timeout_s=30, max_output_bytes=4 * 1024 * 1024)
    text = "\n".join([program, setup, _HARNESS.format(calls=json.dumps(calls), bound=CALL_BOUND_S)])
    return _parse_outputs(str(sandbox.run(text, [], limits).stdout), len(calls))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mbpp", default=str(DEFAULT_MBPP))
    parser.add_argument("--limit", type=int, help="the first N tasks only")
    parser.add_argument("--per-task", type=int, default=10, help="derived hidden tests per task")
    parser.add_argument("--mutants", type=int, default=4, help="mutants per reference")
    parser.add_argument("--pool", type=int, default=40, help="extra inputs per task for the equivalence check")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    tasks = [t for t in load_mbpp(args.mbpp) if t.reference and t.entry_point][: args.limit]
    started = time.perf_counter()
    counts = {
        "mutants": 0,
        "equivalent_dropped": 0,
        "unjudged": 0,
        "killed_visible": 0,
        "killed_visible_hidden": 0,
        "tasks_with_hidden": 0,
    }
    limits = Limits(timeout_s=10, test_timeout_s=2)
    with make_sandbox("auto") as sandbox:
        report = derive_tests(tasks, sandbox, per_task=args.per_task, seed=0)
        for task, derived in zip(tasks, report.derived, strict=True):
            task = with_derived(task, derived, 0)
            if task.hidden_tests:
                counts["tasks_with_hidden"] += 1
            counts_for(task, sandbox, limits, args, counts)
    elapsed = time.perf_counter() - started
    survivors = counts["mutants"] - counts["killed_visible"]
    caught = counts["killed_visible_hidden"] - counts["killed_visible"]
    summary = {
        **counts,
        "tasks": len(tasks),
        "seconds": round(elapsed, 1),
        "kill_rate_visible": counts["killed_visible"] / counts["mutants"] if counts["mutants"] else None,
        "kill_rate_visible_hidden": counts["killed_visible_hidden"] / counts["mutants"] if counts["mutants"] else None,
        "visible_survivors_killed_by_hidden": caught / survivors if survivors else None,
    }
    print(
        f"{len(tasks)} tasks, {counts['tasks_with_hidden']} with hidden tests; {counts['mutants']} mutants kept "
        f"({counts['equivalent_dropped']} equivalent on every input tried, dropped; {counts['unjudged']} "
        "unjudged); killed by the visible tests "
        f"{counts['killed_visible']}, by visible + hidden {counts['killed_visible_hidden']}; hidden tests "
        f"killed {caught} of the {survivors} that survived the visible ones ({elapsed:.0f} s)",
        file=sys.stderr,
    )
    if args.json:
        print(json.dumps(summary))
    return 0


# A mutant is killed by a verdict the program earned; a harness error judges nothing and kills nothing.
KILLS = {Status.FAILED, Status.ERROR, Status.TIMEOUT, Status.MEMORY_EXCEEDED}


def counts_for(task: Task, sandbox, limits: Limits, args: argparse.Namespace, counts: dict[str, int]) -> None:
    rng = random.Random(f"adequacy:{task.task_id}")
    # The equivalence pool is independent of the hidden tests: grown from the visible tests' calls alone,
    # with its own seed. Grown from the hidden tests' calls, it would drop as "equivalent" exactly the
    # mutants the hidden tests miss and so flatter them.
    seeds = [p for p in (parse_test(t, task.entry_point) for t in task.tests) if p]
    pool = [call for _, call in mutated_calls(seeds, random.Random(f"pool:{task.task_id}"), args.pool, set())]
    pool += [s.call for s in seeds]
    reference = outputs(sandbox, task.reference or "", task.setup_code, pool) if pool else []
    for mutant in mutants(task.reference or "", rng, args.mutants):
        if pool and outputs(sandbox, mutant, task.setup_code, pool) == reference:
            counts["equivalent_dropped"] += 1
            continue
        visible = sandbox.run(mutant, task.tests, limits, task.setup_code).status
        hidden = sandbox.run(mutant, task.hidden_tests, limits, task.setup_code).status if task.hidden_tests else None
        if Status.HARNESS_ERROR in (visible, hidden):
            counts["unjudged"] += 1
            continue
        counts["mutants"] += 1
        counts["killed_visible"] += visible in KILLS
        counts["killed_visible_hidden"] += visible in KILLS or hidden in KILLS


if __name__ == "__main__":
    sys.exit(main())
