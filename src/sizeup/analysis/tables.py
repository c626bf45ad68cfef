"""The report's words and tables as plain strings: one source for the terminal, HTML and Markdown, so a
number reads the same wherever it is shown."""

from __future__ import annotations

from typing import Any

from sizeup.analysis import fmt

Table = tuple[list[str], list[list[str]]]  # header, rows

FIGURE_LABELS = {"wall_s": ("wall time", "s"), "cpu_s": ("CPU", "s"), "peak_rss_mb": ("model peak memory", "MB"),
                 "tokens": ("tokens", ""), "gpu_mem_mb": ("GPU memory", "MB"), "energy_j": ("energy", "J")}
BUDGET_LABELS = {"tokens": "tokens", "cpu_s": "CPU-seconds", "gen_s": "model wall seconds (gen_s)"}


def side_name(side: dict[str, Any], which: str) -> str:
    strategy = side.get("strategy") or ("single" if which == "large" else "adaptive")
    return f"{which} {strategy} ({side.get('model') or '?'})"


def headline_lines(cmp: dict[str, Any]) -> list[str]:
    """The verdict in words, with intervals: quality, cost, and who wins at equal cost."""
    large, small, q, eff = cmp["sides"]["large"], cmp["sides"]["small"], cmp["quality"], cmp["efficiency"]
    if not cmp["tasks"]:
        return [f"No task of run {cmp['run_id']} was finished by both sides: nothing to compare yet."]
    p = q["mcnemar_p"]
    if p < 0.05:
        leader = "small" if eff["success_rate_diff"] > 0 else "large"
        verdict = f"significant, the {leader} side is ahead"
    else:
        verdict = "not significant"
    lines = [
        f"Small {small.get('strategy') or 'adaptive'} ({small.get('model')}) solved "
        f"{fmt.rate(small['success_rate'], small['success_rate_ci95'])} of {cmp['tasks']} tasks vs large "
        f"{large.get('strategy') or 'single'} ({large.get('model')}) "
        f"{fmt.rate(large['success_rate'], large['success_rate_ci95'])}; difference "
        f"{fmt.pp(eff['success_rate_diff'])} {fmt.pp_ci(q['success_rate_diff_ci95'])}, {verdict} "
        f"(exact McNemar p = {fmt.p_value(p)}; only small solved {q['only_small_solved']}, "
        f"only large {q['only_large_solved']})."]
    r = eff["ratios"]
    parts = [f"{FIGURE_LABELS[name][0]} {fmt.ratio(r[name]['median'], r[name]['ci95'])}"
             for name in ("wall_s", "cpu_s", "peak_rss_mb", "tokens") if not fmt.missing(r[name]["median"])]
    words = [_less_or_more(eff[key], word) for key, word in (("time_pct_faster_per_task", "time"),
                                                              ("memory_pct_less_per_task", "memory"))]
    words = [w for w in words if w != "n/a"]
    if parts:
        lines.append(f"Cost per task, large/small (median, 95 % CI): {', '.join(parts)}"
                     + (f"; so the small side took {' and '.join(words)}." if words else "."))
    eb = cmp["equal_budget"]
    lines.append(f"At equal cost (the small side capped per task at what the large side spent) the small side "
                 f"solved {fmt.rate(eb['tokens']['small_success_rate'], eb['tokens']['small_success_rate_ci95'])} "
                 f"on tokens and {fmt.rate(eb['cpu_s']['small_success_rate'], eb['cpu_s']['small_success_rate_ci95'])}"
                 f" on CPU-seconds, against the large side's {fmt.pct(large['success_rate'])}.")
    sandbox = cmp.get("sandbox")
    if sandbox:  # absent in comparisons saved before it existed
        lines.append(f"Sandbox: {sandbox['note']}.")
    return lines


