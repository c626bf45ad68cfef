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
from sizeup.analysis.compare import arm_names, common_tasks, compare
from sizeup.analysis.costs import figure
from sizeup.analysis.stats import DEFAULT_RESAMPLES, DEFAULT_SEED
from sizeup.records import RunRecord, TaskResult

__all__ = ["RENDERERS", "build_report", "headline", "render_csv", "render_html", "render_json", "render_markdown"]

# How each derived figure is computed, shown beside the run record so a reader can check the method.
STATISTICS = {
    "success rate": "tasks whose kept candidate passed every test / tasks compared (every arm's on the tasks all "
    "arms finished, each pair's on the tasks both finished); 95 % Wilson score interval; n/a before any task",
    "visible-test success, overfit": "visible: kept candidates that passed the tests the search was shown / tasks; "
    "overfit: kept candidates that passed the visible tests and failed hidden ones / tasks with hidden tests; "
    "95 % Wilson intervals; n/a in a run whose tasks have no hidden tests (there, visible is the verdict)",
    "mean test-pass ratio": "mean over tasks of tests passed / tests; 95 % Wilson interval with n = tasks "
    "(conservative for a score in [0, 1])",
    "difference": "arm minus baseline success rate; 95 % paired percentile bootstrap over tasks",
    "McNemar": "exact two-sided binomial test on the discordant tasks (only one of the pair solved)",
    "ratios": "baseline / arm per task, median over tasks, 95 % percentile bootstrap of the median; "
    "'% less' = 100 (1 - 1 / ratio)",
    "per-task medians": "median over tasks with a 95 % percentile bootstrap interval",
    "cost per solved task": "total spend of an arm on all tasks / tasks it solved",
    "equal budget": "an arm's attempt tree replayed in the order it was made and cut once its running spend "
    "exceeds the baseline's spend on that task; solved only if a held-out passing attempt is reached within it: "
    "an attempt's own verdict is on the visible tests only, so where the task has hidden tests only the kept "
    "answer, judged on them, can count, and only if it passed them (an overfit node never counts, and success at "
    "equal cost never exceeds success as run). CPU per attempt is the task's model-server CPU apportioned by "
    "each call's gen_s, plus the attempt's sandbox CPU. Tasks whose spend was not measured on either side (an "
    "unwatched model server's CPU, unreported prompt tokens) are left out and counted",
    "branching": "depth of the first passing node, success had the tree stopped at a depth, the first passing "
    "node's kind: a node passes as in equal budget (held out: with hidden tests only the kept answer can)",
    "enforced budget": "an arm run with a budget stops expanding before a call that could take it over: calls "
    "exactly, completion tokens by reserving each call's max_tokens, model-server CPU "
    "seconds by reserving the mean CPU of the calls so far; each result stores what stopped "
    "it (stopped_by)",
    "pass@k over nodes": "unbiased estimator 1 - C(n-c, k) / C(n, k) per task with every tree node a sample, "
    "mean over tasks; n/a if a task has fewer than k nodes. Tree nodes are not independent samples. c counts "
    "held-out passing nodes: with hidden tests only the kept answer was judged on them, so c is at most 1 and "
    "the figure is a lower bound",
    "not measured": "a figure whose method was stored as not measurable is n/a, never 0: model-server CPU and "
    "memory of a server sizeup could not watch (a remote one), tokens where the server reported no prompt "
    "tokens; totals of such a figure are n/a when any task lacks it, medians and ratios use the tasks that have it",
    "recommendation": "the cheapest configuration with a measured cost whose success meets the target at the "
    "point estimate, and at a one-sided Wilson lower bound at the confidence asked for (z = 1.645 for 95 %); "
    "the interval shown beside it is two-sided. Configurations whose cost was never measured are named, not "
    "ranked",
    "tests": "held out where tasks have hidden tests (protocol visible-feedback/hidden-verdict): the visible tests "
    "steer every search (prompts, feedback, stopping, which answer is kept) and the kept answer is then judged "
    "on visible + hidden tests, never shown to any model, so success is held-out success; overfit counts kept "
    "answers that pass the visible tests and fail hidden ones. Without hidden tests (tests-are-feedback) the "
    "tests are both the feedback and the verdict",
}


NODE_NOTE = (
    "The run's results came from several machines. Every arm of a task ran on one worker, so each task's arms "
    "are compared on the same node; costs are grouped by node here rather than pooled across hardware."
)


