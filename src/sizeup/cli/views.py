"""Terminal and JSON views. All numbers come from sizeup.analysis; this module only lays them out."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from sizeup.analysis import compare, comparison_table, headline
from sizeup.analysis.tables import branching_summary
from sizeup.sandbox import Execution
from sizeup.store import Store


def comparison(store: Store, run_id: str | None, baseline: str | None = None) -> dict[str, Any]:
    # Every run is read (and parsed) only when no id names one, or to say why the named one is not there.
    run = store.get_run(run_id) if run_id else next(iter(store.list_runs()), None)
    if run is None:
        if run_id and store.list_runs():
            raise ValueError(f"no run '{run_id}' in {store.url}")
        raise ValueError(f"no runs in {store.url}: start one with `sizeup run`")
    return compare(run, store.results(run.run_id), baseline=baseline)


def print_comparison(console: Console, store: Store, run_id: str) -> None:
    render_comparison(console, comparison(store, run_id))


def render_comparison(console: Console, data: dict[str, Any]) -> None:
    """The headline and the comparison table: the same functions as `sizeup report`."""
    header, rows = comparison_table(data)
    table = Table(
        title=f"run {data['run_id']} — {data['tasks_all_arms']} tasks finished by every arm, "
        f"baseline {data['baseline']}"
    )
    for index, title in enumerate(header):
        table.add_column(Text(title), justify="left" if index == 0 else "right")
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))  # Text: "[3–30]" is not rich markup
    console.print(table)
    console.print(headline(data), markup=False)
    for pair in data["pair_details"]:
        if pair["branching"]["max_depth"] > 0 or pair["branching"]["calls_per_task"]["max"] > 1:
            console.print(branching_summary(pair), markup=False)


def render_tasks(console: Console, tasks: list) -> None:
    table = Table(title=f"{len(tasks)} tasks")
    for col in ("task id", "source", "tests", "prompt"):
        table.add_column(col)
    for task in tasks:
        table.add_row(task.task_id, task.source, str(len(task.tests)), task.prompt.strip()[:80])
    console.print(table)


def models(provider: str, url: str | None) -> list[dict[str, Any]]:
    if provider == "ollama":
        from sizeup.models.ollama import DEFAULT_URL, list_models

        return list_models(url or DEFAULT_URL)
    from sizeup.models.bundled import BUNDLED, gguf_path
    from sizeup.models.types import ModelError

    rows = []
    for name, info in BUNDLED.items():
        try:
            path = gguf_path(name)
            rows.append(
                {
                    "name": name,
                    "style": info.style.value,
                    "size_mb": round(path.stat().st_size / 1e6),
                    "path": str(path),
                    "installed": True,
                }
            )
        except ModelError as err:
            rows.append({"name": name, "style": info.style.value, "installed": False, "error": str(err)})
    return rows


def render_models(console: Console, provider: str, rows: list[dict[str, Any]]) -> None:
    table = Table(title=f"{provider} models")
    keys = sorted({k for row in rows for k in row}, key=lambda k: (k != "name", k))
    for key in keys:
        table.add_column(key)
    for row in rows:
        table.add_row(*(str(row.get(k, "")) for k in keys))
    console.print(table)


def read_tests(path: Path) -> list[str]:
    """One test per line; a block separated by blank lines counts as one test when it is indented."""
    text = path.read_text()
    blocks = [b.strip("\n") for b in text.split("\n\n") if b.strip()]
    tests: list[str] = []
    for block in blocks:
        lines = block.splitlines()
        if any(line[:1].isspace() for line in lines):
            tests.append(block)
        else:
            tests.extend(line for line in lines if line.strip() and not line.lstrip().startswith("#"))
    return tests


def execution_dict(result: Execution) -> dict[str, Any]:
    return {
        "status": result.status.value,
        "tests_passed": result.tests_passed,
        "tests_total": result.tests_total,
        "tests": [
            {"source": t.source, "outcome": t.outcome.value, "message": t.message, "mode": t.mode} for t in result.tests
        ],
        "stdout": result.stdout,
        "stderr": result.stderr,
        "exit_code": result.exit_code,
        "wall_s": result.wall_s,
        "cpu_s": result.cpu_s,
        "peak_rss_mb": result.peak_rss_mb,
        "backend": result.backend,
        "detail": result.detail,
    }


def render_execution(console: Console, result: Execution) -> None:
    console.print(
        f"[bold]{result.status.value}[/bold]: {result.tests_passed}/{result.tests_total} tests "
        f"({result.backend}; wall {result.wall_s:.3f} s, CPU {result.cpu_s:.3f} s, "
        f"peak {result.peak_rss_mb:.1f} MB)"
    )
    for test in result.tests:
        console.print(f"  {test.outcome.value:8} {test.source.splitlines()[0][:90]} {test.message}")
    if result.detail:
        console.print(f"  detail: {result.detail}")
    for name in ("stdout", "stderr"):
        text = getattr(result, name)
        if text.strip():
            console.print(f"  {name}: {text.strip()[-500:]}", markup=False)


def report_dict(report: Any) -> dict[str, Any]:
    data = dataclasses.asdict(report)
    data["failures"] = [
        dict(zip(("task_id", "status", "reason"), f, strict=False)) if isinstance(f, tuple | list) else f
        for f in data["failures"]
    ]
    return data


def render_references(console: Console, report: Any) -> None:
    console.print(
        f"{report.passed}/{report.total} reference solutions passed in {report.seconds:.1f} s "
        f"({report.backend} sandbox); tests passed: visible {report.visible_passed}/{report.visible_total}, "
        f"hidden {report.hidden_passed}/{report.hidden_total}"
    )
    for failure in report_dict(report)["failures"]:
        console.print(f"  {failure['task_id']}: {failure['status']} — {failure['reason']}", markup=False)


def derive_summary(report: Any) -> str:
    """One paragraph: how many tasks got how many derived tests, and why the others got none."""
    n = len(report.derived)
    reasons = "; ".join(f"{count} × {why}" for why, count in sorted(report.reasons().items(), key=lambda kv: -kv[1]))
    return (
        f"derived tests (seed {report.seed}, up to {report.per_task} a task) for {n} tasks in "
        f"{report.seconds:.1f} s: {report.with_at_least(5)} got at least 5, "
        f"{report.with_at_least(report.per_task)} got {report.per_task}"
        + (f"; none for {sum(report.reasons().values())}: {reasons}" if reasons else "")
    )


def render_recommendation(console: Console, data: dict[str, Any]) -> None:
    from sizeup.analysis.decide import COSTS

    unit = COSTS[data["cost"]][1]
    table = Table(title=f"Pareto front on {data['tasks']} common tasks: success against {data['cost']} per task")
    for column in ("configuration", "success [CI]", f"median {unit} [CI]"):
        table.add_column(column)
    for row in data["front"]:
        ci = row["cost_ci"] or [None, None]
        table.add_row(
            row["config"],
            f"{100 * row['success_rate']:.0f} % [{100 * row['success_ci'][0]:.0f}–{100 * row['success_ci'][1]:.0f}]",
            f"{row['cost_median']:.3g} [{ci[0] or 0:.3g}–{ci[1] or 0:.3g}]",
        )
    console.print(table)
    console.print(data["explanation"], markup=False)


def render_prediction(console: Console, data: dict[str, Any]) -> None:
    total = data["total"]

    def part(key: str, unit: str, scale: float = 1.0, spec: str = ",.0f") -> str:
        value = total.get(key)
        if value is None:
            return f"{unit}: not measured by any configuration"
        without = total.get(f"{key}_without")
        lacking = f" (without {', '.join(without)}: not measured)" if without else ""
        return f"{value / scale:{spec}} {unit}{lacking}"

    console.print(
        f"{total.get('tasks', 0)} tasks: {part('model_calls', 'model calls')}, {part('tokens', 'tokens')}, "
        f"{part('cpu_s', 'CPU-s')}, {part('wall_s', 'h of wall time', 3600, '.2f')} (intervals in --json)",
        markup=False,
    )
    for key, cv in data["cv"].items():
        console.print(
            f"  {key}: cross-validated median abs. % error {cv['model_mape']:.0f} % (model) vs "
            f"{cv['baseline_mape']:.0f} % (the configuration's median)",
            markup=False,
        )
    for config in data["configs"]:
        if "why" in config:  # nothing stored to learn from, or too little
            console.print(f"  {config['config']}: {config['why']}", markup=False)
    for model, estimate in data["memory_estimate_mb"].items():
        if estimate:
            console.print(
                f"  {model}: about {estimate['total_mb']:.0f} MB (weights {estimate['weights_mb']:.0f}, KV "
                f"cache {estimate['kv_cache_mb']:.0f}, compute {estimate['compute_mb']:.0f}, runtime "
                f"{estimate['runtime_mb']:.0f})",
                markup=False,
            )
