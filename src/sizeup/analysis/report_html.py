"""The HTML report: one file, inline CSS, plots as data URIs, no scripts and nothing fetched.

Everything that comes from the store (model output, prompts, feedback, task ids, config values) is
untrusted text and goes through html.escape; only this module's own markup is written raw."""

from __future__ import annotations

import json
from html import escape
from typing import Any

from sizeup.analysis import fmt, tables
from sizeup.analysis.report import NODE_NOTE, STATISTICS, headline
from sizeup.records import tree_order_key
from sizeup.sandbox.types import Status

STATUSES = {status.value for status in Status}  # cells that get their status colour

CSS = """
:root { --fg:#1d2430; --muted:#5b6472; --line:#d9dee5; --zebra:#f5f7fa; --pass:#1b7f5a; --fail:#b42318;
        --large:#d95f02; --small:#1b9e77; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
       color:var(--fg); background:#fff; }
main { max-width:1180px; margin:0 auto; padding:24px 28px 60px; }
h1 { font-size:26px; margin:0 0 4px; } h2 { font-size:21px; margin:36px 0 8px; border-bottom:2px solid var(--line);
     padding-bottom:4px; } h3 { font-size:16px; margin:24px 0 8px; } h4 { font-size:15px; margin:0 0 6px; }
.meta, .note, figcaption { color:var(--muted); font-size:13px; }
nav { font-size:13px; margin:10px 0 18px; } nav a { margin-right:14px; }
a { color:#1f5fbf; text-decoration:none; } a:hover { text-decoration:underline; }
.headline { background:#f0f6ff; border-left:5px solid #1f5fbf; padding:12px 18px; border-radius:4px; }
.headline p { margin:6px 0; } .headline p.verdict { font-size:15px; font-weight:600; }
.headline p.run { margin-top:14px; font-weight:600; color:#1f5fbf; } .headline p.run:first-child { margin-top:0; }
table { border-collapse:collapse; margin:6px 0 12px; font-size:13px; width:100%; }
th, td { border-bottom:1px solid var(--line); padding:5px 8px; text-align:right; vertical-align:top; }
th { background:#eef1f5; font-weight:600; } td:not(:first-child) { white-space:nowrap; }
.scroll { overflow-x:auto; } table.wrap td { white-space:normal; } table.wrap { font-size:12px; }
th:first-child, td:first-child { text-align:left; }
tbody tr:nth-child(even) { background:var(--zebra); }
table.kv td { text-align:left; } table.kv td:first-child { width:40%; color:var(--muted); }
.grid { display:grid; grid-template-columns:1fr 1fr; gap:14px 24px; }
figure { margin:0; } figure.wide { grid-column:1 / span 2; } figure img { width:100%; height:auto; }
.status-passed { color:var(--pass); font-weight:600; } .status-failed, .status-error, .status-timeout,
.status-harness_error, .status-memory_exceeded { color:var(--fail); font-weight:600; }
.task { border:1px solid var(--line); border-radius:6px; padding:12px 16px; margin:12px 0; }
.sides { display:grid; grid-template-columns:repeat(auto-fit, minmax(340px, 1fr)); gap:18px; }
ul.tree, ul.tree ul { list-style:none; padding-left:18px; margin:4px 0; border-left:2px solid var(--line); }
ul.tree { padding-left:10px; }
ul.tree li { margin:6px 0; }
.node-head code { background:#eef1f5; padding:0 4px; border-radius:3px; }
.kept { background:#fff4d6; border-radius:3px; padding:0 4px; font-size:12px; }
details { margin:2px 0 2px 4px; } summary { cursor:pointer; color:var(--muted); font-size:12px; }
pre { background:#f6f8fa; border:1px solid var(--line); border-radius:4px; padding:8px; font-size:12px;
      white-space:pre-wrap; word-break:break-word; max-height:420px; overflow:auto; margin:4px 0; }
.back { font-size:12px; } .label { font-size:12px; color:var(--muted); margin-top:4px; }
"""


def _table(table: tables.Table, link_column: dict[str, str] | None = None, css: str = "") -> str:
    header, rows = table
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            text = escape(cell)
            if css == "wrap":  # let a narrow cell wrap at spaces, never inside "[0–20]"
                text = text.replace("–", "\u2060–\u2060")
            if i == 0 and link_column and cell in link_column:
                text = f'<a href="#{escape(link_column[cell])}">{text}</a>'
            elif cell in STATUSES:
                text = f'<span class="status-{escape(cell)}">{text}</span>'
            cells.append(f"<td>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f'<div class="scroll"><table class="{css}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}'
        "</tbody></table></div>"
    )


