"""How tests/data/recorded_replies.jsonl was made: real replies of the bundled models, taken from stored
sizeup runs (embedded provider) on HumanEval and MBPP.

    python tests/data/make_recorded_replies.py --db sqlite:///acc.db RUN_ID [RUN_ID ...] > recorded_replies.jsonl

Per run it keeps every passing attempt and as many failing ones (up to --per-run replies, alternating
models and tasks), one reply per task and model, and flags HumanEval replies whose code uses a name
the prompt imports without importing it (`drops_prompt_imports`): the case a harness that runs the
reply alone gets wrong.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import verdict_agreement as reference  # noqa: E402 - benchmarks/ is no package

from sizeup.records import Status  # noqa: E402
from sizeup.store import open_store  # noqa: E402
from sizeup.tasks import Task  # noqa: E402


def imported_names(stub: str) -> tuple[list[str], set[str]]:
    lines = [line for line in stub.splitlines() if line.startswith(("import ", "from "))]
    names: set[str] = set()
    for line in lines:
        head, _, tail = line.partition(" import ")
        names |= {n.strip().split(" as ")[-1] for n in (tail or head.removeprefix("import ")).split(",")}
    return lines, {n for n in names if n}


def drops_prompt_imports(task: Task, code: str) -> bool:
    lines, names = imported_names(task.stub or "")
    if not lines or any(line in code for line in lines):
        return False
    return any(re.search(rf"\b{re.escape(name)}\b", code) for name in names)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("run_ids", nargs="+")
    parser.add_argument("--db", required=True)
    parser.add_argument("--per-run", type=int, default=40)
    args = parser.parse_args()
    with open_store(args.db) as store:
        for run_id in args.run_ids:
            run = store.get_run(run_id)
            assert run is not None, run_id
            results = store.results(run_id)
            tasks = {t.task_id: t for t in store.list_tasks(task_ids=sorted({r.task_id for r in results}))}
            passing, failing, seen = [], [], set()
            for result in results:
                task = tasks[result.task_id]
                for attempt in result.attempts:
                    if not attempt.response or (task.task_id, attempt.model) in seen:
                        continue
                    if attempt.status is Status.HARNESS_ERROR:
                        continue
                    seen.add((task.task_id, attempt.model))
                    style = reference.attempt_style(run, attempt)
                    code = reference.answer_code(task, attempt.response, style)
                    record = {
                        "task_id": task.task_id,
                        "source": task.source,
                        "model": attempt.model,
                        "style": style.value,
                        "response": attempt.response,
                    }
                    if task.source == "humaneval" and drops_prompt_imports(task, code):
                        record["drops_prompt_imports"] = True
                    (passing if attempt.status is Status.PASSED else failing).append(record)
            dropping = [r for r in failing if r.get("drops_prompt_imports")][:3]
            rest = [r for r in failing if not r.get("drops_prompt_imports")]
            keep = passing[: args.per_run // 2] + dropping
            keep += rest[: max(0, args.per_run - len(keep))]
            for record in keep:
                print(json.dumps(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
