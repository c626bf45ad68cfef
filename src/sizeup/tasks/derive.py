"""Held-out tests derived from a task's own tests, with its reference solution as the oracle (EvalPlus's
idea, done offline: no MBPP+/HumanEval+ package is available here).

Each test that parses as a call with literal arguments (tasks/asserts.py) is a seed. Its arguments are
mutated type-aware and conservatively (an int moves by a little and keeps its sign, a string gains, loses
or changes a character, a tuple keeps its length, a list may also lose or repeat an element, a dict changes
a value, ...), so that new inputs stay inside the task's domain as far as can be told without a contract.
The reference runs on every new input **in the sandbox**, twice; an input is kept only when the reference
returns without raising within a time bound, gives the same result both times, and the result's repr
round-trips through ast.literal_eval. The assert is written in the seed's own form (tolerances kept; a
float result compared to within 1e-9 rather than exactly).
"""

from __future__ import annotations

import ast
import json
import math
import random
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sizeup.tasks.asserts import Check, ParsedTest, parse_test
from sizeup.tasks.types import Task

CALL_BOUND_S = 1.0  # a reference call slower than this on a mutated input is not a test
CANDIDATES_PER_TEST = 4  # mutated inputs tried per wanted test

# Runs inside the sandbox after the reference: each call under an alarm, one JSON line per call.
_HARNESS = """
import json as _json, signal as _signal
def _slow(*_args):
    raise TimeoutError("slow")
_signal.signal(_signal.SIGALRM, _slow)
for _i, _source in enumerate(_json.loads({calls!r})):
    try:
        _signal.setitimer(_signal.ITIMER_REAL, {bound})
        _value = eval(_source)
        _signal.setitimer(_signal.ITIMER_REAL, 0)
        print(_json.dumps({{"i": _i, "repr": repr(_value)}}), flush=True)
    except BaseException as _error:
        _signal.setitimer(_signal.ITIMER_REAL, 0)
        print(_json.dumps({{"i": _i, "error": type(_error).__name__}}), flush=True)
"""


@dataclass
class Derived:
    task_id: str
    tests: list[str] = field(default_factory=list)
    why_none: str = ""  # when no test could be derived: the reason