def _kv(items: dict[str, Any]) -> str:
    if not items:
        return '<p class="note">none stored</p>'
    rows = []
    for key, value in items.items():
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            shown = ", ".join(value)
        else:
            shown = value if isinstance(value, str) else json.dumps(value, sort_keys=True, ensure_ascii=False)
        rows.append(f"<tr><td>{escape(str(key))}</td><td>{escape(shown)}</td></tr>")
    return f'<table class="kv"><tbody>{"".join(rows)}</tbody></table>'


def _load_table(load: dict[str, Any]) -> str:
    """Model load per model (one row each), numbers rounded: it is kept apart from the task figures."""
    models = {model: v for model, v in load.items() if isinstance(v, dict)}
    if not models:
        return _kv(load)
    keys = sorted({k for v in models.values() for k in v})
    rows = [
        [model] + [fmt.num(v[k]) if isinstance(v.get(k), float) else str(v.get(k, "")) for k in keys]
        for model, v in models.items()
    ]
    return _table((["model", *keys], rows))


def _node(attempt: dict[str, Any], children: dict[str | None, list[dict[str, Any]]], best: str | None) -> str:
    status = attempt["status"] or "unknown"
    head = (
        f'<span class="node-head"><code>{escape(attempt["attempt_id"])}</code> '
        f'<span class="status-{escape(status)}">{escape(status)}</span> '
        f"{attempt['tests_passed']}/{attempt['tests_total']} tests · depth {attempt['depth']} · "
        f"{attempt['prompt_tokens']} + {attempt['completion_tokens']} tokens · gen "
        f"{escape(fmt.num(attempt['gen_s'], 's'))} · finish {escape(str(attempt['finish_reason']))}</span>"
    )
    if attempt["attempt_id"] == best:
        head += ' <span class="kept">kept</span>'
    if attempt.get("error"):
        head += f' <span class="status-error">harness error: {escape(attempt["error"])}</span>'
    # One toggle per node keeps a tree readable; the prompt and raw reply sit one level further in.
    body = "".join(
        f'<div class="label">{label}</div><pre>{escape(attempt[key])}</pre>'
        for label, key in (("code", "code"), ("test feedback (the verdict)", "feedback"))
        if attempt.get(key)
    )
    raw = "".join(
        f'<div class="label">{label}</div><pre>{escape(attempt[key])}</pre>'
        for label, key in (("prompt", "prompt"), ("raw response", "response"))
        if attempt.get(key)
    )
    if raw:
        body += f"<details><summary>prompt and raw response</summary>{raw}</details>"
    parts = [head, f"<details><summary>code and feedback</summary>{body}</details>" if body else ""]
    kids = children.get(attempt["attempt_id"], [])
    if kids:
        parts.append("<ul>" + "".join(_node(k, children, best) for k in kids) + "</ul>")
    return "<li>" + "".join(parts) + "</li>"


def _tree(side: dict[str, Any]) -> str:
    """An attempt tree as nested lists: each node under its parent, siblings in id order."""
    attempts = side["attempts"]
    if not attempts:
        return '<p class="note">no attempts stored</p>'
    ids = {a["attempt_id"] for a in attempts}
    children: dict[str | None, list[dict[str, Any]]] = {}
    for a in sorted(attempts, key=lambda a: tree_order_key(a["depth"], a["attempt_id"])):
        parent = a["parent_id"] if a["parent_id"] in ids else None
        children.setdefault(parent, []).append(a)
    roots = children.get(None, [])
    return '<ul class="tree">' + "".join(_node(a, children, side["best_attempt_id"]) for a in roots) + "</ul>"


def _task_trees(section: dict[str, Any]) -> str:
    out = []
    back = f"{section['anchor']}-tasks"
    for tree in section["trees"]:
        sides = tree["sides"]
        cols = "".join(
            f"<div><h4>{escape(which)}: {escape(str(s['model']))} — "
            f'<span class="status-{escape(s["status"])}">{escape(s["status"])}</span></h4>{_tree(s)}</div>'
            for which, s in sides.items()
        )
        out.append(
            f'<article class="task" id="{escape(tree["anchor"])}"><h4>Task {escape(tree["task_id"])}</h4>'
            f'<div class="sides">{cols}</div><a class="back" href="#{escape(back)}">↑ back to the task '
            f"table</a></article>"
        )
    return "".join(out)


