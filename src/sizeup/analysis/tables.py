"""The report's words and tables as plain strings: one source for the terminal, HTML and Markdown, so a
number reads the same wherever it is shown."""

from __future__ import annotations

from typing import Any

from sizeup.analysis import fmt

Table = tuple[list[str], list[list[str]]]  # header, rows

FIGURE_LABELS = {
    "wall_s": ("wall time", "s"),
    "cpu_s": ("CPU", "s"),
    "peak_rss_mb": ("model peak memory", "MB"),
    "tokens": ("tokens", ""),
    "gpu_mem_mb": ("GPU memory", "MB"),
    "energy_j": ("energy", "J"),
}
BUDGET_LABELS = {"tokens": "tokens", "cpu_s": "CPU-seconds", "gen_s": "model wall seconds (gen_s)"}


def side_name(side: dict[str, Any], which: str) -> str:
    return f"{which} {side.get('strategy') or '?'} ({side.get('model') or '?'})"


def arm_label(arm: dict[str, Any]) -> str:
    """ "small adaptive (smollm2:135m)": an arm's name, strategy and models, from its summary."""
    models = arm.get("models") or [str(arm.get("model"))]
    return f"{arm['name']} {arm.get('strategy') or '?'} ({' + '.join(models)})"


def _title(name: str) -> str:
    return name[:1].upper() + name[1:]


def pair_names(cmp: dict[str, Any]) -> tuple[str, str]:
    """(baseline, arm) of a pair's details (the top level of a comparison holds its first pair)."""
    return cmp["baseline"], cmp["arm"]


def headline_lines(cmp: dict[str, Any]) -> list[str]:
    """The verdict in words, with intervals: every arm, then each arm against the baseline on quality, cost,
    and at equal cost."""
    details = cmp.get("pair_details") or []
    if not details:
        return [f"Run {cmp['run_id']} has one arm ({cmp['baseline']}): nothing to compare it with."]
    lines = []
    if len(cmp["arms"]) > 2:
        lines.append(
            f"On the {cmp['tasks_all_arms']} tasks every arm finished: "
            + "; ".join(f"{arm_label(arm)} {fmt.rate(arm['success_rate'], arm['success_ci'])}" for arm in cmp["arms"])
            + "."
        )
    for d in details:
        lines += _pair_lines(d)
    if cmp.get("protocol", "").startswith("visible-feedback"):
        lines.append(
            "Held-out verdicts: the searches saw only the visible tests; success counts hidden tests too. "
            "Visible-test success / overfit (visible passed, hidden failed): "
            + "; ".join(
                f"{arm['name']} {fmt.pct(arm['visible_success_rate'])} / {fmt.pct(arm['overfit_rate'])}"
                for arm in cmp["arms"]
            )
            + "."
        )
    elif cmp.get("protocol", "").startswith("mixed"):
        lines.append(f"Verdicts: {cmp['protocol']} (the others were judged on the tests they were shown).")
    sandbox = cmp.get("sandbox")
    if sandbox:  # absent in comparisons saved before it existed
        lines.append(f"Sandbox: {sandbox['note']}.")
    return lines


