"""`sizeup report`: every number of one or several runs in one dict, and its renderings (HTML, Markdown,
JSON, CSV). No I/O: the CLI reads the store and writes the file."""

from __future__ import annotations

import csv
import html
import io
import json
import math
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sizeup.analysis import fmt, tables
from sizeup.analysis.budget import first_pass_spend
from sizeup.analysis.compare import compare, paired
from sizeup.analysis.costs import FIGURES
from sizeup.analysis.stats import DEFAULT_RESAMPLES, DEFAULT_SEED
from sizeup.records import RunRecord, TaskResult

__all__ = ["RENDERERS", "build_report", "headline", "render_csv", "render_html", "render_json", "render_markdown"]

# How each derived figure is computed, shown beside the run record so a reader can check the method.
STATISTICS = {
    "success rate": "tasks whose kept candidate passed every test / tasks both sides finished; 95 % Wilson "
                    "score interval",
    "mean test-pass ratio": "mean over tasks of tests passed / tests; 95 % Wilson interval with n = tasks "
                            "(conservative for a score in [0, 1])",
    "difference": "small minus large success rate; 95 % paired percentile bootstrap over tasks",
    "McNemar": "exact two-sided binomial test on the discordant tasks (only one side solved)",
    "ratios": "large / small per task, median over tasks, 95 % percentile bootstrap of the median; "
              "'% less' = 100 (1 - 1 / ratio)",
    "per-task medians": "median over tasks with a 95 % percentile bootstrap interval",
    "cost per solved task": "total spend of a side on all tasks / tasks it solved",
    "equal budget": "the small side's attempt tree replayed in the order it was made (depth, then attempt "
                    "id) and cut once its running spend exceeds the large side's spend on that task; solved "
                    "only if a passing attempt is reached within it. CPU per attempt is the task's model-server "
                    "CPU apportioned by each call's gen_s, plus the attempt's sandbox CPU",
    "pass@k over nodes": "unbiased estimator 1 - C(n-c, k) / C(n, k) per task with every tree node a sample, "
                         "mean over tasks; NaN if a task has fewer than k nodes. Tree nodes are not independent "
                         "samples",
    "tests": "the task's tests are both the adaptive side's feedback and the verdict (no hidden tests)",
}


def _attempt_dict(attempt: Any) -> dict[str, Any]:
    return attempt.model_dump()


def _side_row(r: TaskResult) -> dict[str, Any]:
    return {"status": r.status, "passed": r.passed, "tests_passed": r.tests_passed, "tests_total": r.tests_total,
            "depth_reached": r.depth_reached, "model_calls": r.model_calls, "wall_s": r.wall_s,
            "cpu_s": FIGURES["cpu_s"][0](r), "peak_rss_mb": r.server.peak_rss_mb,
            "tokens": r.prompt_tokens + r.completion_tokens, "gen_s": r.gen_s,
            "best_attempt_id": r.best_attempt_id}


def _methods(results: list[TaskResult]) -> dict[str, dict[str, list[str]]]:
    """Which way each stored figure was measured, per side, as seen on the results themselves."""
    out: dict[str, dict[str, set[str]]] = {}
    for r in results:
        side = out.setdefault(r.side.value, {})
        for name, how in {**r.method, **{f"model server {k}": v for k, v in r.server.method.items()}}.items():
            side.setdefault(name, set()).add(str(how))
        usage = {a.usage_source or "not recorded" for a in r.attempts}
        side.setdefault("token counts (per call)", set()).update(usage)
    return {side: {k: sorted(v) for k, v in sorted(figs.items())} for side, figs in out.items()}


def _run_section(index: int, run: RunRecord, results: list[TaskResult], resamples: int,
                 seed: int) -> dict[str, Any]:
    cmp = compare(run, results, resamples=resamples, seed=seed)
    large, small, _ = paired(results)
    together = cmp["statistics"]["siblings_counted_together"]
    rows, trees = [], []
    for i, (a, b) in enumerate(zip(large, small, strict=True)):
        anchor = f"run{index}-task{i}"
        rows.append({"task_id": a.task_id, "anchor": anchor, "large": _side_row(a), "small": _side_row(b),
                     "small_solved_at_equal": {kind: e["per_task"][b.task_id]
                                               for kind, e in cmp["equal_budget"].items()},
                     "small_first_pass_tokens": first_pass_spend(b, "tokens", siblings_together=together)})
        trees.append({"task_id": a.task_id, "anchor": anchor,
                      "sides": {side.side.value: {"model": side.model, "status": side.status,
                                                  "best_attempt_id": side.best_attempt_id,
                                                  "attempts": [_attempt_dict(x) for x in side.attempts]}
                                for side in (a, b)}})
    record = {"run_id": run.run_id, "started_at": run.started_at, "status": run.status, "config": run.config,
              "environment": run.environment, "dataset_hash": run.environment.get("dataset_hash"),
              "tasks_in_run": len(run.task_ids), "load": run.load, "measured": _methods(results),
              "statistics": STATISTICS}
    return {"run_id": run.run_id, "anchor": f"run{index}", "comparison": cmp, "task_rows": rows, "trees": trees,
            "record": record}