def _plots(section: dict[str, Any], enabled: bool) -> str:
    if not enabled:
        return '<p class="note">plots turned off</p>'
    try:
        from sizeup.analysis.plots import all_plots
    except ImportError:  # matplotlib is the optional `report` extra
        return '<p class="note">plots need matplotlib: pip install "sizeup[report]"</p>'
    p = all_plots(section)
    captions = {
        "success_vs_cost": (
            "wide",
            "Success rate (95 % Wilson CI) against per-task median CPU-seconds, tokens and "
            "model peak memory (95 % bootstrap CI), one point per arm: an arm no other is "
            "both above and left of is on the Pareto front.",
        ),
        "time_distributions": ("", "Wall time per task: box (quartiles, median) and every task as a point."),
        "budget_curves": (
            "wide",
            "Each arm: tasks solved if every task were capped at a given spend (its tree "
            "replayed in the order it was made). The baseline is a point at its mean spend.",
        ),
    }
    figures = [(key, *captions[key]) for key in captions if key in p]
    figures += [
        (key, "", f"{key.split(':', 1)[1]}: deepest level its trees reached, and the depth of the first passing node.")
        for key in p
        if key.startswith("depth_histogram:")
    ]
    return (
        '<div class="grid">'
        + "".join(
            f'<figure class="{css}"><img alt="{escape(key)}" src="{p[key]}"><figcaption>{escape(caption)}'
            f"</figcaption></figure>"
            for key, css, caption in figures
        )
        + "</div>"
    )


def _pair(section: dict[str, Any], d: dict[str, Any]) -> str:
    a = f"{section['anchor']}-pair-{escape(d['arm'])}"
    together = "together, as they ran concurrently" if d["statistics"]["siblings_counted_together"] else "one by one"
    return f"""
<section id="{a}"><h3>{escape(d["arm"])} against {escape(d["baseline"])}</h3>
<p class="meta">{d["tasks"]} tasks finished by both ({d["tasks_unpaired"]} by one of them only)</p>
<h4>Cost ratios, task by task</h4>{_table(tables.ratio_table(d))}
<h4>Equal budget</h4>
<p class="note">Each task's tree of {escape(d["arm"])} is replayed in the order it was made (siblings {together})
and cut where its spend passes {escape(d["baseline"])}'s spend on that task.</p>{_table(tables.equal_budget_table(d))}
<h4>Branching</h4>{_table(tables.branching_table(d))}
<p>{escape(tables.branching_summary(d))}</p></section>"""


def _run(section: dict[str, Any], plots: bool) -> str:
    cmp, rec, a = section["comparison"], section["record"], section["anchor"]
    links = {t["task_id"]: t["anchor"] for t in section["task_rows"]}
    measured = "".join(f"<div><h4>{escape(arm)}</h4>{_kv(figs)}</div>" for arm, figs in rec["measured"].items())
    pairs = f"<h3>Each arm against the baseline</h3>{_table(tables.pairs_table(cmp))}" if cmp["pair_details"] else ""
    if len(cmp.get("nodes", [])) > 1:
        pairs += f'<h3>By node</h3><p class="note">{escape(NODE_NOTE)}</p>{_table(tables.node_table(cmp))}'
    return f"""
<section id="{a}"><h2>Run {escape(section["run_id"])}</h2>
<p class="meta">{cmp["tasks_all_arms"]} tasks finished by every arm · baseline {escape(cmp["baseline"])} ·
dataset {escape(str(rec["dataset_hash"]))} · {escape(str(rec["status"]))} · started {escape(str(rec["started_at"]))}</p>
<section id="{a}-comparison"><h3>Arms</h3>{_table(tables.comparison_table(cmp))}{pairs}</section>
<section id="{a}-plots"><h3>Plots</h3>{_plots(section, plots)}</section>
<section id="{a}-pairs">{"".join(_pair(section, d) for d in cmp["pair_details"])}</section>
<section id="{a}-tasks"><h3>Tasks</h3><p class="note">Click a task for its attempt trees.</p>
{_table(tables.task_table(section), links)}</section>
<section id="{a}-record"><h3>Run record</h3>
{_kv({"run id": rec["run_id"], "dataset hash": rec["dataset_hash"], "tasks in run": rec["tasks_in_run"]})}
<h4>arms</h4>{
        _table(
            (
                ["name", "strategy", "models", "params", "budget"],
                [
                    [
                        arm["name"],
                        arm["strategy"],
                        " + ".join(arm["models"]),
                        json.dumps(arm.get("params", {}), sort_keys=True),
                        json.dumps(arm.get("budget") or {}, sort_keys=True),
                    ]
                    for arm in rec["arms"]
                ],
            )
        )
    }
<div class="grid"><div><h4>config</h4>{_kv(rec["config"])}</div>
<div><h4>environment (versions, machine)</h4>{_kv(rec["environment"])}</div></div>
<h4>model load and warm-up (kept apart from the task figures)</h4>{_load_table(rec["load"])}
<h4>how each stored figure was measured</h4><div class="grid">{measured}</div>
<p class="note">Bootstrap: {cmp["statistics"]["bootstrap_resamples"]} resamples, seed
{cmp["statistics"]["bootstrap_seed"]}.</p></section>
<section id="{a}-trees"><h3>Attempt trees</h3>
<p class="note">Every node of every tree: verdict, tokens (prompt + completion), time waiting for the model, and
behind the toggles its code, the test feedback it got, its prompt and the model's raw reply.</p>
{_task_trees(section)}</section>
</section>"""


