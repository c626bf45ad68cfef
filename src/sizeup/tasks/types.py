"""The task record every loader produces and every strategy consumes."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Task(BaseModel):
    """One programming task.

    `tests` are independent Python snippets (usually one `assert` each) run after the candidate's code;
    `setup_code` is test setup: it runs after the candidate and before the tests (MBPP's
    `test_setup_code` builds fixtures from classes the solution defines). A task with no tests can still be
    run, but its verdict is "unverified", never "passed".

    `tests` are the visible tests: shown in prompts, run for feedback. `hidden_tests` are never in a prompt
    or a feedback string; a kept answer's verdict covers both (tasks/heldout.py says where they come from).
    """

    task_id: str
    source: str  # "mbpp", "humaneval", "builtin", "freetext", or a file name
    prompt: str  # the natural-language description shown to the model
    entry_point: str | None = None  # function the tests call, when known
    tests: list[str] = Field(default_factory=list)
    setup_code: str = ""
    challenge_tests: list[str] = Field(default_factory=list)
    hidden_tests: list[str] = Field(default_factory=list)
    derived_tests: list[str] = Field(default_factory=list)  # those of hidden_tests that tasks/derive.py made
    # How the hidden tests were made: their sources, the derivation's seed and count, or why there are none.
    hidden_note: str = ""
    reference: str | None = None  # a known-good solution (MBPP `code`, HumanEval prompt+solution)
    # HumanEval-style tasks give the model a code stub to complete (signature + docstring).
    stub: str | None = None


class TaskFormatError(ValueError):
    """Bad input: names the file, the 1-based line and the field that is wrong."""

    def __init__(self, path: str, line: int, field: str | None, problem: str):
        self.path, self.line, self.field, self.problem = path, line, field, problem
        where = f"{path}:{line}"
        what = f"field '{field}': {problem}" if field else problem
        super().__init__(f"{where}: {what}")
