"""Decisions: the Pareto front and the recommendation at point and bound on hand-built results; the cost
model against its baseline on results whose cost follows the task; the memory estimate against real servers."""

from __future__ import annotations

import numpy as np
import pytest

from sizeup.analysis.decide import pareto_front, recommend
from sizeup.analysis.predict import CostModel, cross_validate, estimate_memory_mb, features
from sizeup.records import ArmSpec, ResourceSummary, RunRecord, TaskResult
from sizeup.tasks import Task


def results(run_id: str, arm: str, solved: int, n: int, cpu: float, model: str = "m") -> list[TaskResult]:
    return [
        TaskResult(
            run_id=run_id,
            task_id=f"t{i}",
            arm=arm,
            model=model,
            strategy="single",
            status="passed" if i < solved else "failed",
            tests_total=1,
            wall_s=1.0,
            server=ResourceSummary(cpu_s=cpu, peak_rss_mb=100.0),
        )
        for i in range(n)
    ]


def cost_row(task_id: str, cpu_s: float, prompt_tokens: int, *, run_id: str = "r", **server) -> TaskResult:
    """One stored result of configuration "a" on a task: what a cost model learns from."""
    return TaskResult(
        run_id=run_id,
        task_id=task_id,
        arm="a",
        model="m",
        strategy="single",
        status="failed",
        wall_s=1.0,
        prompt_tokens=prompt_tokens,
        completion_tokens=50,
        server=ResourceSummary(cpu_s=cpu_s, **server),
    )


def run(run_id: str, *arms: str) -> RunRecord:
    return RunRecord(run_id=run_id, arms=[ArmSpec(name=a, strategy="single", models=["m"]) for a in arms])


# On 40 tasks: cheap solves 10 (25 %), mid 24 (60 %), dear 36 (90 %), waste 20 at the highest cost.
RUNS = [
    (run("r1", "cheap", "mid"), results("r1", "cheap", 10, 40, 1.0) + results("r1", "mid", 24, 40, 5.0)),
    (run("r2", "dear", "waste"), results("r2", "dear", 36, 40, 20.0) + results("r2", "waste", 20, 40, 30.0)),
]


def test_the_front_keeps_only_what_nothing_beats_on_both():
    data = recommend(RUNS, 0.5, "cpu")
    assert [r["config"] for r in data["front"]] == ["cheap", "mid", "dear"]  # waste: dearer and worse than dear
    assert pareto_front(data["configurations"]) == data["front"]


def test_the_recommendation_at_the_point_estimate_and_at_the_bound():
    data = recommend(RUNS, 0.5, "cpu")
    # mid reaches 60 % on its point estimate, but its one-sided 95 % lower bound (47 %) is below 50 %: dear's is not.
    assert data["choice_point"] == "mid" and data["choice_bound"] == "dear"
    assert "`mid`" in data["explanation"]
    assert (
        "At 95 % confidence of at least 50 % (a one-sided 95 % Wilson lower bound), choose `dear`"
        in data["explanation"]
    )
    assert recommend(RUNS, 0.25, "cpu")["choice_point"] == "cheap"


def test_no_configuration_meeting_the_target_names_the_closest():
    data = recommend(RUNS, 0.95, "cpu")
    assert data["choice_point"] is None and data["choice_bound"] is None and data["closest"] == "dear"
    assert data["explanation"].startswith("No configuration reaches 95 %")


def test_same_arm_names_in_two_runs_are_told_apart_and_bad_input_is_refused():
    twice = [(run("a", "x"), results("a", "x", 5, 10, 1.0)), (run("b", "x"), results("b", "x", 8, 10, 2.0))]
    assert {r["config"] for r in recommend(twice, 0.5)["configurations"]} == {"a:x", "b:x"}
    with pytest.raises(ValueError, match="--cost"):
        recommend(RUNS, 0.5, "carbon")