def _pair_lines(d: dict[str, Any]) -> list[str]:
    b, a = pair_names(d)
    base, arm, q, eff = d["sides"][b], d["sides"][a], d["quality"], d["efficiency"]
    if not d["tasks"]:
        return [f"No task of run {d['run_id']} was finished by both {b} and {a}: nothing to compare yet."]
    p = q["mcnemar_p"]
    if p < 0.05:
        leader = a if eff["success_rate_diff"] > 0 else b
        verdict = f"significant, {leader} is ahead"
    else:
        verdict = "not significant"
    lines = [
        f"{_title(a)} {arm.get('strategy')} ({arm.get('model')}) solved "
        f"{fmt.rate(arm['success_rate'], arm['success_rate_ci95'])} of {d['tasks']} tasks vs {b} "
        f"{base.get('strategy')} ({base.get('model')}) "
        f"{fmt.rate(base['success_rate'], base['success_rate_ci95'])}; difference "
        f"{fmt.pp(eff['success_rate_diff'])} {fmt.pp_ci(q['success_rate_diff_ci95'])}, {verdict} "
        f"(exact McNemar p = {fmt.p_value(p)}; only {a} solved {q[f'only_{a}_solved']}, "
        f"only {b} {q[f'only_{b}_solved']})."
    ]
    r = eff["ratios"]
    parts = [
        f"{FIGURE_LABELS[name][0]} {fmt.ratio(r[name]['median'], r[name]['ci95'])}"
        for name in ("wall_s", "cpu_s", "peak_rss_mb", "tokens")
        if not fmt.missing(r[name]["median"])
    ]
    words = [
        _less_or_more(eff[key], word)
        for key, word in (("time_pct_faster_per_task", "time"), ("memory_pct_less_per_task", "memory"))
    ]
    words = [w for w in words if w != "n/a"]
    unmeasured = [
        FIGURE_LABELS[name][0]
        for name in ("wall_s", "cpu_s", "peak_rss_mb", "tokens")
        if fmt.missing(r[name]["median"])
    ]
    if parts:
        lines.append(
            f"Cost per task, {b}/{a} (median, 95 % CI): {', '.join(parts)}"
            + (f"; so {a} took {' and '.join(words)}" if words else "")
            + (f" (not measured on both: {', '.join(unmeasured)})." if unmeasured else ".")
        )
    eb = d["equal_budget"]
    lines.append(
        f"At equal cost ({a} capped per task at what {b} spent; a node counts only as a held-out pass) {a} "
        f"solved {_equal(eb['tokens'], a)} on tokens and {_equal(eb['cpu_s'], a)} on CPU-seconds, against "
        f"{b}'s {fmt.pct(base['success_rate'])} and its own {fmt.pct(arm['success_rate'])} uncapped."
    )
    return lines


def _equal(e: dict[str, Any], a: str) -> str:
    """An arm's success at equal budget, or why there is none: the spend was not measured."""
    if fmt.missing(e[f"{a}_success_rate"]):
        return "n/a (spend not measured)"
    text = fmt.rate(e[f"{a}_success_rate"], e[f"{a}_success_rate_ci95"])
    skipped = e.get("tasks_not_measured")
    return f"{text} ({skipped} tasks not measured, left out)" if skipped else text


def _hidden_rate(key: str):
    """Visible-test success or overfit: a figure only where some task had hidden tests."""

    def cell(s: dict[str, Any]) -> str:
        if fmt.missing(s.get(key)):
            return "n/a: no hidden tests" if not s.get("tasks_with_hidden_tests") else "n/a"
        return fmt.rate(s[key], s.get(f"{key}_ci95"))

    return cell