def _decision(decision: dict[str, Any] | None, plots: bool) -> str:
    if not decision:
        return ""
    picture = ""
    if plots:
        try:
            from sizeup.analysis.plots import pareto

            picture = (
                f'<figure><img alt="pareto" src="{pareto(decision)}"><figcaption>Every configuration: success '
                "(95 % Wilson CI) against CPU-seconds per task (median, 95 % bootstrap CI); the front is "
                "joined.</figcaption></figure>"
            )
        except ImportError:
            picture = '<p class="note">plots need matplotlib</p>'
    items = "".join(
        f"<li><b>{100 * float(t):.0f} %</b>: {escape(c['explanation'])}</li>" for t, c in decision["targets"].items()
    )
    unranked = (
        f"; CPU not measured, not ranked: {escape(', '.join(decision['not_measured']))}"
        if decision.get("not_measured")
        else ""
    )
    return (
        f'<section id="decision"><h2>Decision</h2><p class="meta">{decision["tasks"]} tasks every configuration '
        f"finished; Pareto front: {escape(', '.join(decision['front']))}{unranked}</p>{picture}<ul>{items}</ul>"
        "</section>"
    )


def _headline_block(block: str) -> str:
    """One run's headline: its "Run X:" label if any, the verdict line in bold, then the rest."""
    lines = block.split("\n")
    out = []
    if lines[0].startswith("Run ") and lines[0].endswith(":"):
        out.append(f'<p class="run">{escape(lines.pop(0))}</p>')
    out += [f'<p class="{"verdict" if i == 0 else ""}">{escape(line)}</p>' for i, line in enumerate(lines)]
    return "".join(out)


def render(report: dict[str, Any], *, plots: bool = True) -> str:
    runs = report["runs"]
    top = ['<a href="#headline">headline</a>'] + (
        ['<a href="#runs">runs compared</a>'] if report["across_runs"] else []
    )
    nav = [" ".join(top)]
    for s in runs:
        a = s["anchor"]
        prefix = f"<b>{escape(s['run_id'])}:</b> " if len(runs) > 1 else ""
        nav.append(
            prefix
            + " ".join(
                f'<a href="#{a}-{key}">{label}</a>'
                for key, label in (
                    ("comparison", "arms"),
                    ("plots", "plots"),
                    ("pairs", "pairs: ratios, equal budget, branching"),
                    ("tasks", "tasks"),
                    ("record", "run record"),
                    ("trees", "attempt trees"),
                )
            )
        )
    if report.get("decision"):  # report-wide, after the runs: linked beside methods
        nav[-1] += ' <a href="#decision">decision</a>'
    nav[-1] += ' <a href="#methods">methods</a>'
    if len(runs) == 1:  # one run: one line of links
        nav = [" ".join(nav)]
    lines = "".join(_headline_block(block) for block in headline(report).split("\n\n"))
    across = ""
    if report["across_runs"]:
        across = (
            f'<section id="runs"><h2>Runs compared on their {report["across_runs"]["common_tasks"]} common '
            f"tasks</h2>{_table(tables.runs_table(report['across_runs']), css='wrap')}</section>"
        )
    methods = "".join(f"<tr><td>{escape(k)}</td><td>{escape(v)}</td></tr>" for k, v in STATISTICS.items())
    title = "sizeup report — " + ", ".join(s["run_id"] for s in runs)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title><style>{CSS}</style></head>
<body><main>
<header><h1>sizeup report</h1><p class="meta">{escape(", ".join(s["run_id"] for s in runs))} · generated
{escape(report["generated_at"])}</p></header>
<nav>{"<br>".join(nav)}</nav>
<section id="headline" class="headline">{lines}</section>
{across}
{"".join(_run(s, plots) for s in runs)}
{_decision(report.get("decision"), plots)}
<section id="methods"><h2>How each figure is computed</h2><table class="kv"><tbody>{methods}</tbody></table></section>
</main></body></html>
"""