def _attempt_dict(attempt: Any) -> dict[str, Any]:
    return attempt.model_dump()


def _side_row(r: TaskResult) -> dict[str, Any]:
    return {
        "status": r.status,
        "passed": r.passed,
        "tests_passed": r.tests_passed,
        "tests_total": r.tests_total,
        "depth_reached": r.depth_reached,
        "model_calls": r.model_calls,
        "wall_s": r.wall_s,
        "cpu_s": figure(r, "cpu_s"),  # None where not measured
        "peak_rss_mb": figure(r, "peak_rss_mb"),
        "tokens": figure(r, "tokens"),
        "gen_s": r.gen_s,
        "best_attempt_id": r.best_attempt_id,
    }


def _methods(results: list[TaskResult]) -> dict[str, dict[str, list[str]]]:
    """Which way each stored figure was measured, per arm, as seen on the results themselves."""
    out: dict[str, dict[str, set[str]]] = {}
    for r in results:
        arm = out.setdefault(r.arm, {})
        for name, how in {**r.method, **{f"model server {k}": v for k, v in r.server.method.items()}}.items():
            arm.setdefault(name, set()).add(str(how))
        usage = {a.usage_source or "not recorded" for a in r.attempts}
        arm.setdefault("token counts (per call)", set()).update(usage)
    return {arm: {k: sorted(v) for k, v in sorted(figs.items())} for arm, figs in out.items()}


def _run_section(
    index: int, run: RunRecord, results: list[TaskResult], baseline: str | None, resamples: int, seed: int
) -> dict[str, Any]:
    cmp = compare(run, results, baseline=baseline, resamples=resamples, seed=seed)
    names = [arm["name"] for arm in cmp["arms"]]
    by_arm = {name: {r.task_id: r for r in results if r.arm == name} for name in names}
    first_pass = {d["arm"]: d["statistics"]["siblings_counted_together"] for d in cmp["pair_details"]}
    rows, trees = [], []
    for i, task_id in enumerate(common_tasks(results, names)):
        anchor = f"run{index}-task{i}"
        arms = {name: by_arm[name][task_id] for name in names}
        equal = {
            d["arm"]: {kind: e["per_task"][task_id] for kind, e in d["equal_budget"].items()}
            for d in cmp["pair_details"]
            if task_id in d["equal_budget"]["tokens"]["per_task"]
        }
        rows.append(
            {
                "task_id": task_id,
                "anchor": anchor,
                "arms": {n: _side_row(r) for n, r in arms.items()},
                "solved_at_equal": equal,
                "first_pass_tokens": {
                    n: first_pass_spend(arms[n], "tokens", siblings_together=together)
                    for n, together in first_pass.items()
                },
            }
        )
        trees.append(
            {
                "task_id": task_id,
                "anchor": anchor,
                "sides": {
                    n: {
                        "model": r.model,
                        "status": r.status,
                        "best_attempt_id": r.best_attempt_id,
                        "attempts": [_attempt_dict(x) for x in r.attempts],
                    }
                    for n, r in arms.items()
                },
            }
        )
    record = {
        "run_id": run.run_id,
        "started_at": run.started_at,
        "status": run.status,
        "config": run.config,
        "arms": [arm.model_dump(exclude_none=True) for arm in run.arms],
        "environment": run.environment,
        "dataset_hash": run.environment.get("dataset_hash"),
        "tasks_in_run": len(run.task_ids),
        "load": run.load,
        "measured": _methods(results),
        "statistics": STATISTICS,
    }
    return {
        "run_id": run.run_id,
        "anchor": f"run{index}",
        "comparison": cmp,
        "task_rows": rows,
        "trees": trees,
        "record": record,
    }


def _across_runs(
    runs: list[tuple[RunRecord, list[TaskResult]]],
    sections: list[dict[str, Any]],
    baseline: str | None,
    resamples: int,
    seed: int,
) -> dict[str, Any]:
    """Configurations side by side on the tasks every run finished on every arm. A run whose results are
    all on common tasks keeps the comparison its own section computed (compare is deterministic)."""
    common: set[str] | None = None
    for run, results in runs:
        tasks = set(common_tasks(results, arm_names(run, results)))
        common = tasks if common is None else common & tasks
    common = common or set()
    rows = []
    for (run, results), section in zip(runs, sections, strict=True):
        kept = [r for r in results if r.task_id in common]
        cmp = (
            section["comparison"]
            if len(kept) == len(results)
            else compare(run, kept, baseline=baseline, resamples=resamples, seed=seed)
        )
        rows.append({"run_id": run.run_id, "config": run.config, "comparison": cmp})
    return {"common_tasks": len(common), "rows": rows}


