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
    # mid reaches 60 % on its point estimate, but its 95 % interval (45-74 %) reaches below 50 %: dear's does not.
    assert data["choice_point"] == "mid" and data["choice_bound"] == "dear"
    assert (
        "`mid`" in data["explanation"] and "At 95 % confidence of at least 50 %, choose `dear`" in data["explanation"]
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
        TaskResult(
            run_id="r",
            task_id=t,
            arm="a",
            model="m",
            strategy="single",
            status="failed",
            wall_s=1.0,
            prompt_tokens=len(task.prompt) // 4,
            completion_tokens=50,
            server=ResourceSummary(cpu_s=0.01 * len(task.prompt) * float(rng.uniform(0.9, 1.1))),
        )
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