def comparison_table(cmp: dict[str, Any]) -> Table:
    """One column per arm (on the tasks every arm finished)."""
    arms = cmp.get("arms") or [{"name": name, **side} for name, side in cmp["sides"].items()]
    header = [""] + [arm_label(arm) for arm in arms]

    def row(label: str, render) -> list[str]:
        return [label, *(render(arm) for arm in arms)]

    def median_row(name: str) -> list[str]:
        label, unit = FIGURE_LABELS[name]

        def cell(s: dict[str, Any]) -> str:
            median = s["per_task_median"][name]
            if not median["tasks"]:
                return "not measured"
            return f"{fmt.num(median['median'], unit)} {fmt.num_ci(median['ci95'])}".strip()

        return row(f"{label} per task, median [95 % CI]", cell)

    def per_solved(name: str, unit: str) -> list[str]:
        label = FIGURE_LABELS[name][0]
        return row(
            f"{label} per solved task",
            lambda s: (
                fmt.num(s["cost_per_solved"][name], unit)
                if s["cost_per_solved"][name] is not None
                else ("nothing solved" if not s["solved"] else "not measured")
            ),
        )

    rows = [
        row("success rate [95 % CI]", lambda s: fmt.rate(s["success_rate"], s["success_rate_ci95"])),
        row("solved", lambda s: f"{s['solved']} / {s['tasks']}"),
        row("visible-test success [95 % CI]", _hidden_rate("visible_success_rate")),
        row("overfit: visible passed, hidden failed (of tasks with hidden tests)", _hidden_rate("overfit_rate")),
        row(
            "mean test-pass ratio [95 % CI]",
            lambda s: fmt.rate(s["mean_test_pass_ratio"], s["mean_test_pass_ratio_ci95"]),
        ),
        row("pass@1 over tree nodes", lambda s: fmt.pct(s["pass_at_k_nodes"].get("1"))),
        *(median_row(name) for name in ("wall_s", "cpu_s", "peak_rss_mb", "gpu_mem_mb", "tokens", "energy_j")),
        row("wall time, total", lambda s: fmt.num(s["wall_s_total"], "s")),
        row("CPU, total (model server + sandbox)", lambda s: fmt.measured(s["cpu_s_total"], "s")),
        row("tokens, total (prompt + completion)", lambda s: fmt.measured(s["tokens_total"], digits=0)),
        row("model calls", lambda s: fmt.num(s["model_calls"], digits=0)),
        per_solved("cpu_s", "s"),
        per_solved("tokens", ""),
        per_solved("wall_s", "s"),
        per_solved("energy_j", "J"),
        row("time to first token, median", lambda s: fmt.num(s["ttft_s_median"], "s")),
        row("sandbox executions", lambda s: fmt.num(s["sandbox_executions"], digits=0)),
        row("verdict tests compared outside the program", lambda s: fmt.pct(s.get("parent_compared_share"))),
        row("stopped by", lambda s: ", ".join(f"{k} {v}" for k, v in s.get("stopped_by", {}).items())),
        row(
            "tree: wider / deeper steps",
            lambda s: f"{s['tree_shape']['wider']} / {s['tree_shape']['deeper']}" if "tree_shape" in s else "one call",
        ),
        row(
            "first passing node from",
            lambda s: (
                ", ".join(f"{k}: {v}" for k, v in s["tree_shape"]["first_pass_from"].items())
                if s.get("tree_shape", {}).get("first_pass_from")
                else "-"
            ),
        ),
    ]
    if any(arm.get("budget") for arm in arms):
        rows.append(
            row(
                "budget per task (enforced)",
                lambda s: ", ".join(f"{k} {v:g}" for k, v in (s.get("budget") or {}).items()) or "none",
            )
        )
        rows.append(row("tasks over budget", lambda s: str(s.get("over_budget", 0))))
    if any("containers_started" in arm for arm in arms):
        rows += [
            row("containers per task, mean", lambda s: fmt.num(s.get("containers_per_task_mean"), digits=2)),
            row("containers in the run (distinct)", lambda s: fmt.num(s.get("containers_in_run"), digits=0)),
            row("containers started during tasks", lambda s: fmt.num(s.get("containers_started"), digits=0)),
            row("container CPU (cgroup), total", lambda s: fmt.num(s.get("container_cpu_s"), "s")),
            row("container peak memory (cgroup)", lambda s: fmt.num(s.get("container_peak_mb"), "MB")),
            row("container memory (engine stats)", lambda s: fmt.num(s.get("container_memory_mb"), "MB")),
        ]
    return header, rows


def pairs_table(cmp: dict[str, Any]) -> Table:
    """Each arm against the baseline: the paired difference in success and its exact test."""
    header = [
        "arm",
        "vs baseline",
        "tasks",
        "success difference [95 % CI]",
        "only arm / only baseline",
        "exact McNemar p",
    ]
    rows = []
    for d in cmp.get("pair_details") or []:
        b, a = pair_names(d)
        q = d["quality"]
        rows.append(
            [
                a,
                b,
                str(d["tasks"]),
                f"{fmt.pp(d['efficiency']['success_rate_diff'])} {fmt.pp_ci(q['success_rate_diff_ci95'])}".strip(),
                f"{q[f'only_{a}_solved']} / {q[f'only_{b}_solved']}",
                fmt.p_value(q["mcnemar_p"]),
            ]
        )
    return header, rows


