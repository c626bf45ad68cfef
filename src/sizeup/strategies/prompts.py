"""Prompts for a first attempt and for a repair, in chat and completion (base-model) shapes."""

from __future__ import annotations

from sizeup.models.types import Prompt
from sizeup.tasks.types import Task

# A base model continuing the solution block tends to go on with its own asserts and prints; stopping
# at the first top-level one saves the tokens (and the time) without cutting the function.
STOP = ("```", "\nassert ", "\nprint(", "\nif __name__", "\n###")

SYSTEM = (
    "You are an expert Python programmer. Reply with a complete, self-contained Python solution "
    "in a single ```python code block."
)


def _tests_block(task: Task) -> str:
    return "\n".join(task.tests)


def first_attempt(task: Task) -> Prompt:
    """The standard MBPP-style prompt (Austin et al. 2021): the task text plus the tests to pass."""
    if task.stub:  # HumanEval: complete the given signature and docstring
        user = f"Complete the following Python function.\n```python\n{task.stub}```"
        doc = f"### Complete this function\n```python\n{task.stub}"
        return Prompt(SYSTEM, user, doc, stop=STOP)
    user = f"You are an expert Python programmer, and here is your task: {task.prompt}"
    doc = f"### Task\n{task.prompt}\n"
    if task.tests:
        user += f" Your code should pass these tests:\n\n{_tests_block(task)}"
        doc += f"\n### Tests\n```python\n{_tests_block(task)}\n```\n"
    doc += "\n### Solution\n```python\n"
    return Prompt(SYSTEM, user, doc, stop=STOP)


def repair(task: Task, code: str, feedback: str) -> Prompt:
    """Ask for a fix: the parent's code and what failed ("fix these parts")."""
    base = first_attempt(task)
    user = (
        f"{base.user}\n\nThis attempt does not pass yet:\n```python\n{code}\n```\n"
        f"Test results:\n{feedback}\n\nFix the parts that fail. Reply with the full corrected code "
        "in a single ```python code block."
    )
    if task.stub:
        head = f"### Complete this function\n```python\n{task.stub}```\n"
    else:  # the task and its tests, without the first attempt's "### Solution" opening
        head = base.completion.rsplit("### Solution", 1)[0]
    doc = (
        f"{head}\n### Attempt\n```python\n{code}\n```\n\n### Test results\n{feedback}\n\n"
        "### Fixed solution\n```python\n"
    )
    return Prompt(SYSTEM, user, doc, stop=STOP)


class Prompter:
    """The prompts a run asks with: the standard ones above. A protocol (`--protocol`) swaps in another."""

    name = "standard"

    def first_attempt(self, task: Task) -> Prompt:
        return first_attempt(task)

    def repair(self, task: Task, code: str, feedback: str) -> Prompt:
        return repair(task, code, feedback)

    def clean(self, reply: str) -> str:
        """The reply as code extraction should see it."""
        return reply


STANDARD = Prompter()
BEGIN, DONE = "[BEGIN]", "[DONE]"


class MbppThreeShot(Prompter):
    """The MBPP paper's protocol (Austin et al. 2021): three solved tasks as shots (MBPP 2, 3 and 4), each as
    its text, its three tests and its code between [BEGIN] and [DONE], then the task's text and tests and
    "[BEGIN]"; the model's code ends at "[DONE]". Meant for base models; chat models get the same text as
    their message. The shots are never evaluated, and only the test split (task ids 11-510) is run."""

    name = "mbpp-3shot"
    SHOT_IDS = ("2", "3", "4")
    TEST_SPLIT = range(11, 511)

    def __init__(self, shots: list[Task]):
        self.shots = shots

    @staticmethod
    def _block(task: Task) -> str:
        return (
            f"You are an expert Python programmer, and here is your task: {task.prompt} Your code should pass "
            f"these tests:\n\n{_tests_block(task)}\n"
        )

    def first_attempt(self, task: Task) -> Prompt:
        shots = "".join(f"{self._block(s)}{BEGIN}\n{(s.reference or '').strip()}\n{DONE}\n" for s in self.shots)
        text = f"{shots}{self._block(task)}{BEGIN}\n"
        return Prompt("", text, text, stop=(DONE,))

    def clean(self, reply: str) -> str:
        kept = reply.split(DONE, 1)[0]
        return "\n".join(line for line in kept.splitlines() if line.strip() != BEGIN)