def _across_runs(runs: list[tuple[RunRecord, list[TaskResult]]], sections: list[dict[str, Any]], resamples: int,
                 seed: int) -> dict[str, Any]:
    """Configurations side by side on the tasks every run finished on both sides. A run whose results are
    all on common tasks keeps the comparison its own section computed (compare is deterministic)."""
    common: set[str] | None = None
    for _, results in runs:
        tasks = {r.task_id for r in paired(results)[0]}
        common = tasks if common is None else common & tasks
    common = common or set()
    rows = []
    for (run, results), section in zip(runs, sections, strict=True):
        kept = [r for r in results if r.task_id in common]
        cmp = section["comparison"] if len(kept) == len(results) else compare(run, kept, resamples=resamples,
                                                                              seed=seed)
        rows.append({"run_id": run.run_id, "config": run.config, "comparison": cmp})
    return {"common_tasks": len(common), "rows": rows}


def build_report(runs_and_results: Iterable[tuple[RunRecord, list[TaskResult]]], *,
                 resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED) -> dict[str, Any]:
    """All the numbers of a report over one run or several (several: also compared on common tasks)."""
    runs = list(runs_and_results)
    if not runs:
        raise ValueError("a report needs at least one run")
    sections = [_run_section(i, run, results, resamples, seed) for i, (run, results) in enumerate(runs)]
    return {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "runs": sections,
        "across_runs": _across_runs(runs, sections, resamples, seed) if len(runs) > 1 else None,
    }


def headline(report: dict[str, Any]) -> str:
    """The verdict in words, one paragraph per run (prefixed by its id when there are several). Takes a
    report from build_report, or a single compare() result (what `sizeup compare` already holds)."""
    if "runs" not in report:
        return "\n".join(tables.headline_lines(report))
    several = len(report["runs"]) > 1
    blocks = []
    for section in report["runs"]:
        lines = tables.headline_lines(section["comparison"])
        blocks.append("\n".join(([f"Run {section['run_id']}:"] if several else []) + lines))
    return "\n\n".join(blocks)


# -- JSON and CSV --------------------------------------------------------------------------------------

def _plain(value: Any) -> Any:
    """JSON has no NaN: an undefined estimate becomes null, never a number."""
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def render_json(report: dict[str, Any]) -> str:
    return json.dumps(_plain(report), indent=2, ensure_ascii=False, allow_nan=False)


CSV_HEADER = ["run_id", "section", "task_id", "metric", "side", "value", "ci95_low", "ci95_high"]


def _csv_rows(section: dict[str, Any]) -> Iterable[list[Any]]:
    run_id, cmp = section["run_id"], section["comparison"]

    def row(part: str, metric: str, side: str, value: Any, ci: Any = None, task: str = "") -> list[Any]:
        value = None if fmt.missing(value) else value
        return [run_id, part, task, metric, side, value, *(ci if ci else (None, None))]
    for side in ("large", "small"):
        s = cmp["sides"][side]
        yield row("quality", "success_rate", side, s["success_rate"], s["success_rate_ci95"])
        yield row("quality", "solved", side, s["solved"])
        yield row("quality", "tasks", side, s["tasks"])
        yield row("quality", "mean_test_pass_ratio", side, s["mean_test_pass_ratio"], s["mean_test_pass_ratio_ci95"])
        for k, v in s["pass_at_k_nodes"].items():
            yield row("quality", f"pass_at_{k}_nodes", side, v)
        for name, m in s["per_task_median"].items():
            yield row("cost", f"{name}_median_per_task", side, m["median"], m["ci95"])
        for name in ("wall_s_total", "cpu_s_total", "tokens_total", "model_calls", "model_peak_rss_mb"):
            yield row("cost", name, side, s[name])
        for name, v in s["cost_per_solved"].items():
            yield row("cost", f"{name}_per_solved_task", side, v)
    q, eff = cmp["quality"], cmp["efficiency"]
    yield row("quality", "success_rate_diff", "small-large", eff["success_rate_diff"], q["success_rate_diff_ci95"])
    yield row("quality", "mcnemar_p", "small-large", q["mcnemar_p"])
    for key in ("only_large_solved", "only_small_solved", "both_solved", "neither_solved"):
        yield row("quality", key, "both", q[key])
    for name, r in eff["ratios"].items():
        yield row("ratio", f"{name}_ratio", "large/small", r["median"], r["ci95"])
    for key, value in eff.items():
        if key.endswith("_per_task"):
            yield row("ratio", key, "small vs large", value["median"], value["ci95"])
        elif key.endswith(("_faster", "_less")):  # the seed's totals-based percentages
            yield row("ratio", key, "small vs large", value)
    for kind, e in cmp["equal_budget"].items():
        yield row("equal_budget", f"small_success_rate_at_large_{kind}", "small", e["small_success_rate"],
                  e["small_success_rate_ci95"])
        yield row("equal_budget", f"mcnemar_p_at_large_{kind}", "small-large", e["mcnemar_p"])
    for depth, s in cmp["branching"]["success_if_stopped_at_depth"].items():
        yield row("branching", f"success_if_stopped_at_depth_{depth}", "small", s["success_rate"],
                  s["success_rate_ci95"])
        yield row("branching", f"trees_reaching_depth_{depth}", "small", cmp["branching"]["depth_reached"][depth])
    for t in section["task_rows"]:
        for side in ("large", "small"):
            for metric in ("passed", "tests_passed", "tests_total", "depth_reached", "model_calls", "wall_s",
                           "cpu_s", "peak_rss_mb", "tokens"):
                yield row("task", metric, side, t[side][metric], task=t["task_id"])
        for kind, solved in t["small_solved_at_equal"].items():
            yield row("task", f"solved_at_large_{kind}", "small", solved, task=t["task_id"])