def _less_or_more(derived: dict[str, Any], word: str) -> str:
    """A signed "% less" figure as words: +63 -> "63 % less memory", -270 -> "270 % more time"."""
    value, ci = derived["median"], derived["ci95"]
    if fmt.missing(value):
        return "n/a"
    if value < 0:
        value, ci = -value, [-ci[1], -ci[0]] if ci else None
        word = f"more {word}"
    else:
        word = f"less {word}"
    return f"{value:.0f} % {word}" + (f" [{ci[0]:.0f}, {ci[1]:.0f}]" if ci else "")


def ratio_table(cmp: dict[str, Any]) -> Table:
    b, a = pair_names(cmp)
    eff = cmp["efficiency"]
    derived = {
        "wall_s": ("time_pct_faster_per_task", "time"),
        "cpu_s": ("cpu_pct_less_per_task", "CPU"),
        "peak_rss_mb": ("memory_pct_less_per_task", "memory"),
        "tokens": ("tokens_pct_less_per_task", "tokens"),
        "gpu_mem_mb": ("gpu_memory_pct_less_per_task", "GPU memory"),
        "energy_j": ("energy_pct_less_per_task", "energy"),
    }
    header = ["figure", f"{b} / {a}, median [95 % CI]", "tasks", f"so {a} used [95 % CI]"]
    rows = []
    for name, (label, _unit) in FIGURE_LABELS.items():
        r = eff["ratios"][name]
        key, word = derived[name]
        rows.append([label, fmt.ratio(r["median"], r["ci95"]), str(r["tasks"]), _less_or_more(eff[key], word)])
    return header, rows


def equal_budget_table(cmp: dict[str, Any]) -> Table:
    b, a = pair_names(cmp)
    header = [
        f"budget per task = {b}'s spend in",
        f"{a} solved [95 % CI]",
        f"{b} solved",
        f"only {a} / only {b}",
        "exact McNemar p",
    ]
    rows = [
        [
            BUDGET_LABELS[kind] + (f" ({n} tasks not measured)" if (n := e.get("tasks_not_measured")) else ""),
            f"{e[f'{a}_solved']} / {e['tasks']} = {fmt.rate(e[f'{a}_success_rate'], e[f'{a}_success_rate_ci95'])}",
            f"{e[f'{b}_solved']} / {e['tasks']}",
            f"{e[f'only_{a}_solved']} / {e[f'only_{b}_solved']}",
            fmt.p_value(e["mcnemar_p"]),
        ]
        for kind, e in cmp["equal_budget"].items()
    ]
    arm = cmp["sides"][a]
    rows.append(
        [
            "no cap (as run)",
            f"{arm['solved']} / {arm['tasks']} = {fmt.rate(arm['success_rate'], arm['success_rate_ci95'])}",
            f"{cmp['sides'][b]['solved']} / {cmp['tasks']}",
            f"{cmp['quality'][f'only_{a}_solved']} / {cmp['quality'][f'only_{b}_solved']}",
            fmt.p_value(cmp["quality"]["mcnemar_p"]),
        ]
    )
    return header, rows


def branching_table(cmp: dict[str, Any]) -> Table:
    br = cmp["branching"]
    header = [
        "depth",
        "trees that reached it (deepest level)",
        "first passing node at it",
        "success had the tree stopped there [95 % CI]",
    ]
    rows = [
        [
            d,
            str(br["depth_reached"][d]),
            str(br["first_pass_depth"][d]),
            fmt.rate(s["success_rate"], s["success_rate_ci95"]),
        ]
        for d, s in br["success_if_stopped_at_depth"].items()
    ]
    return header, rows


def branching_summary(cmp: dict[str, Any]) -> str:
    br = cmp["branching"]
    calls = br["calls_per_task"]
    pass_k = ", ".join(f"pass@{k} {fmt.pct(v)}" for k, v in br["pass_at_k_nodes"].items())
    dist = ", ".join(f"{n} calls: {count} tasks" for n, count in calls["distribution"].items())
    who = f"{cmp['arm']}: m" if "arm" in cmp else "M"
    return (
        f"{who}odel instances (calls) per task: mean {fmt.num(calls['mean'], digits=2)}, median "
        f"{'n/a' if calls['median'] is None else calls['median']}, max {calls['max']} ({dist}). "
        f"{br['nodes']} tree nodes, {br['passing_nodes']} passing (held out: with hidden tests only the kept "
        "answer was judged on them); "
        f"over nodes {pass_k} (n/a where a tree has fewer nodes than k)."
    )