def comparison_table(cmp: dict[str, Any]) -> Table:
    large, small = cmp["sides"]["large"], cmp["sides"]["small"]
    header = ["", side_name(large, "large"), side_name(small, "small")]

    def row(label: str, render) -> list[str]:
        return [label, render(large), render(small)]

    def median_row(name: str) -> list[str]:
        label, unit = FIGURE_LABELS[name]
        return row(f"{label} per task, median [95 % CI]", lambda s: (
            f"{fmt.num(s['per_task_median'][name]['median'], unit)} {fmt.num_ci(s['per_task_median'][name]['ci95'])}"
            .strip() if s["per_task_median"][name]["tasks"] else "not measured"))

    def per_solved(name: str, unit: str) -> list[str]:
        label = FIGURE_LABELS[name][0]
        return row(f"{label} per solved task", lambda s: fmt.num(s["cost_per_solved"][name], unit)
                   if s["cost_per_solved"][name] is not None else ("nothing solved" if not s["solved"]
                                                                   else "not measured"))
    rows = [
        row("success rate [95 % CI]", lambda s: fmt.rate(s["success_rate"], s["success_rate_ci95"])),
        row("solved", lambda s: f"{s['solved']} / {s['tasks']}"),
        row("mean test-pass ratio [95 % CI]",
            lambda s: fmt.rate(s["mean_test_pass_ratio"], s["mean_test_pass_ratio_ci95"])),
        row("pass@1 over tree nodes", lambda s: fmt.pct(s["pass_at_k_nodes"].get("1"))),
        *(median_row(name) for name in ("wall_s", "cpu_s", "peak_rss_mb", "gpu_mem_mb", "tokens", "energy_j")),
        row("wall time, total", lambda s: fmt.num(s["wall_s_total"], "s")),
        row("CPU, total (model server + sandbox)", lambda s: fmt.num(s["cpu_s_total"], "s")),
        row("tokens, total (prompt + completion)", lambda s: fmt.num(s["tokens_total"], digits=0)),
        row("model calls", lambda s: fmt.num(s["model_calls"], digits=0)),
        per_solved("cpu_s", "s"), per_solved("tokens", ""), per_solved("wall_s", "s"), per_solved("energy_j", "J"),
        row("time to first token, median", lambda s: fmt.num(s["ttft_s_median"], "s")),
        row("sandbox executions", lambda s: fmt.num(s["sandbox_executions"], digits=0)),
    ]
    if any("containers_started" in cmp["sides"][which] for which in ("large", "small")):
        rows += [
            row("containers per task, mean", lambda s: fmt.num(s.get("containers_per_task_mean"), digits=2)),
            row("containers in the run (distinct)", lambda s: fmt.num(s.get("containers_in_run"), digits=0)),
            row("containers started during tasks", lambda s: fmt.num(s.get("containers_started"), digits=0)),
            row("container CPU (cgroup), total", lambda s: fmt.num(s.get("container_cpu_s"), "s")),
            row("container peak memory (cgroup)", lambda s: fmt.num(s.get("container_peak_mb"), "MB")),
            row("container memory (engine stats)", lambda s: fmt.num(s.get("container_memory_mb"), "MB")),
        ]
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
    eff = cmp["efficiency"]
    derived = {"wall_s": ("time_pct_faster_per_task", "time"), "cpu_s": ("cpu_pct_less_per_task", "CPU"),
               "peak_rss_mb": ("memory_pct_less_per_task", "memory"), "tokens": ("tokens_pct_less_per_task", "tokens"),
               "gpu_mem_mb": ("gpu_memory_pct_less_per_task", "GPU memory"),
               "energy_j": ("energy_pct_less_per_task", "energy")}
    header = ["figure", "large / small, median [95 % CI]", "tasks", "so the small side used [95 % CI]"]
    rows = []
    for name, (label, _unit) in FIGURE_LABELS.items():
        r = eff["ratios"][name]
        key, word = derived[name]
        rows.append([label, fmt.ratio(r["median"], r["ci95"]), str(r["tasks"]), _less_or_more(eff[key], word)])
    return header, rows