def render_csv(report: dict[str, Any]) -> str:
    """Long format: one number per line, with its interval where it has one."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for section in report["runs"]:
        writer.writerows(_csv_rows(section))
    return out.getvalue()


# -- Markdown ------------------------------------------------------------------------------------------

def _md_cell(text: str) -> str:
    # Store text is untrusted: no raw HTML and no table breakage when it is pasted into a PR.
    return html.escape(str(text), quote=False).replace("|", "\\|").replace("\n", " ")


def _md_table(table: tables.Table) -> str:
    header, rows = table
    lines = ["| " + " | ".join(_md_cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def render_markdown(report: dict[str, Any]) -> str:
    parts = ["# sizeup report", "", f"Generated {report['generated_at']}.", ""]
    parts += ["## Headline", "", *[_md_cell(line) + "\n" for line in headline(report).split("\n") if line], ""]
    if report["across_runs"]:
        parts += [f"## Runs compared on their {report['across_runs']['common_tasks']} common tasks", "",
                  _md_table(tables.runs_table(report["across_runs"])), ""]
    for section in report["runs"]:
        cmp, rec = section["comparison"], section["record"]
        parts += [f"## Run {_md_cell(section['run_id'])}", "",
                  f"{cmp['tasks']} tasks on both sides ({cmp['tasks_unpaired']} finished by one side only).", "",
                  "### Comparison", "", _md_table(tables.comparison_table(cmp)), "",
                  "### Cost ratios", "", _md_table(tables.ratio_table(cmp)), "",
                  "### Equal budget", "", _md_table(tables.equal_budget_table(cmp)), "",
                  "### Branching", "", _md_table(tables.branching_table(cmp)), "",
                  _md_cell(tables.branching_summary(cmp)), "",
                  "### Tasks", "", _md_table(tables.task_table(section)), "",
                  "### Run record", "",
                  f"- dataset hash: `{_md_cell(rec['dataset_hash'])}`; status {_md_cell(rec['status'])}; "
                  f"started {_md_cell(rec['started_at'])}",
                  f"- config: `{_md_cell(json.dumps(rec['config'], sort_keys=True))}`",
                  f"- environment: `{_md_cell(json.dumps(rec['environment'], sort_keys=True))}`",
                  f"- model load (kept apart from task figures): `{_md_cell(json.dumps(rec['load'], sort_keys=True))}`",
                  f"- measured: `{_md_cell(json.dumps(rec['measured'], sort_keys=True))}`",
                  f"- bootstrap: {cmp['statistics']['bootstrap_resamples']} resamples, seed "
                  f"{cmp['statistics']['bootstrap_seed']}", ""]
    parts += ["## How each figure is computed", ""]
    parts += [f"- **{name}**: {_md_cell(text)}" for name, text in STATISTICS.items()]
    return "\n".join(parts) + "\n"


def render_html(report: dict[str, Any], *, plots: bool = True) -> str:
    """One self-contained HTML file (inline CSS, plots as data URIs, no scripts)."""
    from sizeup.analysis.report_html import render

    return render(report, plots=plots)


# `sizeup report --format X` -> the function that renders it.
RENDERERS = {"html": render_html, "md": render_markdown, "json": render_json, "csv": render_csv}
