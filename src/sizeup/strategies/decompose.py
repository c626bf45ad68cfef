"""`decompose`: divide the task into helper functions, implement each on its own, combine them, and repair
the part that fails (the seed's "dividing complex tasks into manageable subtasks with appropriate feedback
loops ... combine results for final solution").

1. plan: one call lists up to `max_helpers` helpers as `def name(args): purpose` lines (no bodies);
2. implement: one call per helper writes it (at most `parallel` at once);
3. compose: one call writes the task's function using the helpers; helpers + composition are run against
   the visible tests (the only node kinds that run: plans and helpers are not programs);
4. repair: a failure whose traceback points into a helper repairs that helper, any other repairs the
   composition; after `replan_after` repairs in a row that pass no more tests than before, it plans again.
It stops at a full visible pass, after `max_calls` calls, or at the arm's budget. A plan that cannot be used
(no helper, a line that does not parse, a helper named like the task's function or twice) falls back to one
direct attempt, and the node says why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pydantic import Field

from sizeup.models.extract import drop_definitions, extract_code, strip_thinking
from sizeup.models.types import Prompt, PromptStyle
from sizeup.records import Attempt
from sizeup.strategies.base import EXHAUSTED, NO_TESTS, SOLVED, Job, Strategy, StrategyParams, solved
from sizeup.strategies.program import program_from
from sizeup.strategies.prompts import STOP, SYSTEM
from sizeup.strategies.registry import register
from sizeup.tasks.types import Task

_HELPER = re.compile(r"^[\s*#>`\-\d.)]*def\s+([A-Za-z_]\w*)\s*\(([^)]*)\)\s*(?:->\s*[^:]+)?:\s*(.*)$")


class DecomposeParams(StrategyParams):
    max_helpers: int = Field(default=3, ge=1, description="helpers a plan may list")
    max_calls: int = Field(default=12, ge=2, description="model calls per task at most")
    replan_after: int = Field(default=2, ge=1, description="repairs without progress before planning again")
    parallel: int = Field(default=1, ge=1, description="helpers implemented at once")
    temperature: float = Field(default=0.8, ge=0, description="sampling temperature of repairs and re-plans")


@dataclass(frozen=True)
class Helper:
    name: str
    args: str
    purpose: str

    @property
    def signature(self) -> str:
        return f"def {self.name}({self.args})"


class PlanError(ValueError):
    """A plan that cannot be used; the message says why (it is stored on the fallback node)."""


def parse_plan(reply: str, entry_point: str | None, max_helpers: int) -> list[Helper]:
    """The helpers a plan lists, or PlanError."""
    helpers: list[Helper] = []
    for line in strip_thinking(reply).splitlines():
        found = _HELPER.match(line.strip())
        if found:
            helpers.append(Helper(found.group(1), found.group(2).strip(), found.group(3).strip() or "helper"))
    if not helpers:
        raise PlanError("the plan lists no helper as `def name(args): purpose`")
    names = [h.name for h in helpers]
    if entry_point and entry_point in names:
        raise PlanError(f"the plan names a helper {entry_point}, the task's own function")
    if len(set(names)) != len(names):
        raise PlanError("the plan names a helper twice")
    return helpers[:max_helpers]


@dataclass
class _Design:
    """The current decomposition: its plan node, helpers and their code, the composition."""

    plan: Attempt
    helpers: list[Helper]
    code: dict[str, str] = field(default_factory=dict)
    composition: str = ""

    def names(self, entry_point: str | None = None) -> set[str]:
        """The helpers' names, and the entry point's when given."""
        return {h.name for h in self.helpers} | ({entry_point} if entry_point else set())

    def program(self, task: Task) -> str:
        parts = [self.code.get(h.name, "") for h in self.helpers] + [self.composition]
        return program_from(task, "\n\n".join(p for p in parts if p.strip()))

    def line_owner(self, task: Task, line: int) -> str | None:
        """Which helper (name) holds a line of the assembled program; None: the composition or elsewhere."""
        program = self.program(task).splitlines()
        owner, current = None, None
        for number, text in enumerate(program, start=1):
            found = re.match(r"def\s+([A-Za-z_]\w*)\s*\(", text)
            if found:
                current = found.group(1)
            if number == line:
                owner = current
                break
        return owner if owner in {h.name for h in self.helpers} else None


@register
class Decompose(Strategy):
    """Plan helpers, implement each, compose them, repair the failing part; re-plan when repairs stall."""

    name = "decompose"
    Params = DecomposeParams
    params: DecomposeParams

    def search(self, task: Task) -> tuple[list[Attempt], str]:
        attempts: list[Attempt] = []
        program_node: Attempt | None = None
        design: _Design | None = None
        stalled, plans = 0, 0
        self.spend.own_calls = self.params.max_calls  # its own limit, beside the arm's budget
        while self.spend.calls < self.params.max_calls:
            if program_node is None or design is None or stalled >= self.params.replan_after:
                design, made, cut = self._design(task, plans)
                plans += 1
                attempts.extend(made)
                if cut or design is None:
                    return attempts, self._end(attempts, task, cut)
                program_node, stalled = next(a for a in reversed(made) if a.executed), 0
            else:
                repaired, cut = self._repair(task, design, program_node)
                attempts.extend(repaired)
                if cut or not repaired:
                    return attempts, self._end(attempts, task, cut)
                stalled = stalled + 1 if repaired[0].tests_passed <= program_node.tests_passed else 0
                program_node = repaired[0] if repaired[0].tests_passed >= program_node.tests_passed else program_node
            if solved(attempts) or not task.tests:
                return attempts, self._end(attempts, task, None)
        return attempts, self._end(attempts, task, None)

    def _end(self, attempts: list[Attempt], task: Task, cut: str | None) -> str:
        if solved(attempts):
            return SOLVED
        if not task.tests:
            return NO_TESTS
        return cut or EXHAUSTED

    def _design(self, task: Task, plans: int) -> tuple[_Design | None, list[Attempt], str | None]:
        """A plan, its helpers and a composition, run; or the direct fallback when the plan is unusable."""
        p = self.params
        temperature = 0.0 if plans == 0 else p.temperature
        plan_job = Job(
            self._plan_prompt(task), str(plans), None, p.seed + 100 * plans, temperature, "plan", execute=False
        )
        planned, cut = self.run_jobs(task, [plan_job], 1)
        if not planned:
            return None, [], cut
        plan = planned[0]
        made = [plan]
        if cut or plan.error:
            return None, made, cut
        try:
            helpers = parse_plan(plan.response, task.entry_point, p.max_helpers)
        except PlanError as err:
            plan.note = f"{err}: falling back to a direct attempt"
            direct = Job(self.prompter.first_attempt(task), f"{plan.attempt_id}.direct", plan, p.seed, 0.0, "generate")
            fallback, cut = self.run_jobs(task, [direct], 1)
            made += fallback
            if fallback:
                fallback[0].note = f"direct attempt: {err}"
                return _Design(plan, [], composition=fallback[0].code), made, cut
            return None, made, cut
        design = _Design(plan, helpers)
        jobs = [
            Job(
                self._implement_prompt(task, h),
                f"{plan.attempt_id}.{h.name}",
                plan,
                p.seed + i + 1,
                temperature,
                "implement",
                execute=False,
            )
            for i, h in enumerate(helpers)
        ]
        parts, cut = self.run_jobs(task, jobs, p.parallel)
        made += parts
        for helper, part in zip(helpers, parts, strict=False):
            part.code = self._helper_code(helper, part, design, task.entry_point) if not part.error else ""
            design.code[helper.name] = part.code
        if cut or any(part.error for part in parts):
            return None, made, cut
        compose = Job(
            self._compose_prompt(task, design),
            f"{plan.attempt_id}.compose",
            plan,
            p.seed + len(helpers) + 1,
            temperature,
            "compose",
            execute=False,
        )
        composed, cut = self.run_jobs(task, [compose], 1)
        if not composed:
            return None, made, cut
        node = composed[0]
        made.append(node)
        if node.error:
            return None, made, cut
        design.composition = drop_definitions(extract_code(node.response, task.entry_point), design.names())
        self._run(task, design, node)
        return design, made, cut

    def _helper_code(self, helper: Helper, part: Attempt, design: _Design, entry_point: str | None) -> str:
        """A helper's code from its implement reply. A base model continues a document that ends inside the
        helper's `def` line, so its reply is the body alone: the signature goes back in front."""
        reply = part.response
        if part.model and self.client_named(part.model).style is PromptStyle.COMPLETION:
            reply = f"{helper.signature}:\n{reply}"
        return drop_definitions(extract_code(reply, helper.name), design.names(entry_point) - {helper.name})

    def _repair(self, task: Task, design: _Design, parent: Attempt) -> tuple[list[Attempt], str | None]:
        """One repair of the part the failure points at: a helper named by the traceback, else the composition."""
        target = self._blame(task, design, parent)
        count = self.spend.calls
        if target is None:
            prompt = self.prompter.repair(task, design.program(task), parent.feedback)
            job = Job(
                prompt,
                f"{parent.attempt_id}.{count}",
                parent,
                self.params.seed + count,
                self.params.temperature,
                "repair",
                execute=False,
            )
        else:
            helper = next(h for h in design.helpers if h.name == target)
            job = Job(
                self._fix_helper_prompt(task, helper, design.code[target], parent.feedback),
                f"{parent.attempt_id}.{count}",
                parent,
                self.params.seed + count,
                self.params.temperature,
                "repair",
                execute=False,
            )
        made, cut = self.run_jobs(task, [job], 1)
        if not made or made[0].error:
            return made, cut
        node = made[0]
        before = dict(design.code), design.composition
        # Each part keeps its own definition only: a reply that repeats other parts carries copies of them that,
        # defined later in the program, would override the parts a later repair fixes.
        if target is None:  # the whole program came back: its entry point is the new composition
            code = extract_code(node.response, task.entry_point)
            fixed = {
                h.name: drop_definitions(code, design.names(task.entry_point) - {h.name})
                for h in design.helpers
                if f"def {h.name}" in code
            }
            design.code.update(fixed)
            design.composition = drop_definitions(code, design.names())
        else:
            design.code[target] = drop_definitions(
                extract_code(node.response, target), design.names(task.entry_point) - {target}
            )
        node.note = f"repairs {target or 'the composition'}"
        self._run(task, design, node)
        if node.tests_passed < parent.tests_passed:  # worse: the next repair starts from the parent's parts again
            design.code, design.composition = before
        return [node], cut

    def _run(self, task: Task, design: _Design, node: Attempt) -> None:
        node.code, node.executed = design.program(task), True
        self.execute(task, node)

    def _blame(self, task: Task, design: _Design, node: Attempt) -> str | None:
        for line in re.findall(r"\(line (\d+)\)", node.feedback):
            owner = design.line_owner(task, int(line))
            if owner is not None:
                return owner
        return None

    # -- prompts ---------------------------------------------------------------------------------------------

    def _tests(self, task: Task) -> str:
        return "\n".join(task.tests)

    def _plan_prompt(self, task: Task) -> Prompt:
        k = self.params.max_helpers
        text = (
            f"Task: {task.prompt.strip()}\nThe function to write: {task.entry_point or 'the solution'}\n"
            f"Tests:\n{self._tests(task)}\n\nList 1 to {k} helper functions that would make this function "
            f"easy to write, one per line, as `def name(args): what it does`. Do not write their bodies."
        )
        return Prompt(
            "You plan Python code: you list helper functions, one per line.",
            text,
            f"### Task\n{task.prompt.strip()}\n\n### Helper functions (one per line, no bodies)\n",
            stop=("\n\n###", "```"),
        )

    def _implement_prompt(self, task: Task, helper: Helper) -> Prompt:
        text = (
            f"Write the Python function `{helper.signature}`: {helper.purpose}. It is a helper for this task: "
            f"{task.prompt.strip()}\nReply with only this function in a single ```python code block."
        )
        return Prompt(SYSTEM, text, f"### Helper: {helper.purpose}\n```python\n{helper.signature}:\n", stop=STOP)

    def _compose_prompt(self, task: Task, design: _Design) -> Prompt:
        helpers = "\n\n".join(design.code[h.name] for h in design.helpers if design.code.get(h.name))
        text = (
            f"Task: {task.prompt.strip()}\nTests:\n{self._tests(task)}\n\nThese helper functions are already "
            f"defined:\n```python\n{helpers}\n```\nWrite the function `{task.entry_point}` using them. Reply "
            "with only that function in a single ```python code block."
        )
        doc = f"### Task\n{task.prompt.strip()}\n\n### Helpers\n```python\n{helpers}\n```\n\n### Solution\n```python\n"
        return Prompt(SYSTEM, text, doc, stop=STOP)

    def _fix_helper_prompt(self, task: Task, helper: Helper, code: str, feedback: str) -> Prompt:
        text = (
            f"This helper for the task ({task.prompt.strip()}) fails:\n```python\n{code}\n```\nTest results:\n"
            f"{feedback}\n\nFix `{helper.name}` ({helper.purpose}). Reply with only the corrected function in a "
            "single ```python code block."
        )
        doc = (
            f"### Helper: {helper.purpose}\n```python\n{code}\n```\n### Test results\n{feedback}\n\n"
            f"### Fixed helper\n```python\n"
        )
        return Prompt(SYSTEM, text, doc, stop=STOP)
