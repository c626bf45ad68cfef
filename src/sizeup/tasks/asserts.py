"""Tests as a call and an expectation, wherever they parse: the shape held-out tests are derived from, and
the shape a verdict can be judged in without the expectation entering the candidate's process.

Forms understood (CALL is a call of a plain name; HumanEval's `candidate = f` line is followed):
    assert CALL == EXPECTED            assert EXPECTED == CALL
    assert CALL is True / is False     assert CALL / assert not CALL
    assert math.isclose(CALL, EXPECTED[, rel_tol=.., abs_tol=..])
    assert set(CALL) == set(EXPECTED)  assert set(CALL) == EXPECTED
    assert abs(CALL - EXPECTED) < TOL  (or <= TOL)
Anything else (several statements, loops, helper variables) is None: such a test is run as it is.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Check(StrEnum):
    """How a call's value is compared with the expectation."""

    EQUAL = "equal"
    TRUE = "true"  # `is True` (strict) or a bare `assert CALL` (truthy): see `strict`
    FALSE = "false"
    CLOSE = "close"  # math.isclose with the test's own tolerances
    SET_EQUAL = "set_equal"
    ABS_WITHIN = "abs_within"  # abs(value - expected) < tol (or <=)


@dataclass(frozen=True)
class ParsedTest:
    """One test as a call of `func` and what its value must satisfy."""

    func: str  # the called name as the task's code defines it (HumanEval's `candidate` resolved)
    call: str  # source of the call, with `func` as the callee
    args: tuple[str, ...]  # source of each positional argument
    kwargs: tuple[tuple[str, str], ...]  # (name, source) of each keyword argument
    check: Check
    expected: str = ""  # source of the expected value ("" for TRUE/FALSE)
    strict: bool = True  # TRUE/FALSE: `is True`/`is False` (strict) or truthiness (`assert CALL`)
    tolerance: dict[str, str] = field(default_factory=dict)  # CLOSE: rel_tol/abs_tol; ABS_WITHIN: tol, op
    imports: str = ""  # the test's own import statements before its assert (`import math`), run before the call

    def literal_args(self) -> tuple[list[Any], dict[str, Any]] | None:
        """The arguments as Python values, when every one is a literal."""
        try:
            return (
                [ast.literal_eval(a) for a in self.args],
                {name: ast.literal_eval(value) for name, value in self.kwargs},
            )
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            return None

    def expected_value(self) -> tuple[bool, Any]:
        """(True, value) when the expectation is a literal."""
        try:
            return True, ast.literal_eval(self.expected)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            return False, None

    def to_source(self, call: str | None = None, expected: str | None = None) -> str:
        """The assert in its own form, for another call and expectation (derived tests)."""
        body = self._assert(call, expected)
        return f"{self.imports}\n{body}" if self.imports else body

    def _assert(self, call: str | None, expected: str | None) -> str:
        call = self.call if call is None else call
        expected = self.expected if expected is None else expected
        if self.check is Check.EQUAL:
            return f"assert {call} == {expected}"
        if self.check is Check.TRUE:
            return f"assert {call} is True" if self.strict else f"assert {call}"
        if self.check is Check.FALSE:
            return f"assert {call} is False" if self.strict else f"assert not {call}"
        if self.check is Check.SET_EQUAL:
            return f"assert set({call}) == set({expected})"
        if self.check is Check.CLOSE:
            options = "".join(f", {k}={v}" for k, v in self.tolerance.items())
            return f"assert math.isclose({call}, {expected}{options})"
        op = self.tolerance.get("op", "<")
        return f"assert abs({call} - {expected}) {op} {self.tolerance['tol']}"


def parse_test(source: str, entry_point: str | None = None) -> ParsedTest | None:
    """The test as a call and an expectation, or None when it is not one of the forms above."""
    try:
        body = ast.parse(source.strip()).body
    except SyntaxError:
        return None
    aliases: dict[str, str] = {}
    imports: list[str] = []
    # HumanEval's split checks start with `candidate = entry_point`, and a test may import what it uses.
    while body and (_is_alias(body[0]) or isinstance(body[0], ast.Import | ast.ImportFrom)):
        statement = body.pop(0)
        if isinstance(statement, ast.Assign):
            aliases[statement.targets[0].id] = statement.value.id  # type: ignore[attr-defined]
        else:
            imports.append(ast.unparse(statement))
    # `assert CALL == X, "message"`: the message only names the failure; the check is the same.
    if len(body) != 1 or not isinstance(body[0], ast.Assert):
        return None
    parsed = _parse_condition(body[0].test, aliases, entry_point)
    if parsed is None or not imports:
        return parsed
    return ParsedTest(
        parsed.func,
        parsed.call,
        parsed.args,
        parsed.kwargs,
        parsed.check,
        parsed.expected,
        parsed.strict,
        parsed.tolerance,
        "\n".join(imports),
    )


