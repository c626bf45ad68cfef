"""Figures for the HTML report, drawn from the report dict alone (matplotlib, Agg: no display needed) and
returned as PNG data URIs so the report stays one file that opens offline."""

from __future__ import annotations

import base64
import io
import math
from typing import Any

import matplotlib

matplotlib.use("Agg")  # before pyplot: the report is built on servers without a display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

# One colour per arm, in the run's order (the first is the baseline by default); Dark2, then Set1 beyond eight.
PALETTE = [
    "#d95f02",
    "#1b9e77",
    "#7570b3",
    "#e7298a",
    "#66a61e",
    "#e6ab02",
    "#a6761d",
    "#666666",
    "#e41a1c",
    "#377eb8",
    "#4daf4a",
    "#984ea3",
]
DPI = 110
plt.rcParams.update(
    {
        "font.size": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": True,
        "grid.alpha": 0.3,
        "figure.autolayout": True,
    }
)


def colours(cmp: dict[str, Any]) -> dict[str, str]:
    return {arm["name"]: PALETTE[i % len(PALETTE)] for i, arm in enumerate(cmp["arms"])}


def _data_uri(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _label(side: dict[str, Any], name: str) -> str:
    models = side.get("models") or [str(side.get("model"))]
    return f"{name}: {' + '.join(models)} ({side.get('strategy')})"


def _error(value: float, ci: list[float] | None) -> list[list[float]]:
    """matplotlib's asymmetric error bar from a value and its interval."""
    if not ci:
        return [[0.0], [0.0]]
    return [[max(0.0, value - ci[0])], [max(0.0, ci[1] - value)]]


def _top(sides: list[dict[str, Any]]) -> float:
    """Top of a success-rate axis: the highest interval end plus room, in steps of 10, at most 100 %."""
    highest = max(100 * side["success_rate_ci95"][1] for side in sides)
    return min(102.0, 10 * math.ceil((highest + 5) / 10) + 2)


def success_vs_cost(cmp: dict[str, Any]) -> str:
    """Success rate (Wilson CI) of every arm against its per-task median CPU-seconds, tokens and peak memory
    (bootstrap CI), one point per arm: the Pareto front is the points no other is both above and left of."""
    fig, axes = plt.subplots(1, 3, figsize=(12.6, 3.6))
    palette = colours(cmp)
    for ax, (name, label) in zip(
        axes,
        (
            ("cpu_s", "CPU-seconds per task (median)"),
            ("tokens", "tokens per task (median)"),
            ("peak_rss_mb", "model peak memory per task, MB (median)"),
        ),
        strict=True,
    ):
        for arm in cmp["arms"]:
            med = arm["per_task_median"][name]
            if med["median"] is None or arm["success_rate"] is None:  # not measured, or no task yet
                continue
            y = 100 * arm["success_rate"]
            yci = [100 * v for v in arm["success_rate_ci95"]]
            ax.errorbar(
                [med["median"]],
                [y],
                xerr=_error(med["median"], med["ci95"]),
                yerr=_error(y, yci),
                fmt="o",
                color=palette[arm["name"]],
                capsize=4,
                markersize=7,
                label=_label(arm, arm["name"]),
            )
        ax.set_xlabel(label)
        ax.set_ylabel("tasks solved, % (95 % CI)")
        ax.set_ylim(-2, _top(cmp["arms"]))
        ax.set_xlim(left=0)
        ax.margins(x=0.25)
    if axes[0].get_legend_handles_labels()[0]:
        axes[0].legend(loc="upper left", fontsize=8, frameon=False)
    return _data_uri(fig)


def time_distributions(section: dict[str, Any]) -> str:
    """Per-task wall time of each arm: a box plot with every task as a point."""
    cmp = section["comparison"]
    names = [arm["name"] for arm in cmp["arms"]]
    palette = colours(cmp)
    fig, ax = plt.subplots(figsize=(max(4.8, 1.6 * len(names)), 3.4))
    rng = np.random.default_rng(0)  # fixed jitter: the same report twice gives the same picture
    data = [[t["arms"][name]["wall_s"] for t in section["task_rows"]] for name in names]
    ax.boxplot(data, showfliers=False, widths=0.5, medianprops={"color": "black"})
    for i, (name, values) in enumerate(zip(names, data, strict=True), start=1):
        ax.scatter(i + rng.uniform(-0.15, 0.15, len(values)), values, s=14, alpha=0.7, color=palette[name])
    # One model a line: an arm over several models would otherwise run into its neighbour's label.
    ax.set_xticks(range(1, len(names) + 1), [f"{arm['name']}\n" + "\n".join(arm["models"]) for arm in cmp["arms"]])
    ax.set_ylabel("wall time per task, s")
    ax.set_ylim(bottom=0)
    return _data_uri(fig)


def depth_histogram(pair: dict[str, Any], colour: str) -> str:
    """How deep an arm's trees went, and at which depth the first passing node was found."""
    br = pair["branching"]
    depths = list(br["depth_reached"])
    x = np.arange(len(depths))
    fig, ax = plt.subplots(figsize=(4.8, 3.4))
    ax.bar(x - 0.2, [br["depth_reached"][d] for d in depths], 0.4, color="#7570b3", label="deepest level reached")
    ax.bar(x + 0.2, [br["first_pass_depth"][d] for d in depths], 0.4, color=colour, label="first passing node")
    ax.set_xticks(x, depths)
    ax.set_xlabel(f"depth in {pair['arm']}'s trees")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("tasks")
    ax.legend(fontsize=8, frameon=False)
    return _data_uri(fig)


def budget_curves(cmp: dict[str, Any]) -> str:
    """Every non-baseline arm's success against a per-task cap on its spend (its trees replayed in order),
    with the baseline as a point at its mean spend per task."""
    fig, axes = plt.subplots(1, 2, figsize=(9.6, 3.4))
    palette = colours(cmp)
    details = cmp["pair_details"]
    base_name = cmp["baseline"]
    base = details[0]["sides"][base_name]
    for ax, (kind, label) in zip(
        axes, (("tokens", "tokens per task (cap)"), ("cpu_s", "CPU-seconds per task (cap)")), strict=True
    ):
        for d in details:
            curve = d["budget_curves"][kind][d["arm"]]
            if curve:
                xs, ys = zip(*curve, strict=True)
                ax.step(
                    xs,
                    [100 * y for y in ys],
                    where="post",
                    color=palette[d["arm"]],
                    label=_label(d["sides"][d["arm"]], d["arm"]),
                )
        spend = details[0]["budget_curves"][kind][f"{base_name}_mean_spend"]
        if spend is not None and base["success_rate"] is not None:  # None: not measured, or no task yet
            y = 100 * base["success_rate"]
            ax.errorbar(
                [spend],
                [y],
                yerr=_error(y, [100 * v for v in base["success_rate_ci95"]]),
                fmt="D",
                color=palette[base_name],
                capsize=4,
                label=_label(base, base_name) + ", mean spend",
            )
        ax.set_xlabel(label)
        ax.set_ylabel("tasks solved, %")
        ax.set_ylim(-2, _top([d["sides"][d["arm"]] for d in details] + [base]))
        ax.set_xlim(left=0)
    if axes[0].get_legend_handles_labels()[0]:
        axes[0].legend(loc="upper left", fontsize=8, frameon=False)
    return _data_uri(fig)


def all_plots(section: dict[str, Any]) -> dict[str, str]:
    cmp = section["comparison"]
    palette = colours(cmp)
    plots = {"success_vs_cost": success_vs_cost(cmp), "time_distributions": time_distributions(section)}
    if cmp["pair_details"]:
        plots["budget_curves"] = budget_curves(cmp)
        for d in cmp["pair_details"]:
            if d["branching"]["max_depth"] > 0:
                plots[f"depth_histogram:{d['arm']}"] = depth_histogram(d, palette[d["arm"]])
    return plots


def pareto(decision: dict[str, Any]) -> str:
    """Success against CPU-seconds per task, one point per configuration, the Pareto front joined."""
    fig, ax = plt.subplots(figsize=(7.2, 3.8))
    # A configuration whose cost was not measured has no place on this axis (the decision text names it).
    rows = [r for r in decision["configurations"] if r["cost_median"] is not None and r["success_rate"] is not None]
    for i, row in enumerate(rows):
        y, yci = 100 * row["success_rate"], [100 * v for v in row["success_ci"]]
        ax.errorbar(
            [row["cost_median"]],
            [y],
            xerr=_error(row["cost_median"], row["cost_ci"]),
            yerr=_error(y, yci),
            fmt="o",
            color=PALETTE[i % len(PALETTE)],
            capsize=4,
            label=row["config"],
        )
    front = [r for name in decision["front"] for r in rows if r["config"] == name]
    if len(front) > 1:
        ax.plot([r["cost_median"] for r in front], [100 * r["success_rate"] for r in front], "--", color="#444")
    ax.set_xlabel("CPU-seconds per task (median)")
    ax.set_ylabel("tasks solved, % (95 % CI)")
    ax.set_xlim(left=0)
    ax.legend(fontsize=8, frameon=False)
    return _data_uri(fig)