@dataclass
class DeriveReport:
    per_task: int
    seed: int
    derived: list[Derived] = field(default_factory=list)
    seconds: float = 0.0

    def with_at_least(self, n: int) -> int:
        return sum(len(d.tests) >= n for d in self.derived)

    def reasons(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for d in self.derived:
            if d.why_none:
                out[d.why_none] = out.get(d.why_none, 0) + 1
        return out


# -- mutation ------------------------------------------------------------------------------------------


def mutate(value: Any, rng: random.Random) -> Any:
    """A nearby value of the same type and shape."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        step = rng.choice([1, 1, 2, 3, 5, 10])
        moved = value + rng.choice([-step, step])
        return abs(moved) if value >= 0 else moved  # a count, an index, a size stays non-negative
    if isinstance(value, float):
        return round(value * rng.choice([0.5, 0.9, 1.1, 1.5, 2.0]) + rng.choice([0.0, 0.25, -0.25]), 6)
    if isinstance(value, str):
        return _mutate_str(value, rng)
    if isinstance(value, tuple):
        if not value:
            return value
        i = rng.randrange(len(value))
        return value[:i] + (mutate(value[i], rng),) + value[i + 1 :]
    if isinstance(value, list):
        return _mutate_list(value, rng)
    if isinstance(value, dict):
        if not value:
            return value
        key = rng.choice(list(value))
        return {**value, key: mutate(value[key], rng)}
    if isinstance(value, set | frozenset):
        items = sorted(value, key=repr)  # a set's order follows the process's string hash seed: not the seed's
        if items and rng.random() < 0.5:
            items.remove(rng.choice(items))
        elif items:
            items.append(mutate(rng.choice(items), rng))
        return type(value)(items)
    return value


def _mutate_str(text: str, rng: random.Random) -> str:
    if not text:
        return text
    i = rng.randrange(len(text))
    kind = rng.choice(["drop", "repeat", "case", "swap", "insert"])
    if kind == "drop" and len(text) > 1:
        return text[:i] + text[i + 1 :]
    if kind == "repeat":
        return text[:i] + text[i] + text[i:]
    if kind == "case" and text[i].isalpha():
        return text[:i] + text[i].swapcase() + text[i + 1 :]
    if kind == "swap" and len(text) > 1:
        j = rng.randrange(len(text))
        chars = list(text)
        chars[i], chars[j] = chars[j], chars[i]
        return "".join(chars)
    return text[:i] + rng.choice(text) + text[i:]  # insert a character the string already has


def _mutate_list(items: list[Any], rng: random.Random) -> list[Any]:
    if not items:
        return items
    i = rng.randrange(len(items))
    kind = rng.choice(["element", "element", "drop", "repeat", "reverse"])
    if kind == "drop" and len(items) > 1:
        return items[:i] + items[i + 1 :]
    if kind == "repeat":
        return items[:i] + [items[i]] + items[i:]
    if kind == "reverse" and len(items) > 1:
        return list(reversed(items))
    return items[:i] + [mutate(items[i], rng)] + items[i + 1 :]


def mutated_calls(
    seeds: list[ParsedTest], rng: random.Random, wanted: int, seen: set[str]
) -> list[tuple[ParsedTest, str]]:
    """Up to `wanted` new (seed, call source) pairs, each a seed's call with one or two arguments mutated."""
    found: list[tuple[ParsedTest, str]] = []
    usable = [(s, lit) for s in seeds if (lit := s.literal_args()) is not None and (lit[0] or lit[1])]
    attempts = 0
    while usable and len(found) < wanted and attempts < wanted * 20:
        attempts += 1
        seed, (args, kwargs) = rng.choice(usable)
        args, kwargs = list(args), dict(kwargs)
        for _ in range(rng.choice([1, 1, 2])):
            if args and (not kwargs or rng.random() < 0.8):
                i = rng.randrange(len(args))
                args[i] = mutate(args[i], rng)
            elif kwargs:
                key = rng.choice(list(kwargs))
                kwargs[key] = mutate(kwargs[key], rng)
        parts = [stable_repr(a) for a in args] + [f"{k}={stable_repr(v)}" for k, v in kwargs.items()]
        call = f"{seed.func}({', '.join(parts)})"
        if call not in seen and _round_trips(args, kwargs):
            seen.add(call)
            found.append((seed, call))
    return found


def stable_repr(value: Any) -> str:
    """repr, with sets written in sorted order: a set's own order follows the process's string hash seed, and
    the same seed must give the same test text in every process."""
    if isinstance(value, set | frozenset):
        inner = ", ".join(sorted(stable_repr(v) for v in value))
        if isinstance(value, frozenset):
            return f"frozenset({{{inner}}})" if value else "frozenset()"
        return f"{{{inner}}}" if value else "set()"
    if isinstance(value, list):
        return "[" + ", ".join(stable_repr(v) for v in value) + "]"
    if isinstance(value, tuple):
        return "(" + ", ".join(stable_repr(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{stable_repr(k)}: {stable_repr(v)}" for k, v in value.items()) + "}"
    return repr(value)


def _round_trips(args: list[Any], kwargs: dict[str, Any]) -> bool:
    try:
        return all(ast.literal_eval(repr(v)) == v for v in [*args, *kwargs.values()])
    except (ValueError, SyntaxError):
        return False


# -- asserts from the oracle's answers ---------------------------------------------------------------------


def assert_for(seed: ParsedTest, call: str, value: Any, text: str) -> str | None:
    """The seed's form for a new call and the reference's value (None if the form cannot hold it)."""
    if seed.check in (Check.TRUE, Check.FALSE):
        if not isinstance(value, bool) and seed.strict:
            return None
        check = Check.TRUE if value else Check.FALSE
        return ParsedTest(seed.func, call, (), (), check, "", seed.strict).to_source()
    if seed.check is Check.EQUAL and isinstance(value, float) and not isinstance(value, bool):
        if not math.isfinite(value):
            return None
        return f"import math\nassert math.isclose({call}, {text}, rel_tol=1e-9, abs_tol=1e-12)"
    source = seed.to_source(call=call, expected=text)
    needs_math = seed.check is Check.CLOSE and "import math" not in seed.imports
    return f"import math\n{source}" if needs_math else source


def _parse_outputs(stdout: str, n: int) -> list[str | None]:
    out: list[str | None] = [None] * n
    for line in stdout.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("i"), int) and 0 <= record["i"] < n:
            out[record["i"]] = record.get("repr") if "repr" in record else None
    return out


def derive_for(task: Task, run: Callable[[str], str], per_task: int, seed: int) -> Derived:
    """Derived tests of one task; `run(program)` runs a program in the sandbox and returns its stdout."""
    if not task.reference:
        return Derived(task.task_id, why_none="no reference solution")
    if not task.entry_point:
        return Derived(task.task_id, why_none="no entry point")
    # Seeds: the task's own tests, never earlier derived ones, so deriving again with a seed gives the same.
    derived_before = set(task.derived_tests)
    existing = [*task.tests, *(t for t in task.hidden_tests if t not in derived_before)]
    seeds = [p for p in (parse_test(t, task.entry_point) for t in existing) if p is not None]
    if not seeds:
        return Derived(task.task_id, why_none="no test parses as a call and an expectation")
    if not any(s.literal_args() is not None for s in seeds):
        return Derived(task.task_id, why_none="no test calls with literal arguments")
    rng = random.Random(f"{seed}:{task.task_id}")
    seen = {s.call.replace(" ", "") for s in seeds} | {s.call for s in seeds}
    candidates = mutated_calls(seeds, rng, per_task * CANDIDATES_PER_TEST, seen)
    if not candidates:
        return Derived(task.task_id, why_none="no argument could be mutated")
    program = "\n".join(
        [
            task.reference,
            task.setup_code,
            _HARNESS.format(calls=json.dumps([c for _, c in candidates]), bound=CALL_BOUND_S),
        ]
    )
    first, second = (_parse_outputs(run(program), len(candidates)) for _ in range(2))
    tests: list[str] = []
    for (seed_test, call), a, b in zip(candidates, first, second, strict=True):
        if a is None or a != b:  # raised, too slow, or not the same twice
            continue
        try:
            value = ast.literal_eval(a)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue  # a repr that does not round-trip (an object, a generator, ...)
        # Round-trips, compared as values: a set's repr is ordered by the sandbox's string hashes, not this
        # process's, so the text may differ while the value is the same.
        if ast.literal_eval(repr(value)) != value:
            continue
        source = assert_for(seed_test, call, value, a)
        if source is not None and source not in tests:
            tests.append(source)
        if len(tests) == per_task:
            break
    why = "" if tests else "the reference raised, was slow or gave no literal on every mutated input"
    return Derived(task.task_id, tests, why)


def derive_tests(
    tasks: Iterable[Task],
    sandbox: Any,
    *,
    per_task: int = 10,
    seed: int = 0,
    workers: int = 2,
    progress: Callable[[Derived], None] | None = None,
) -> DeriveReport:
    """Derived tests for every task, the reference run in `sandbox` (a sizeup Sandbox)."""
    import time

    from sizeup.sandbox.types import Limits

    limits = Limits(timeout_s=60, test_timeout_s=60, max_output_bytes=4 * 1024 * 1024)
    started = time.perf_counter()

    def run(program: str) -> str:
        return str(sandbox.run(program, [], limits).stdout)

    def one(task: Task) -> Derived:
        derived = derive_for(task, run, per_task, seed)
        if progress is not None:
            progress(derived)
        return derived

    with ThreadPoolExecutor(max_workers=workers) as pool:
        derived = list(pool.map(one, list(tasks)))
    return DeriveReport(per_task, seed, derived, time.perf_counter() - started)


def with_derived(task: Task, derived: Derived, seed: int) -> Task:
    """The task with its derived tests among the hidden ones (replacing any derived before)."""
    base = [t for t in task.hidden_tests if t not in _previous(task)]
    base = [t for t in base if t not in derived.tests]
    note = (
        f"derived: {len(derived.tests)} tests from mutated inputs, the reference as oracle (seed {seed})"
        if derived.tests
        else f"derived: none ({derived.why_none})"
    )
    kept = [part for part in task.hidden_note.split("; ") if part and not part.startswith("derived:")]
    return task.model_copy(
        update={
            "hidden_tests": [*base, *derived.tests],
            "derived_tests": list(derived.tests),
            "hidden_note": "; ".join([*kept, note]),
        }
    )


def _previous(task: Task) -> set[str]:
    return set(task.derived_tests)