def _is_alias(statement: ast.stmt) -> bool:
    return (
        isinstance(statement, ast.Assign)
        and len(statement.targets) == 1
        and isinstance(statement.targets[0], ast.Name)
        and isinstance(statement.value, ast.Name)
    )


def _parse_condition(test: ast.expr, aliases: dict[str, str], entry: str | None) -> ParsedTest | None:
    def call_of(node: ast.expr) -> ParsedTest | None:
        return _call(node, aliases, entry)

    if isinstance(test, ast.Compare) and len(test.ops) == 1:
        left, op, right = test.left, test.ops[0], test.comparators[0]
        if isinstance(op, ast.Eq):
            for call_side, other in ((left, right), (right, left)):
                found = call_of(call_side)
                if found is not None and call_of(other) is None:
                    return _with(found, Check.EQUAL, expected=ast.unparse(other))
            sets = _set_equal(left, right, aliases, entry)
            if sets is not None:
                return sets
        if isinstance(op, ast.Is) and isinstance(right, ast.Constant) and right.value in (True, False):
            found = call_of(left)
            if found is not None:
                return _with(found, Check.TRUE if right.value else Check.FALSE)
        if isinstance(op, ast.Lt | ast.LtE):
            return _abs_within(left, right, "<" if isinstance(op, ast.Lt) else "<=", aliases, entry)
        return None
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        found = call_of(test.operand)
        return _with(found, Check.FALSE, strict=False) if found is not None else None
    if isinstance(test, ast.Call) and _is_isclose(test.func) and len(test.args) == 2:
        found = call_of(test.args[0])
        if found is not None and call_of(test.args[1]) is None:
            tolerance = {k.arg: ast.unparse(k.value) for k in test.keywords if k.arg in ("rel_tol", "abs_tol")}
            if len(tolerance) != len(test.keywords):
                return None
            return _with(found, Check.CLOSE, expected=ast.unparse(test.args[1]), tolerance=tolerance)
        return None
    found = call_of(test)
    return _with(found, Check.TRUE, strict=False) if found is not None else None


def _with(
    found: ParsedTest, check: Check, *, expected: str = "", strict: bool = True, tolerance: dict[str, str] | None = None
) -> ParsedTest:
    return ParsedTest(found.func, found.call, found.args, found.kwargs, check, expected, strict, tolerance or {})


def _call(node: ast.expr, aliases: dict[str, str], entry: str | None) -> ParsedTest | None:
    """A call of a plain name (the task's function) whose arguments call nothing of the task's."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
        return None
    name = aliases.get(node.func.id, node.func.id)
    if entry is not None and name != entry:
        return None
    if any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords):
        return None
    renamed = ast.Call(func=ast.Name(id=name, ctx=ast.Load()), args=node.args, keywords=node.keywords)
    return ParsedTest(
        name,
        ast.unparse(renamed),
        tuple(ast.unparse(a) for a in node.args),
        tuple((k.arg, ast.unparse(k.value)) for k in node.keywords if k.arg),
        Check.EQUAL,
    )


def _set_equal(left: ast.expr, right: ast.expr, aliases: dict[str, str], entry: str | None) -> ParsedTest | None:
    def inner(node: ast.expr) -> ast.expr | None:
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "set"
            and len(node.args) == 1
            and not node.keywords
        ):
            return node.args[0]
        return None

    for call_side, other in ((left, right), (right, left)):
        wrapped = inner(call_side)
        found = _call(wrapped, aliases, entry) if wrapped is not None else None
        if found is not None:
            expected = inner(other) or other
            if _call(expected, aliases, entry) is None:
                return _with(found, Check.SET_EQUAL, expected=ast.unparse(expected))
    return None


def _abs_within(
    left: ast.expr, right: ast.expr, op: str, aliases: dict[str, str], entry: str | None
) -> ParsedTest | None:
    if not (
        isinstance(left, ast.Call)
        and isinstance(left.func, ast.Name)
        and left.func.id == "abs"
        and len(left.args) == 1
        and isinstance(left.args[0], ast.BinOp)
        and isinstance(left.args[0].op, ast.Sub)
    ):
        return None
    difference = left.args[0]
    found = _call(difference.left, aliases, entry)
    if found is None or _call(difference.right, aliases, entry) is not None:
        return None
    return _with(
        found, Check.ABS_WITHIN, expected=ast.unparse(difference.right), tolerance={"tol": ast.unparse(right), "op": op}
    )


def _is_isclose(func: ast.expr) -> bool:
    return (
        isinstance(func, ast.Attribute)
        and func.attr == "isclose"
        and isinstance(func.value, ast.Name)
        and func.value.id == "math"
    ) or (isinstance(func, ast.Name) and func.id == "isclose")