def test_the_cost_model_beats_the_median_where_cost_follows_the_task():
    rng = np.random.default_rng(0)
    tasks = {
        f"t{i}": Task(
            task_id=f"t{i}",
            source="x",
            prompt="p" * int(rng.integers(20, 2000)),
            tests=["assert f(1) == 1"] * int(rng.integers(1, 6)),
        )
        for i in range(60)
    }
    # CPU grows with the prompt's length (noise 10 %): a model of the task must do better than one number.
    rows = [
        cost_row(t, 0.01 * len(task.prompt) * float(rng.uniform(0.9, 1.1)), len(task.prompt) // 4)
        for t, task in tasks.items()
    ]
    model = CostModel("a", rows, tasks)
    cv = model.cv()["cpu_s"]
    assert cv["model_mape"] < cv["baseline_mape"] / 2 and cv["used"] == "model"
    short, long = (
        tasks["t0"].model_copy(update={"prompt": "p" * 50}),
        tasks["t0"].model_copy(update={"prompt": "p" * 1500}),
    )
    assert model.predict(long)["cpu_s"] > 10 * model.predict(short)["cpu_s"]
    x = np.array([features(t) for t in tasks.values()])
    flat = cross_validate(x, np.full(len(tasks), 3.0))
    assert flat["baseline_mape"] == 0.0  # a constant cost: the baseline is exact


def test_the_memory_estimate_is_within_15_percent_of_real_servers_after_load(small_client, large_client):
    for client in (small_client, large_client):
        estimate = estimate_memory_mb(str(client.gguf), 1024)
        measured = client.server.rss_after_load_mb
        assert abs(estimate["total_mb"] - measured) / measured < 0.15, (client.model, estimate, measured)


def unwatched(rows: list[TaskResult]) -> list[TaskResult]:
    """The same results from a remote model server: its CPU and memory could not be measured."""
    method = {"cpu_s": "not_measurable", "peak_rss_mb": "not_measurable"}
    return [r.model_copy(update={"server": ResourceSummary(method=method)}) for r in rows]


def test_a_configuration_whose_cost_was_not_measured_is_named_never_ranked_as_free():
    runs = [*RUNS, (run("r3", "remote"), unwatched(results("r3", "remote", 38, 40, 0.0)))]
    data = recommend(runs, 0.5, "cpu")
    rows = {r["config"]: r for r in data["configurations"]}
    assert rows["remote"]["cost_median"] is None and rows["remote"]["cost_measured_tasks"] == 0
    # At 0 CPU-s it would sit alone on the front and be chosen at both the point and the bound.
    assert "remote" not in [r["config"] for r in data["front"]] and data["not_measured"] == ["remote"]
    assert (data["choice_point"], data["choice_bound"]) == ("mid", "dear")
    assert "`remote`" in data["explanation"] and "not measured" in data["explanation"]
    # Only the unmeasured configuration reaches 92 %: that is said, not "no configuration reaches 92 %".
    data = recommend(runs, 0.92, "cpu")
    assert data["choice_point"] is None and data["closest"] == "remote"
    text = data["explanation"]
    assert text.startswith("No configuration with a measured cost reaches 92 %")
    assert "`remote` (m, single) reaches 95 %" in text and "not measured" in text and "`dear`" in text
    assert not text.startswith("No configuration reaches")


def test_the_bound_is_one_sided_at_the_confidence_asked_for():
    from scipy.stats import norm

    from sizeup.analysis.stats import wilson_interval

    # 30 of 40: the two-sided 95 % interval starts at 60 %, the one-sided 95 % bound at 62 %.
    runs = [(run("r", "only"), results("r", "only", 30, 40, 1.0))]
    data = recommend(runs, 0.61, "cpu")
    (row,) = data["configurations"]
    assert row["success_ci"][0] < 0.61 <= row["success_lower_bound"]
    assert row["success_lower_bound"] == pytest.approx(wilson_interval(30, 40, z=float(norm.ppf(0.95)))[0])
    assert data["choice_bound"] == "only" and "one-sided lower bound is 62 %" in data["explanation"]


def test_cross_validation_keeps_every_run_of_a_task_in_one_fold():
    from sizeup.analysis.predict import task_folds

    groups = [f"t{i % 12}" for i in range(36)]  # three pooled runs of 12 tasks
    folds = task_folds(groups, 5)
    assert sorted(i for fold in folds for i in fold) == list(range(36))
    for fold in folds:
        held_out = {groups[i] for i in fold}
        trained = {groups[i] for i in range(36) if i not in set(fold)}
        assert held_out and not held_out & trained
    with pytest.raises(ValueError, match="distinct tasks"):
        task_folds(["a", "b", "a", "b", "a", "b"], 5)


def cost_rows(n_tasks: int, runs: int, *, method: dict | None = None) -> tuple[list[TaskResult], dict[str, Task]]:
    rng = np.random.default_rng(1)
    tasks = {
        f"t{i}": Task(task_id=f"t{i}", source="x", prompt="p" * int(rng.integers(20, 2000)), tests=["assert 1"])
        for i in range(n_tasks)
    }
    rows = [
        cost_row(
            t, 0.01 * len(task.prompt), len(task.prompt) // 4, run_id=f"r{k}", peak_rss_mb=300.0, method=method or {}
        )
        for k in range(runs)
        for t, task in tasks.items()
    ]
    return rows, tasks


def test_predictions_say_none_where_nothing_was_measured():
    from sizeup.analysis.predict import totals

    # Six tasks stored twice are twelve results but six tasks: too few to fit and check.
    rows, tasks = cost_rows(6, 2)
    with pytest.raises(ValueError, match="6 stored tasks"):
        CostModel("a", rows, tasks)
    rows, tasks = cost_rows(12, 2, method={"cpu_s": "not_measurable", "peak_rss_mb": "not_measurable"})
    model = CostModel("remote", rows, tasks)
    assert "cpu_s" not in model.fits and "tokens" in model.fits
    prediction = model.predict(tasks["t0"])
    assert prediction["cpu_s"] is None and prediction["peak_rss_mb"] is None and prediction["tokens"] > 0
    measured, _ = cost_rows(12, 1)
    local = CostModel("local", measured, tasks).predict(tasks["t0"])
    total = totals([prediction, local], ["remote", "local", "unstored"])
    assert total["configs"] == 3 and total["cpu_s_configs"] == 1 and total["cpu_s"] == pytest.approx(local["cpu_s"])
    assert total["cpu_s_without"] == ["remote", "unstored"] and total["tokens_configs"] == 2
    nothing = totals([prediction], ["remote"])
    assert nothing["cpu_s"] is None and nothing["cpu_s_configs"] == 0 and "cpu_s_interval" not in nothing


def test_the_prediction_text_says_what_was_not_measured_rather_than_zero():
    from io import StringIO

    from rich.console import Console

    from sizeup.cli.views import render_prediction

    out = StringIO()
    total = {"tasks": 3, "model_calls": 6, "tokens": 900, "tokens_without": ["remote"], "cpu_s": None, "wall_s": 7200}
    render_prediction(Console(file=out, width=400), {"total": total, "cv": {}, "configs": [], "memory_estimate_mb": {}})
    text = out.getvalue()
    assert "900 tokens (without remote: not measured)" in text
    assert "CPU-s: not measured by any configuration" in text and "0 CPU-s" not in text


def test_where_the_median_is_used_its_interval_is_the_medians_own_spread():
    rng = np.random.default_rng(1)
    tasks = {
        f"t{i}": Task(task_id=f"t{i}", source="x", prompt="p" * int(rng.integers(20, 2000)), tests=["assert 1"])
        for i in range(60)
    }
    # CPU that has nothing to do with the task: the median is the better predictor, and its interval must
    # hold about 80 % of the costs (10th to 90th percentile of its own cross-validated errors).
    costs = {t: float(rng.uniform(1.0, 9.0)) for t in tasks}
    rows = [cost_row(t, costs[t], 10) for t in tasks]
    model = CostModel("a", rows, tasks)
    assert model.cv()["cpu_s"]["used"] == "baseline (median)"
    low, high = model.predict(tasks["t0"])["cpu_s_interval"]
    inside = sum(low <= c <= high for c in costs.values()) / len(costs)
    assert 0.65 <= inside <= 0.95
    cv = model.fits["cpu_s"]["cv"]  # and it is the median's spread, not the model's
    median = model.fits["cpu_s"]["median"]
    assert (low, high) == pytest.approx(
        (median * np.exp(cv["baseline_log_error_q10"]), median * np.exp(cv["baseline_log_error_q90"]))
    )