def equal_budget_table(cmp: dict[str, Any]) -> Table:
    header = ["budget per task = large side's spend in", "small solved [95 % CI]", "large solved",
              "only small / only large", "exact McNemar p"]
    rows = [[BUDGET_LABELS[kind], f"{e['small_solved']} / {e['tasks']} = "
             f"{fmt.rate(e['small_success_rate'], e['small_success_rate_ci95'])}",
             f"{e['large_solved']} / {e['tasks']}", f"{e['only_small_solved']} / {e['only_large_solved']}",
             fmt.p_value(e["mcnemar_p"])] for kind, e in cmp["equal_budget"].items()]
    small = cmp["sides"]["small"]
    rows.append(["no cap (as run)", f"{small['solved']} / {small['tasks']} = "
                 f"{fmt.rate(small['success_rate'], small['success_rate_ci95'])}",
                 f"{cmp['sides']['large']['solved']} / {cmp['tasks']}",
                 f"{cmp['quality']['only_small_solved']} / {cmp['quality']['only_large_solved']}",
                 fmt.p_value(cmp["quality"]["mcnemar_p"])])
    return header, rows


def branching_table(cmp: dict[str, Any]) -> Table:
    br = cmp["branching"]
    header = ["depth", "trees that reached it (deepest level)", "first passing node at it",
              "success had the tree stopped there [95 % CI]"]
    rows = [[d, str(br["depth_reached"][d]), str(br["first_pass_depth"][d]),
             fmt.rate(s["success_rate"], s["success_rate_ci95"])]
            for d, s in br["success_if_stopped_at_depth"].items()]
    return header, rows


def branching_summary(cmp: dict[str, Any]) -> str:
    br = cmp["branching"]
    calls = br["calls_per_task"]
    pass_k = ", ".join(f"pass@{k} {fmt.pct(v)}" for k, v in br["pass_at_k_nodes"].items())
    dist = ", ".join(f"{n} calls: {count} tasks" for n, count in calls["distribution"].items())
    return (f"Model instances (calls) per task: mean {calls['mean']:.2f}, median {calls['median']}, max "
            f"{calls['max']} ({dist}). {br['nodes']} tree nodes, {br['passing_nodes']} passing; over nodes "
            f"{pass_k} (NaN where a tree has fewer nodes than k).")


def runs_table(across: dict[str, Any]) -> Table:
    header = ["run", "large / small model", "depth × branching × beam", "tasks", "large solved", "small solved",
              "difference", "McNemar p", "small at equal tokens", "time large/small", "memory large/small"]
    rows = []
    for r in across["rows"]:
        c = r["comparison"]
        large, small, eff = c["sides"]["large"], c["sides"]["small"], c["efficiency"]
        cfg = r["config"]
        eb = c["equal_budget"]["tokens"]
        rows.append([r["run_id"], f"{large['model']} / {small['model']}",
                     f"{cfg.get('max_depth', '?')} × {cfg.get('branching', '?')} × {cfg.get('beam', '?')}",
                     str(c["tasks"]), fmt.rate(large["success_rate"], large["success_rate_ci95"]),
                     fmt.rate(small["success_rate"], small["success_rate_ci95"]),
                     f"{fmt.pp(eff['success_rate_diff'])} {fmt.pp_ci(c['quality']['success_rate_diff_ci95'])}",
                     fmt.p_value(c["quality"]["mcnemar_p"]),
                     fmt.rate(eb["small_success_rate"], eb["small_success_rate_ci95"]),
                     fmt.ratio(eff["ratios"]["wall_s"]["median"], eff["ratios"]["wall_s"]["ci95"]),
                     fmt.ratio(eff["ratios"]["peak_rss_mb"]["median"], eff["ratios"]["peak_rss_mb"]["ci95"])])
    return header, rows


def task_table(section: dict[str, Any]) -> Table:
    header = ["task", "large verdict", "large tests", "large wall", "large tokens", "small verdict", "small tests",
              "depth", "calls", "small wall", "small tokens", "small at equal tokens", "small at equal CPU"]
    rows = []
    for t in section["task_rows"]:
        a, b = t["large"], t["small"]
        rows.append([t["task_id"], a["status"], f"{a['tests_passed']}/{a['tests_total']}", fmt.num(a["wall_s"], "s"),
                     str(a["tokens"]), b["status"], f"{b['tests_passed']}/{b['tests_total']}", str(b["depth_reached"]),
                     str(b["model_calls"]), fmt.num(b["wall_s"], "s"), str(b["tokens"]),
                     "solved" if t["small_solved_at_equal"]["tokens"] else "-",
                     "solved" if t["small_solved_at_equal"]["cpu_s"] else "-"])
    return header, rows
