"""The comparison's numbers against values computed by hand."""

from __future__ import annotations

import pytest

from sizeup.analysis import compare, wilson_interval
from sizeup.records import LARGE, SMALL, ResourceSummary, RunRecord, TaskResult


def result(
    task: str,
    side: str,
    passed: bool,
    *,
    wall: float = 1.0,
    rss: float = 100.0,
    cpu: float = 1.0,
    depth: int = 0,
    calls: int = 1,
    tests: tuple[int, int] = (3, 3),
) -> TaskResult:
    return TaskResult(
        run_id="r",
        task_id=task,
        side=side,
        model=f"{side}-m",
        strategy="single" if side == LARGE else "adaptive",
        status="passed" if passed else "failed",
        tests_passed=tests[0] if passed else tests[0] - 1,
        tests_total=tests[1],
        depth_reached=depth,
        model_calls=calls,
        wall_s=wall,
        prompt_tokens=10,
        completion_tokens=20,
        server=ResourceSummary(peak_rss_mb=rss, cpu_s=cpu, wall_s=wall),
    )


def test_wilson_interval_for_7_of_20():
    low, high = wilson_interval(7, 20)
    assert low == pytest.approx(0.1812, abs=1e-4)
    assert high == pytest.approx(0.5671, abs=1e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_exact_mcnemar_for_12_against_4():
    # 12 tasks only the large side solved, 4 only the small side, 4 both.
    results = []
    for i in range(20):
        large, small = (i < 12 or i >= 16), (12 <= i < 20)
        results += [result(f"t{i}", LARGE, large), result(f"t{i}", SMALL, small)]
    data = compare(RunRecord(run_id="r"), results)
    assert data["quality"]["only_large_solved"] == 12 and data["quality"]["only_small_solved"] == 4
    assert data["quality"]["mcnemar_p"] == pytest.approx(0.0768, abs=1e-4)


def test_efficiency_is_small_relative_to_large():
    results = [
        result("a", LARGE, True, wall=10, rss=1000, cpu=8),
        result("a", SMALL, False, wall=4, rss=250, cpu=2, depth=2, calls=5),
        result("b", LARGE, False, wall=6, rss=900, cpu=6),
        result("b", SMALL, True, wall=8, rss=200, cpu=3, depth=1, calls=3),
    ]
    data = compare(RunRecord(run_id="r"), results)
    large, small = data["sides"]["large"], data["sides"]["small"]
    assert (large["wall_s_total"], small["wall_s_total"]) == (16, 12)
    assert data["efficiency"]["time_pct_faster"] == pytest.approx(25.0)  # (16 - 12) / 16
    assert data["efficiency"]["memory_pct_less"] == pytest.approx(75.0)  # peaks 1000 vs 250
    assert data["efficiency"]["cpu_pct_less"] == pytest.approx(64.2857, abs=1e-3)  # 14 vs 5
    assert data["efficiency"]["success_rate_diff"] == 0.0
    assert large["wall_s_median"] == 8 and small["model_calls"] == 8
    stable = {key: data["branching"][key] for key in ("mean_depth", "max_depth", "model_instances", "solved_at_depth")}
    assert stable == {"mean_depth": 1.5, "max_depth": 2, "model_instances": 8, "solved_at_depth": {"1": 1, "2": 0}}
    assert small["mean_test_pass_ratio"] == pytest.approx((2 / 3 + 1) / 2)


def test_only_tasks_both_sides_finished_are_compared():
    results = [result("a", LARGE, True), result("a", SMALL, True), result("b", LARGE, True)]
    data = compare(RunRecord(run_id="r"), results)
    assert data["tasks"] == 1 and data["tasks_unpaired"] == 1
    assert data["sides"]["large"]["tasks"] == 1


def test_container_figures_appear_only_where_containers_ran():
    from sizeup.records import Attempt

    def docker(task: str, side: str, ids: list[str], peak: float, started: float) -> TaskResult:
        r = result(task, side, True)
        r.attempts = [Attempt(attempt_id=str(i), container_id=cid) for i, cid in enumerate(ids)]
        r.sandbox_containers, r.sandbox_cpu_s = len(set(ids)), 0.5
        r.sandbox_figures = {"container_peak_mb": peak, "containers_started": started, "container_memory_mb": 4.0}
        return r

    results = [
        docker("a", LARGE, ["c1"], 14.0, 1),
        docker("a", SMALL, ["c1", "c2", "c2"], 20.0, 1),
        docker("b", LARGE, ["c1"], 15.0, 0),
        docker("b", SMALL, ["c3"], 12.0, 1),
    ]
    small = compare(RunRecord(run_id="r"), results)["sides"]["small"]
    assert small["containers_in_run"] == 3 and small["containers_per_task_mean"] == 1.5
    assert small["containers_started"] == 2 and small["container_peak_mb"] == 20.0
    assert small["container_cpu_s"] == 1.0
    plain = compare(RunRecord(run_id="r"), [result("a", LARGE, True), result("a", SMALL, True)])
    assert "containers_in_run" not in plain["sides"]["small"]


def test_a_store_written_before_arms_still_opens_and_compares(tmp_path):
    """tests/data/store-before-arms.db: a real run stored by sizeup at e401f50 (two sides, `side` fields, no
    arms in the run record)."""
    import shutil
    from pathlib import Path

    from sizeup.analysis import build_report, render_html
    from sizeup.store import open_store

    copy = tmp_path / "old.db"
    shutil.copy(Path(__file__).parent / "data" / "store-before-arms.db", copy)
    with open_store(f"sqlite:///{copy}") as store:
        (run,) = store.list_runs()
        results = store.results(run.run_id)
    assert [(arm.name, arm.strategy, arm.models) for arm in run.arms] == [
        ("large", "single", ["gemma3:270m"]),
        ("small", "adaptive", ["smollm2:135m"]),
    ]
    assert run.arms[1].params["max_depth"] == 1
    assert {r.arm for r in results} == {"large", "small"} and all(a.seq is None for r in results for a in r.attempts)
    data = compare(run, results)
    assert data["tasks"] == 2 and set(data["sides"]) == {"large", "small"}
    assert {"efficiency", "branching", "quality", "arms", "pairs"} <= set(data)
    assert [arm["name"] for arm in data["arms"]] == ["large", "small"]
    assert "small" in render_html(build_report([(run, results)], resamples=200), plots=False)


def test_visible_success_and_overfit_are_not_measured_without_hidden_tests():
    from sizeup.analysis.tables import comparison_table

    results = [result(f"t{i}", side, i < 3) for i in range(6) for side in (LARGE, SMALL)]
    data = compare(RunRecord(run_id="r"), results)
    for arm in data["arms"]:
        assert arm["tasks_with_hidden_tests"] == 0
        assert arm["visible_success_rate"] is None and arm["visible_success_rate_ci95"] is None
        assert arm["overfit_rate"] is None and arm["overfit_rate_ci95"] is None
    _, rows = comparison_table(data)
    cells = {row[0]: row[1:] for row in rows}
    assert cells["visible-test success [95 % CI]"] == ["n/a: no hidden tests"] * 2
    assert cells["overfit: visible passed, hidden failed (of tasks with hidden tests)"] == ["n/a: no hidden tests"] * 2
    # With hidden tests on some tasks, overfit counts over those tasks only.
    hidden = [
        r.model_copy(update={"hidden_total": 2, "visible_status": "passed"}) if r.task_id in ("t3", "t4") else r
        for r in results
    ]
    small = compare(RunRecord(run_id="r"), hidden)["sides"][SMALL]
    assert small["tasks_with_hidden_tests"] == 2 and small["overfit"] == 2 and small["overfit_rate"] == 1.0
    assert small["visible_success_rate"] == pytest.approx(5 / 6)


def test_no_task_compared_yet_is_not_a_zero_success_rate():
    from sizeup.analysis.tables import comparison_table, headline_lines

    # Mid-run: each arm has finished a different task, so no task is common to both.
    data = compare(RunRecord(run_id="r"), [result("a", LARGE, True), result("b", SMALL, True)])
    assert data["tasks_all_arms"] == 0
    for arm in data["arms"]:
        assert arm["tasks"] == 0 and arm["success_rate"] is None and arm["success_ci"] == [0.0, 1.0]
        assert arm["mean_test_pass_ratio"] is None and arm["model_calls_mean"] is None
    assert data["efficiency"]["success_rate_diff"] is None
    assert data["branching"]["success_if_stopped_at_depth"]["0"]["success_rate"] is None
    _, rows = comparison_table(data)
    assert rows[0][1:] == ["n/a", "n/a"]
    assert "nothing to compare yet" in " ".join(headline_lines(data))


def test_results_from_two_nodes_are_grouped_by_node_and_each_tasks_arms_stay_on_one():
    from sizeup.analysis.report import build_report, render_markdown

    results = []
    for i in range(4):
        worker = {"id": i % 2, "node": {"host": f"n{i % 2}", "cpu_model": "X", "cores": 8 * (1 + i % 2), "gpu": None}}
        for side, passed, cpu in ((LARGE, True, 4.0 + i % 2), (SMALL, i < 2, 1.0 + i % 2)):
            r = result(f"t{i}", side, passed, cpu=cpu)
            r.worker = worker
            results.append(r)
    data = compare(RunRecord(run_id="r"), results)
    by_host = {node["host"]: node for node in data["nodes"]}
    assert sorted(by_host) == ["n0", "n1"] and by_host["n1"]["cores"] == 16
    assert by_host["n0"]["arms"][SMALL] == {
        "tasks": 2,
        "passed": 1,
        "success_rate": 0.5,
        "wall_s_median": 1.0,
        "cpu_s_median": 1.0,
    }
    assert by_host["n1"]["arms"][LARGE]["cpu_s_median"] == 5.0
    text = render_markdown(build_report([(RunRecord(run_id="r"), results)]))
    assert "### By node" in text and "| n1 |" in text
    alone = compare(RunRecord(run_id="r"), [result("t", LARGE, True), result("t", SMALL, True)])
    assert [node["host"] for node in alone["nodes"]] == ["unknown"]
    assert "By node" not in render_markdown(build_report([(RunRecord(run_id="r"), results[:2])]))