def build_report(
    runs_and_results: Iterable[tuple[RunRecord, list[TaskResult]]],
    *,
    baseline: str | None = None,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> dict[str, Any]:
    """All the numbers of a report over one run or several (several: also compared on common tasks)."""
    runs = list(runs_and_results)
    if not runs:
        raise ValueError("a report needs at least one run")
    sections = [_run_section(i, run, results, baseline, resamples, seed) for i, (run, results) in enumerate(runs)]
    return {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "runs": sections,
        "across_runs": _across_runs(runs, sections, baseline, resamples, seed) if len(runs) > 1 else None,
        "decision": _decision(runs),
    }


DECISION_TARGETS = (0.25, 0.5, 0.75)


def _decision(runs: list[tuple[RunRecord, list[TaskResult]]]) -> dict[str, Any] | None:
    """Every configuration of the report on its common tasks: the Pareto front of success against CPU-seconds,
    and the cheapest configuration for 25, 50 and 75 % success."""
    from sizeup.analysis.decide import recommend

    try:
        choices = {f"{t:.2f}": recommend(runs, t, "cpu") for t in DECISION_TARGETS}
    except ValueError:  # no task every configuration finished
        return None
    first = next(iter(choices.values()))
    return {
        "cost": "cpu",
        "tasks": first["tasks"],
        "configurations": first["configurations"],
        "front": [row["config"] for row in first["front"]],
        "not_measured": first["not_measured"],
        "targets": {t: {k: c[k] for k in ("choice_point", "choice_bound", "explanation")} for t, c in choices.items()},
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

    for s in cmp["arms"]:
        name = s["name"]
        yield row("quality", "success_rate", name, s["success_rate"], s["success_rate_ci95"])
        yield row("quality", "solved", name, s["solved"])
        yield row("quality", "tasks", name, s["tasks"])
        yield row("quality", "mean_test_pass_ratio", name, s["mean_test_pass_ratio"], s["mean_test_pass_ratio_ci95"])
        for k, v in s["pass_at_k_nodes"].items():
            yield row("quality", f"pass_at_{k}_nodes", name, v)
        for metric, m in s["per_task_median"].items():
            yield row("cost", f"{metric}_median_per_task", name, m["median"], m["ci95"])
        for metric in ("wall_s_total", "cpu_s_total", "tokens_total", "model_calls", "model_peak_rss_mb"):
            yield row("cost", metric, name, s[metric])
        for metric, v in s["cost_per_solved"].items():
            yield row("cost", f"{metric}_per_solved_task", name, v)
    for d in cmp["pair_details"]:
        b, a = d["baseline"], d["arm"]
        q, eff = d["quality"], d["efficiency"]
        yield row("quality", "success_rate_diff", f"{a}-{b}", eff["success_rate_diff"], q["success_rate_diff_ci95"])
        yield row("quality", "mcnemar_p", f"{a}-{b}", q["mcnemar_p"])
        for key in (f"only_{b}_solved", f"only_{a}_solved", "both_solved", "neither_solved"):
            yield row("quality", key, f"{a}-{b}", q[key])
        for metric, r in eff["ratios"].items():
            yield row("ratio", f"{metric}_ratio", f"{b}/{a}", r["median"], r["ci95"])
        for key, value in eff.items():
            if key.endswith("_per_task"):
                yield row("ratio", key, f"{a} vs {b}", value["median"], value["ci95"])
            elif key.endswith(("_faster", "_less")):  # the seed's totals-based percentages
                yield row("ratio", key, f"{a} vs {b}", value)
        for kind, e in d["equal_budget"].items():
            yield row(
                "equal_budget",
                f"{a}_success_rate_at_{b}_{kind}",
                a,
                e[f"{a}_success_rate"],
                e[f"{a}_success_rate_ci95"],
            )
            yield row("equal_budget", f"mcnemar_p_at_{b}_{kind}", f"{a}-{b}", e["mcnemar_p"])
        for depth, s in d["branching"]["success_if_stopped_at_depth"].items():
            yield row("branching", f"success_if_stopped_at_depth_{depth}", a, s["success_rate"], s["success_rate_ci95"])
            yield row("branching", f"trees_reaching_depth_{depth}", a, d["branching"]["depth_reached"][depth])
    for t in section["task_rows"]:
        for name, x in t["arms"].items():
            for metric in (
                "passed",
                "tests_passed",
                "tests_total",
                "depth_reached",
                "model_calls",
                "wall_s",
                "cpu_s",
                "peak_rss_mb",
                "tokens",
            ):
                yield row("task", metric, name, x[metric], task=t["task_id"])
        for name, kinds in t["solved_at_equal"].items():
            for kind, solved in kinds.items():
                yield row("task", f"solved_at_baseline_{kind}", name, solved, task=t["task_id"])


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
        parts += [
            f"## Runs compared on their {report['across_runs']['common_tasks']} common tasks",
            "",
            _md_table(tables.runs_table(report["across_runs"])),
            "",
        ]
    for section in report["runs"]:
        cmp, rec = section["comparison"], section["record"]
        parts += [
            f"## Run {_md_cell(section['run_id'])}",
            "",
            f"{cmp['tasks_all_arms']} tasks finished by every arm; baseline {_md_cell(cmp['baseline'])}.",
            "",
            "### Arms",
            "",
            _md_table(tables.comparison_table(cmp)),
            "",
        ]
        if cmp["pair_details"]:
            parts += ["### Each arm against the baseline", "", _md_table(tables.pairs_table(cmp)), ""]
        if len(cmp.get("nodes", [])) > 1:
            parts += ["### By node", "", NODE_NOTE, "", _md_table(tables.node_table(cmp)), ""]
        for d in cmp["pair_details"]:
            parts += [
                f"### {_md_cell(d['arm'])} vs {_md_cell(d['baseline'])}",
                "",
                f"{d['tasks']} tasks finished by both ({d['tasks_unpaired']} by one of them only).",
                "",
                "#### Cost ratios",
                "",
                _md_table(tables.ratio_table(d)),
                "",
                "#### Equal budget",
                "",
                _md_table(tables.equal_budget_table(d)),
                "",
                "#### Branching",
                "",
                _md_table(tables.branching_table(d)),
                "",
                _md_cell(tables.branching_summary(d)),
                "",
            ]
        parts += [
            "### Tasks",
            "",
            _md_table(tables.task_table(section)),
            "",
            "### Run record",
            "",
            f"- dataset hash: `{_md_cell(rec['dataset_hash'])}`; status {_md_cell(rec['status'])}; "
            f"started {_md_cell(rec['started_at'])}",
            f"- arms: `{_md_cell(json.dumps(rec['arms'], sort_keys=True))}`",
            f"- config: `{_md_cell(json.dumps(rec['config'], sort_keys=True))}`",
            f"- environment: `{_md_cell(json.dumps(rec['environment'], sort_keys=True))}`",
            f"- model load (kept apart from task figures): `{_md_cell(json.dumps(rec['load'], sort_keys=True))}`",
            f"- measured: `{_md_cell(json.dumps(rec['measured'], sort_keys=True))}`",
            f"- bootstrap: {cmp['statistics']['bootstrap_resamples']} resamples, seed "
            f"{cmp['statistics']['bootstrap_seed']}",
            "",
        ]
    if report.get("decision"):
        d = report["decision"]
        parts += [
            "## Decision",
            "",
            f"Pareto front on {d['tasks']} common tasks (success against CPU-seconds per task): "
            f"{_md_cell(', '.join(d['front']))}."
            + (
                f" CPU not measured, not ranked: {_md_cell(', '.join(d['not_measured']))}."
                if d.get("not_measured")
                else ""
            ),
            "",
        ]
        parts += [f"- **{100 * float(t):.0f} %**: {_md_cell(c['explanation'])}" for t, c in d["targets"].items()] + [""]
    parts += ["## How each figure is computed", ""]
    parts += [f"- **{name}**: {_md_cell(text)}" for name, text in STATISTICS.items()]
    return "\n".join(parts) + "\n"


def render_html(report: dict[str, Any], *, plots: bool = True) -> str:
    """One self-contained HTML file (inline CSS, plots as data URIs, no scripts)."""
    from sizeup.analysis.report_html import render

    return render(report, plots=plots)


# `sizeup report --format X` -> the function that renders it.
RENDERERS = {"html": render_html, "md": render_markdown, "json": render_json, "csv": render_csv}
