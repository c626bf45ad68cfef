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

COLOURS = {"large": "#d95f02", "small": "#1b9e77"}
DPI = 110
plt.rcParams.update({"font.size": 9, "axes.spines.top": False, "axes.spines.right": False,
                     "axes.grid": True, "grid.alpha": 0.3, "figure.autolayout": True})


def _data_uri(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _label(side: dict[str, Any], which: str) -> str:
    return f"{which}: {side.get('model')} ({side.get('strategy')})"


def _error(value: float, ci: list[float] | None) -> list[list[float]]:
    """matplotlib's asymmetric error bar from a value and its interval."""
    if not ci:
        return [[0.0], [0.0]]
    return [[max(0.0, value - ci[0])], [max(0.0, ci[1] - value)]]


def _top(cmp: dict[str, Any]) -> float:
    """Top of a success-rate axis: the highest interval end plus room, in steps of 10, at most 100 %."""
    highest = max(100 * cmp["sides"][w]["success_rate_ci95"][1] for w in ("large", "small"))
    return min(102.0, 10 * math.ceil((highest + 5) / 10) + 2)


def success_vs_cost(cmp: dict[str, Any]) -> str:
    """Success rate (Wilson CI) against per-task median CPU-seconds and peak memory (bootstrap CI)."""
    fig, axes = plt.subplots(1, 2, figsize=(9.6, 3.4))
    for ax, (name, label) in zip(axes, (("cpu_s", "CPU-seconds per task (median)"),
                                        ("peak_rss_mb", "model peak memory per task, MB (median)")), strict=True):
        for which in ("large", "small"):
            side = cmp["sides"][which]
            med = side["per_task_median"][name]
            if med["median"] is None:
                continue
            y = 100 * side["success_rate"]
            yci = [100 * v for v in side["success_rate_ci95"]]
            ax.errorbar([med["median"]], [y], xerr=_error(med["median"], med["ci95"]), yerr=_error(y, yci),
                        fmt="o", color=COLOURS[which], capsize=4, markersize=7, label=_label(side, which))
        ax.set_xlabel(label)
        ax.set_ylabel("tasks solved, % (95 % CI)")
        ax.set_ylim(-2, _top(cmp))
        ax.set_xlim(left=0)
        ax.margins(x=0.25)
    if axes[0].get_legend_handles_labels()[0]:
        axes[0].legend(loc="upper left", fontsize=8, frameon=False)
    return _data_uri(fig)


def time_distributions(section: dict[str, Any]) -> str:
    """Per-task wall time of each side: a box plot with every task as a point."""
    fig, ax = plt.subplots(figsize=(4.8, 3.4))
    rng = np.random.default_rng(0)  # fixed jitter: the same report twice gives the same picture
    data = [[t[which]["wall_s"] for t in section["task_rows"]] for which in ("large", "small")]
    ax.boxplot(data, showfliers=False, widths=0.5, medianprops={"color": "black"})
    for i, (which, values) in enumerate(zip(("large", "small"), data, strict=True), start=1):
        ax.scatter(i + rng.uniform(-0.15, 0.15, len(values)), values, s=14, alpha=0.7, color=COLOURS[which])
    ax.set_xticks([1, 2], [f"large\n{section['comparison']['sides']['large']['model']}",
                           f"small\n{section['comparison']['sides']['small']['model']}"])
    ax.set_ylabel("wall time per task, s")
    ax.set_ylim(bottom=0)
    return _data_uri(fig)


def depth_histogram(cmp: dict[str, Any]) -> str:
    """How deep the adaptive trees went, and at which depth the first passing node was found."""
    br = cmp["branching"]
    depths = list(br["depth_reached"])
    x = np.arange(len(depths))
    fig, ax = plt.subplots(figsize=(4.8, 3.4))
    ax.bar(x - 0.2, [br["depth_reached"][d] for d in depths], 0.4, color="#7570b3", label="deepest level reached")
    ax.bar(x + 0.2, [br["first_pass_depth"][d] for d in depths], 0.4, color=COLOURS["small"],
           label="first passing node")
    ax.set_xticks(x, depths)
    ax.set_xlabel("depth in the adaptive tree")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("tasks")
    ax.legend(fontsize=8, frameon=False)
    return _data_uri(fig)


def budget_curves(cmp: dict[str, Any]) -> str:
    """Adaptive success against a per-task cap on its spend, with the large side as a point at its mean
    spend per task."""
    fig, axes = plt.subplots(1, 2, figsize=(9.6, 3.4))
    large, small = cmp["sides"]["large"], cmp["sides"]["small"]
    for ax, (kind, label) in zip(axes, (("tokens", "tokens per task (cap)"),
                                        ("cpu_s", "CPU-seconds per task (cap)")), strict=True):
        curve = cmp["budget_curves"][kind]
        if curve["small"]:
            xs, ys = zip(*curve["small"], strict=True)
            ax.step(xs, [100 * y for y in ys], where="post", color=COLOURS["small"], label=_label(small, "small"))
        y = 100 * large["success_rate"]
        ax.errorbar([curve["large_mean_spend"]], [y], yerr=_error(y, [100 * v for v in large["success_rate_ci95"]]),
                    fmt="D", color=COLOURS["large"], capsize=4, label=_label(large, "large") + ", mean spend")
        ax.set_xlabel(label)
        ax.set_ylabel("tasks solved, %")
        ax.set_ylim(-2, _top(cmp))
        ax.set_xlim(left=0)
    if axes[0].get_legend_handles_labels()[0]:
        axes[0].legend(loc="upper left", fontsize=8, frameon=False)
    return _data_uri(fig)


def all_plots(section: dict[str, Any]) -> dict[str, str]:
    cmp = section["comparison"]
    return {"success_vs_cost": success_vs_cost(cmp), "time_distributions": time_distributions(section),
            "depth_histogram": depth_histogram(cmp), "budget_curves": budget_curves(cmp)}
