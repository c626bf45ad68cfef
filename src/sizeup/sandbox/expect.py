"""Parent-compared tests: the candidate's process gets only the call of a test; the expectation stays here.

A test that parses as a call and an expectation (sizeup.tasks.asserts) whose expected value and tolerances
are literals is sent to the candidate as `{"call": SOURCE}`, SOURCE being the call inside whatever wrapper
the test applies to it (`bool(...)` for `assert CALL`, `set(...)` for `set(CALL) == ...`: see `sent_call`).
The driver evaluates the call (with the test's own timeout) and sends the value back as plain data
(driver._encode: builtin types only, subclasses read through their base type); the parent decodes it and
compares it with the expectation, which never entered the candidate's process. A candidate that walks
frames, scans the heap, forges the result channel or reads the job file can at worst make the call return
another value: it cannot pass a test it does not satisfy. (Unless it can read the expectation from a file
it reaches: the isolated backend hides site-packages, where datasets get installed; the process backend
hides nothing.) Every other test runs in the candidate's process as before (`in-process`), and says so.
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from sizeup.tasks.asserts import Check, ParsedTest, parse_test
from sizeup.verdicts import TestOutcome

PARENT, IN_PROCESS = "parent-compared", "in-process"
_MAX_DEPTH = 200
_SHOWN = 120  # characters of a value shown in feedback


@dataclass(frozen=True)
class Expectation:
    test: ParsedTest
    expected: Any  # the literal value (None for TRUE/FALSE checks)
    tolerance: dict[str, Any]  # literal tolerances (CLOSE: rel_tol/abs_tol; ABS_WITHIN: tol)


def expectation(source: str) -> Expectation | None:
    """The test's expectation when it can be judged outside the candidate's process, else None."""
    parsed = parse_test(source)
    if parsed is None:
        return None
    try:
        tolerance = {k: ast.literal_eval(v) for k, v in parsed.tolerance.items() if k != "op"}
        expected = None if parsed.check in (Check.TRUE, Check.FALSE) else ast.literal_eval(parsed.expected)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    if any(isinstance(v, bool) or not isinstance(v, int | float) for v in tolerance.values()):
        return None
    return Expectation(parsed, expected, tolerance)


def sent_call(test: ParsedTest) -> str:
    """The call as the candidate's process evaluates it: inside the wrapper the test itself applies to it, so
    what comes back is the plain data the comparison needs. `assert CALL` and `assert not CALL` look only at
    the value's truth (a map, a filter, a re.Match or a generator passes them), so the program evaluates
    `bool(CALL)`; `set(CALL) == set(EXPECTED)` looks only at the set of the items (a generator or a
    dict_keys passes it), so `set(CALL)`. Both run in the program's namespace, as the whole test would."""
    if test.check in (Check.TRUE, Check.FALSE) and not test.strict:
        return f"bool({test.call})"
    if test.check is Check.SET_EQUAL:
        return f"set({test.call})"
    return test.call


def job_tests(tests: list[str]) -> tuple[list[str | dict[str, str]], list[Expectation | None]]:
    """What the candidate's process receives for each test (a call, or the whole test), and the
    expectations the parent keeps."""
    expectations = [expectation(t) for t in tests]
    sent: list[str | dict[str, str]] = []
    for test, e in zip(tests, expectations, strict=True):
        if e is None:
            sent.append(test)
        else:
            call = sent_call(e.test)
            sent.append({"call": call, "imports": e.test.imports} if e.test.imports else {"call": call})
    return sent, expectations


class Unreadable(ValueError):
    """A value sent back that is not the driver's plain-data encoding."""


def decode(raw: Any, depth: int = 0) -> Any:
    """The driver's encoding back into Python values, accepting nothing else."""
    if depth > _MAX_DEPTH:
        raise Unreadable("nested too deep")
    if raw is None or isinstance(raw, bool):
        return raw
    if not (isinstance(raw, dict) and len(raw) == 1):
        raise Unreadable(f"not an encoded value: {str(raw)[:60]}")
    ((kind, body),) = raw.items()
    if kind == "i" and isinstance(body, str):
        return int(body, 16)  # hexadecimal: linear to parse, whatever the size
    if kind == "f" and isinstance(body, str):
        return float(body)
    if kind == "c" and isinstance(body, list) and len(body) == 2:
        return complex(float(body[0]), float(body[1]))
    if kind == "q" and isinstance(body, list) and len(body) == 2 and all(isinstance(p, str) for p in body):
        numerator, denominator = int(body[0], 16), int(body[1], 16)
        if denominator <= 0:
            raise Unreadable("a fraction's denominator is not positive")
        return Fraction(numerator, denominator)
    if kind == "s" and isinstance(body, str):
        return body
    if kind == "b" and isinstance(body, str):
        return bytes.fromhex(body)
    if kind in ("l", "t", "S", "F") and isinstance(body, list):
        items = [decode(item, depth + 1) for item in body]
        return {"l": list, "t": tuple, "S": set, "F": frozenset}[kind](items)
    if kind == "d" and isinstance(body, list):
        return {decode(k, depth + 1): decode(v, depth + 1) for k, v in body}
    raise Unreadable(f"unknown encoding {kind!r}")


def judge_value(expected: Expectation, raw: Any) -> tuple[TestOutcome, str]:
    """The outcome of a parent-compared test from the value the call returned."""
    try:
        value = decode(raw)
    except (Unreadable, ValueError, TypeError, OverflowError, RecursionError) as exc:
        return TestOutcome.ERROR, f"unreadable value from the program: {exc}"
    check, want, tol = expected.test.check, expected.expected, expected.tolerance
    try:
        if check is Check.EQUAL:
            ok = value == want
        elif check is Check.TRUE:
            ok = value is True if expected.test.strict else bool(value)
        elif check is Check.FALSE:
            ok = value is False if expected.test.strict else not value
        elif check is Check.SET_EQUAL:
            ok = set(value) == set(want)
        elif check is Check.CLOSE:
            ok = math.isclose(value, want, **tol)
        else:
            op = expected.test.tolerance.get("op", "<")
            gap = abs(value - want)
            ok = gap < tol["tol"] if op == "<" else gap <= tol["tol"]
    except Exception as exc:  # the comparison itself failed (unhashable, not a number): as assert would
        return TestOutcome.ERROR, f"{type(exc).__name__}: {exc}"[:300]
    if ok:
        return TestOutcome.PASSED, ""
    return TestOutcome.FAILED, f"AssertionError: the call returned {show(value)}"


def show(value: Any) -> str:
    """A value for feedback, cut after _SHOWN characters. Never raises: repr refuses an int past
    sys.get_int_max_str_digits() (4300 digits), alone or inside a container, and that is still a wrong answer
    to report, not a failure of sizeup's."""
    try:
        shown = repr(value)
    except Exception as exc:
        if isinstance(value, int):
            digits = int(abs(value).bit_length() * math.log10(2)) + 1
            return f"an int of about {digits} digits"
        return f"a {type(value).__name__} that repr cannot show ({type(exc).__name__}: {exc})"[: _SHOWN * 2]
    return f"{shown[:_SHOWN]}{'...' if len(shown) > _SHOWN else ''}"
