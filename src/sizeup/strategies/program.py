"""How a model's reply becomes the program that is run: as each dataset's official harness assembles it.

* MBPP (and built-in tasks): the code taken from the reply; the sandbox runs the task's setup code and
  then each assert after it (Austin et al. 2021: code + test_setup_code + asserts).
* HumanEval and any task with a stub: the official harness runs prompt + completion + tests, so the
  prompt's preamble (its imports and helper definitions before the entry point) is always there. A reply
  that redefines the entry point gets the preamble in front of it (a chat model that rewrites
  `def f(xs: List[int])` without `from typing import List` must not fail for it: the official harness
  passes it, and EvalPlus's sanitizer keeps the prompt's imports for the same reason); the reply's own
  definitions come after the preamble's, so they win. A reply that is only the body gets the whole stub.
* A base model continues the stub as a document: the stub plus its continuation is the reply.
"""

from __future__ import annotations

import ast
import re

from sizeup.models.extract import extract_code
from sizeup.models.types import PromptStyle
from sizeup.tasks.types import Task


def defines(code: str, name: str) -> bool:
    """Whether the code defines `name` as a function (a text search: the code need not parse)."""
    return re.search(rf"^\s*(async\s+)?def\s+{re.escape(name)}\s*\(", code, re.MULTILINE) is not None


def stub_preamble(stub: str, entry_point: str) -> str:
    """The stub's lines before the entry point's definition (and its decorators): imports, helpers."""
    try:
        module = ast.parse(stub)
    except SyntaxError:
        return ""
    for node in module.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == entry_point:
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            preamble = "\n".join(stub.splitlines()[: first - 1]).strip("\n")
            return f"{preamble}\n\n" if preamble.strip() else ""
    return ""


def program_from(task: Task, code: str) -> str:
    """The program the sandbox runs for the code taken from a reply (see the module docstring)."""
    if not task.stub or not task.entry_point:
        return code
    if defines(code, task.entry_point):
        return stub_preamble(task.stub, task.entry_point) + code
    return task.stub + code


def candidate_program(task: Task, reply: str, style: PromptStyle) -> str:
    """The program for a model's whole reply: the code extracted from it, assembled for the task."""
    if style is PromptStyle.COMPLETION:
        # A base model continues the document: its reply starts inside the stub's function.
        return program_from(task, extract_code((task.stub or "") + reply, task.entry_point))
    return program_from(task, extract_code(reply, task.entry_point))