def runs_table(across: dict[str, Any]) -> Table:
    header = [
        "run",
        "arms (strategy, models)",
        "tasks",
        "success per arm",
        "first pair: difference",
        "McNemar p",
        "arm at baseline's tokens",
        "time baseline/arm",
        "memory baseline/arm",
    ]
    rows = []
    for r in across["rows"]:
        c = r["comparison"]
        arms = "; ".join(
            " ".join([arm_label(arm), *(f"{k}={v}" for k, v in sorted(arm["params"].items()))]) for arm in c["arms"]
        )
        rates = "; ".join(f"{arm['name']} {fmt.rate(arm['success_rate'], arm['success_ci'])}" for arm in c["arms"])
        if not c.get("pair_details"):
            rows.append([r["run_id"], arms, str(c["tasks_all_arms"]), rates, "", "", "", "", ""])
            continue
        b, a = pair_names(c)
        eff, eb = c["efficiency"], c["equal_budget"]["tokens"]
        rows.append(
            [
                r["run_id"],
                arms,
                str(c["tasks_all_arms"]),
                rates,
                f"{a} − {b}: {fmt.pp(eff['success_rate_diff'])} {fmt.pp_ci(c['quality']['success_rate_diff_ci95'])}",
                fmt.p_value(c["quality"]["mcnemar_p"]),
                fmt.rate(eb[f"{a}_success_rate"], eb[f"{a}_success_rate_ci95"]),
                fmt.ratio(eff["ratios"]["wall_s"]["median"], eff["ratios"]["wall_s"]["ci95"]),
                fmt.ratio(eff["ratios"]["peak_rss_mb"]["median"], eff["ratios"]["peak_rss_mb"]["ci95"]),
            ]
        )
    return header, rows


def task_table(section: dict[str, Any]) -> Table:
    """One row per task every arm finished: each arm's verdict, tests, calls, wall time and tokens, and
    whether each non-baseline arm still solved it within the baseline's tokens and CPU."""
    names = [arm["name"] for arm in section["comparison"]["arms"]]
    others = [d["arm"] for d in section["comparison"].get("pair_details") or []]
    header = ["task"]
    for name in names:
        header += [f"{name} verdict", f"{name} tests", f"{name} calls", f"{name} wall", f"{name} tokens"]
    for name in others:
        header += [f"{name} at equal tokens", f"{name} at equal CPU"]
    rows = []
    for t in section["task_rows"]:
        row = [t["task_id"]]
        for name in names:
            x = t["arms"][name]
            row += [
                x["status"],
                f"{x['tests_passed']}/{x['tests_total']}",
                str(x["model_calls"]),
                fmt.num(x["wall_s"], "s"),
                fmt.measured(x["tokens"], digits=0),
            ]
        for name in others:
            equal = t["solved_at_equal"].get(name, {})
            row += [_solved_at(equal, "tokens"), _solved_at(equal, "cpu_s")]
        rows.append(row)
    return header, rows


def _solved_at(equal: dict[str, Any], kind: str) -> str:
    if kind in equal and equal[kind] is None:
        return "not measured"
    return "solved" if equal.get(kind) else "-"


def node_table(cmp: dict[str, Any]) -> Table:
    """One row per node and arm: where results were made, when a run spans several machines."""
    rows = []
    for node in cmp.get("nodes", []):
        machine = ", ".join(str(x) for x in (node["cpu_model"], node["cores"] and f"{node['cores']} cores") if x)
        for arm, fig in node["arms"].items():
            rows.append(
                [
                    node["host"],
                    machine or "n/a",
                    node["gpu"] or "none known",
                    arm,
                    f"{fig['passed']}/{fig['tasks']} ({fmt.pct(fig['success_rate'])})",
                    fmt.num(fig["wall_s_median"], " s", 2),
                    fmt.measured(fig["cpu_s_median"], " s", 2),
                ]
            )
    return ["node", "machine", "GPU", "arm", "solved", "median wall", "median CPU (model server + sandbox)"], rows
