"""Every statistic of sizeup.analysis against values computed by hand."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from sizeup.analysis import compare
from sizeup.analysis.branching import branching_stats, first_pass_depth, pass_at_k_over_nodes
from sizeup.analysis.budget import (
    attempt_spends,
    budget_curve,
    equal_budget,
    first_pass_spend,
    replay_order,
    solved_within,
)
from sizeup.analysis.costs import cost_per_solved, energy_j, pct_less_from_ratio, ratio_summary
from sizeup.analysis.stats import bootstrap_ci, mcnemar_exact_p, mean_pass_at_k, pass_at_k, wilson_interval
from sizeup.records import LARGE, SMALL, Attempt, Measured, ResourceSummary, RunRecord, TaskResult
from sizeup.verdicts import Status


def node(
    attempt_id: str,
    status: str = "failed",
    *,
    prompt: int = 0,
    completion: int = 0,
    gen_s: float = 0.0,
    exec_cpu: float = 0.0,
) -> Attempt:
    parent = attempt_id.rsplit(".", 1)[0] if "." in attempt_id else None
    return Attempt(
        attempt_id=attempt_id,
        parent_id=parent,
        depth=attempt_id.count("."),
        status=status,
        prompt_tokens=prompt,
        completion_tokens=completion,
        gen_s=gen_s,
        exec_cpu_s=exec_cpu,
        tests_passed=3 if status == "passed" else 0,
        tests_total=3,
    )


def task(
    task_id: str,
    side: str,
    attempts: list[Attempt],
    *,
    cpu: float = 0.0,
    wall: float = 1.0,
    rss: float = 100.0,
    sandbox_cpu: float = 0.0,
) -> TaskResult:
    passed = any(a.status == "passed" for a in attempts)
    return TaskResult(
        run_id="r",
        task_id=task_id,
        side=side,
        model=f"{side}-m",
        strategy="single" if side == LARGE else "adaptive",
        status="passed" if passed else "failed",
        tests_passed=3 if passed else 0,
        tests_total=3,
        depth_reached=max(a.depth for a in attempts),
        model_calls=len(attempts),
        wall_s=wall,
        prompt_tokens=sum(a.prompt_tokens for a in attempts),
        completion_tokens=sum(a.completion_tokens for a in attempts),
        gen_s=sum(a.gen_s for a in attempts),
        sandbox_cpu_s=sandbox_cpu,
        attempts=attempts,
        server=ResourceSummary(cpu_s=cpu, peak_rss_mb=rss, wall_s=wall),
    )


# -- stats ---------------------------------------------------------------------------------------------


def test_wilson_interval_hand_values():
    assert wilson_interval(7, 20) == pytest.approx((0.1812, 0.5671), abs=1e-4)
    # 45/50 -> [0.786, 0.957] (Miller, "Adding Error Bars to Evals"); 0/10 keeps a non-zero upper end.
    assert wilson_interval(45, 50) == pytest.approx((0.786, 0.957), abs=1e-3)
    low, high = wilson_interval(0, 10)
    assert low == 0.0 and high == pytest.approx(0.2775, abs=1e-4)
    # A fractional count (a mean score) lies strictly between its neighbours' intervals.
    assert wilson_interval(7, 20)[0] < wilson_interval(7.5, 20)[0] < wilson_interval(8, 20)[0]


def test_exact_mcnemar_hand_values():
    # 2 * (C(16,0) + ... + C(16,4)) / 2^16 = 2 * 2517 / 65536
    assert mcnemar_exact_p(12, 4) == pytest.approx(2 * 2517 / 65536, rel=1e-9)
    assert mcnemar_exact_p(12, 4) == pytest.approx(0.0768, abs=1e-4)
    assert mcnemar_exact_p(4, 12) == mcnemar_exact_p(12, 4)
    assert mcnemar_exact_p(0, 0) == 1.0
    assert mcnemar_exact_p(0, 6) == pytest.approx(2 / 64)


def test_bootstrap_is_seeded_and_contains_the_estimate():
    rng = np.random.default_rng(1)
    values = rng.normal(3.0, 1.0, 40)
    first = bootstrap_ci(values, np.median, resamples=2000, seed=7)
    assert first == bootstrap_ci(values, np.median, resamples=2000, seed=7)
    assert first != bootstrap_ci(values, np.median, resamples=2000, seed=8)
    assert first[0] < float(np.median(values)) < first[1]
    # Two tasks, 0 and 1: resampled means are 0, 0.5, 1 with probabilities 1/4, 1/2, 1/4, so the 95 %
    # percentile interval is exactly [0, 1]; a constant sample has a zero-width interval.
    assert bootstrap_ci([0, 1], resamples=2000) == (0.0, 1.0)
    assert bootstrap_ci([2.5] * 9, np.median) == (2.5, 2.5)
    assert bootstrap_ci([]) is None


def test_pass_at_k_hand_values():
    assert pass_at_k(200, 13, 1) == pytest.approx(0.065)
    assert pass_at_k(200, 13, 10) == pytest.approx(0.4976, abs=1e-4)
    assert pass_at_k(3, 1, 2) == pytest.approx(1 - 1 / 3)  # 1 - C(2,2)/C(3,2)
    assert pass_at_k(2, 1, 1) == 0.5
    assert pass_at_k(4, 3, 2) == 1.0  # fewer than k failures: every k-subset holds a pass
    assert pass_at_k(5, 0, 3) == 0.0
    assert math.isnan(pass_at_k(1, 1, 2))  # n < k: NaN, never a flattering 1.0
    assert mean_pass_at_k([(2, 1), (4, 2)], 1) == pytest.approx(0.5)
    assert math.isnan(mean_pass_at_k([(2, 1), (1, 1)], 2))
    with pytest.raises(ValueError):
        pass_at_k(2, 3, 1)


# -- costs ---------------------------------------------------------------------------------------------


def test_ratios_are_medians_of_per_task_large_over_small():
    large = [task(t, LARGE, [node("0")], wall=w, cpu=c) for t, w, c in (("a", 10, 8), ("b", 6, 6), ("c", 4, 0))]
    small = [task(t, SMALL, [node("0")], wall=w, cpu=c) for t, w, c in (("a", 5, 2), ("b", 6, 3), ("c", 1, 1))]
    wall = ratio_summary(large, small, "wall_s")
    assert wall["median"] == pytest.approx(2.0) and wall["tasks"] == 3  # ratios 2, 1, 4
    assert wall["ci95"][0] <= 2.0 <= wall["ci95"][1]
    cpu = ratio_summary(large, small, "cpu_s")
    assert cpu["tasks"] == 2 and cpu["median"] == pytest.approx(3.0)  # task c has no large CPU: left out
    assert ratio_summary(large, small, "energy_j") == {"median": None, "ci95": None, "tasks": 0}
    assert pct_less_from_ratio(2.0) == pytest.approx(50.0)  # small needs half: 50 % less
    assert pct_less_from_ratio(0.5) == pytest.approx(-100.0)  # small needs twice as much


def test_cost_per_solved_task():
    results = [
        task("a", SMALL, [node("0", "passed", prompt=10, completion=20)], cpu=4, sandbox_cpu=1, wall=2),
        task("b", SMALL, [node("0", prompt=30, completion=40)], cpu=5, wall=3),
    ]
    assert cost_per_solved(results) == {"wall_s": 5.0, "cpu_s": 10.0, "tokens": 100.0, "energy_j": None}
    assert cost_per_solved(results[1:])["cpu_s"] is None  # nothing solved: no finite price


def test_energy_sums_the_counters_that_were_read():
    # model_copy(update=...) so the test holds for records from before the energy fields existed.
    def with_energy(r: TaskResult, **joules: float) -> TaskResult:
        return r.model_copy(update={"server": r.server.model_copy(update=joules)})

    a = with_energy(task("a", SMALL, [node("0", "passed")]), cpu_energy_j=30.0, gpu_energy_j=12.0)
    b = with_energy(task("b", SMALL, [node("0")]), cpu_energy_j=18.0)
    assert energy_j(a) == 42.0 and energy_j(b) == 18.0
    assert energy_j(task("c", SMALL, [node("0")])) is None
    assert cost_per_solved([a, b])["energy_j"] == 60.0
    large = [with_energy(task(t, LARGE, [node("0")]), cpu_energy_j=j) for t, j in (("a", 84.0), ("b", 9.0))]
    assert ratio_summary(large, [a, b], "energy_j")["median"] == pytest.approx((2.0 + 0.5) / 2)


# -- equal budget --------------------------------------------------------------------------------------


def test_replay_order_is_depth_then_numeric_id():
    shuffled = [node("0.10"), node("0.1.0"), node("0.2"), node("0"), node("0.0")]
    assert [a.attempt_id for a in replay_order(shuffled)] == ["0", "0.0", "0.2", "0.10", "0.1.0"]


def small_tree() -> TaskResult:
    # root fails (100 tokens), its first child passes (150), its second fails (120).
    return task(
        "t",
        SMALL,
        [
            node("0", prompt=60, completion=40, gen_s=1.0, exec_cpu=0.1),
            node("0.1", prompt=70, completion=50, gen_s=1.0, exec_cpu=0.1),
            node("0.0", "passed", prompt=90, completion=60, gen_s=3.0, exec_cpu=0.1),
        ],
        cpu=10.0,
        sandbox_cpu=0.3,
    )


def test_equal_budget_truncation_on_a_hand_built_tree():
    tree = small_tree()
    # One by one: 100 (0) + 150 (0.0, passes) = 250.
    assert first_pass_spend(tree, "tokens") == 250
    assert solved_within(tree, 250, "tokens") and not solved_within(tree, 249, "tokens")
    # Siblings together: the whole first level (150 + 120) is paid before its verdicts: 370.
    assert first_pass_spend(tree, "tokens", siblings_together=True) == 370
    assert not solved_within(tree, 300, "tokens", siblings_together=True)
    # CPU: 10 s of server CPU split by gen_s 1 : 3 : 1 -> 2, 6, 2, plus 0.1 s sandbox each.
    assert [round(s, 6) for _, s in attempt_spends(tree, "cpu_s")] == [2.1, 6.1, 2.1]
    assert first_pass_spend(tree, "cpu_s") == pytest.approx(8.2)
    assert first_pass_spend(tree, "gen_s") == pytest.approx(4.0)


def test_cpu_apportioning_falls_back_to_completion_tokens():
    tree = task("t", SMALL, [node("0", completion=30), node("0.0", "passed", completion=10)], cpu=8.0)
    assert [s for _, s in attempt_spends(tree, "cpu_s")] == [6.0, 2.0]


def test_equal_budget_pairs_capped_small_with_large():
    large = [
        task("t", LARGE, [node("0", prompt=200, completion=100)]),  # budget 300: small fits (250)
        task("u", LARGE, [node("0", "passed", prompt=100, completion=100)]),  # budget 200: no
        task("v", LARGE, [node("0", prompt=10, completion=10)]),
    ]
    small = [
        small_tree(),
        small_tree().model_copy(update={"task_id": "u"}),
        task("v", SMALL, [node("0", prompt=5, completion=5)]),
    ]
    result = equal_budget(large, small, "tokens", names=(LARGE, SMALL))
    assert result["per_task"] == {"t": True, "u": False, "v": False}
    assert (result["small_solved"], result["large_solved"]) == (1, 1)
    assert (result["only_small_solved"], result["only_large_solved"]) == (1, 1)
    assert result["mcnemar_p"] == 1.0
    assert result["small_success_rate"] == pytest.approx(1 / 3)


def test_budget_curve_steps_where_tasks_become_solved():
    results = [
        small_tree(),
        task("b", SMALL, [node("0", "passed", prompt=20, completion=20)]),
        task("c", SMALL, [node("0", prompt=400, completion=100)]),
    ]
    assert budget_curve(results, "tokens") == [(0.0, 0.0), (40.0, 1 / 3), (250.0, 2 / 3), (500.0, 2 / 3)]


# -- branching -----------------------------------------------------------------------------------------


def test_branching_statistics():
    results = [
        small_tree(),  # reached 1, first pass at 1, 3 nodes
        task("b", SMALL, [node("0", "passed")]),  # reached 0, first pass at 0
        task("c", SMALL, [node("0"), node("0.0"), node("0.1"), node("0.0.0"), node("0.0.1")]),
    ]
    stats = branching_stats(results, max_depth=2)
    assert stats["depth_reached"] == {"0": 1, "1": 1, "2": 1}
    assert stats["first_pass_depth"] == {"0": 1, "1": 1, "2": 0}
    assert [stats["success_if_stopped_at_depth"][d]["solved"] for d in "012"] == [1, 2, 2]
    assert stats["calls_per_task"] == {"mean": 3.0, "median": 3, "max": 5, "distribution": {"1": 1, "3": 1, "5": 1}}
    assert (stats["nodes"], stats["passing_nodes"]) == (9, 2)
    # pass@1 over nodes: (1/3 + 1/1 + 0/5) / 3; pass@2 undefined (task b has a single node).
    assert stats["pass_at_k_nodes"]["1"] == pytest.approx((1 / 3 + 1 + 0) / 3)
    assert math.isnan(pass_at_k_over_nodes(results)["2"])
    assert stats["pass_at_k_nodes"]["2"] is None and "10" not in stats["pass_at_k_nodes"]  # None in dicts: JSON
    assert first_pass_depth(results[2]) is None


def test_pass_at_k_over_independent_samples():
    # A side that drew 4 independent samples per task: pass@2 = mean(1 - C(2,2)/C(4,2), 0) = (5/6) / 2.
    results = [
        task("a", LARGE, [node("0", "passed"), node("1", "passed"), node("2"), node("3")]),
        task("b", LARGE, [node("0"), node("1"), node("2"), node("3")]),
    ]
    assert pass_at_k_over_nodes(results)["2"] == pytest.approx((1 - 1 / 6) / 2)


# -- compare: the new keys -----------------------------------------------------------------------------


def test_compare_adds_paired_bootstrap_and_per_task_ratios():
    results = []
    for i in range(10):
        results.append(
            task(
                f"t{i}", LARGE, [node("0", "passed" if i < 3 else "failed", prompt=100)], wall=4.0, cpu=4.0, rss=1000.0
            )
        )
        results.append(
            task(f"t{i}", SMALL, [node("0", "passed" if i < 6 else "failed", prompt=50)], wall=2.0, cpu=1.0, rss=250.0)
        )
    data = compare(RunRecord(run_id="r"), results, seed=3)
    json.dumps(data, allow_nan=False)  # `sizeup compare --json` stays strict JSON
    assert data["efficiency"]["success_rate_diff"] == pytest.approx(0.3)
    low, high = data["quality"]["success_rate_diff_ci95"]
    assert low <= 0.3 <= high and low >= 0.0  # every discordant task favours the small side
    assert (
        data["quality"]["success_rate_diff_ci95"]
        == compare(RunRecord(run_id="r"), results, seed=3)["quality"]["success_rate_diff_ci95"]
    )
    assert data["quality"]["mcnemar_p"] == pytest.approx(2 / 8)  # 3 discordant, all one way
    eff = data["efficiency"]
    assert eff["ratios"]["wall_s"]["median"] == 2.0 and eff["time_pct_faster_per_task"]["median"] == 50.0
    assert eff["memory_pct_less_per_task"] == {"median": 75.0, "ci95": [75.0, 75.0]}
    assert eff["tokens_pct_less_per_task"]["median"] == 50.0
    assert data["sides"]["small"]["mean_test_pass_ratio_ci95"] == list(wilson_interval(6, 10))
    assert data["equal_budget"]["tokens"]["small_solved"] == 6  # 50 tokens always within the large 100


# -- held-out passes: an overfit node is not a solution ---------------------------------------------------


def heldout(task_id: str, attempts: list[Attempt], kept: str, held_out_pass: bool) -> TaskResult:
    """An arm's result on a task with 2 hidden tests: node statuses are visible verdicts (what the search saw);
    only the kept node was judged on the hidden tests, and the task passed only if it passed them too."""
    result = task(task_id, SMALL, attempts, cpu=5.0)
    best = next(a for a in attempts if a.attempt_id == kept)
    return result.model_copy(
        update={
            "status": Status.PASSED if held_out_pass else Status.FAILED,
            "visible_status": best.status,
            "hidden_total": 2,
            "hidden_passed": 2 if held_out_pass else 1,
            "best_attempt_id": kept,
        }
    )


def overfit_arm() -> list[TaskResult]:
    return [
        # The repair passes the visible tests by special-casing them and fails the hidden ones: overfit.
        heldout("o", [node("0", completion=10), node("0.0", "passed", completion=10)], "0.0", False),
        # A root that passes the visible tests but is not kept (never judged on hidden tests), then the kept one.
        heldout(
            "p",
            [node("0", "passed", completion=10), node("1", "passed", completion=30)],
            "1",
            True,
        ),
        # Solved at the root.
        heldout("q", [node("0", "passed", completion=10)], "0", True),
    ]


def test_an_overfit_node_never_counts_as_solved_so_equal_budget_never_beats_the_arm():
    arm = overfit_arm()
    # A baseline that spends far more on every task (the caps never bind) and solves nothing.
    base = [task(t, LARGE, [node("0", prompt=500, completion=500, gen_s=50.0)], cpu=50.0) for t in "opq"]
    run = RunRecord(run_id="r", config={"large_model": "L", "small_model": "S"})
    data = compare(run, base + arm)
    side = data["sides"][SMALL]
    # Every kept answer passed what the arm saw; two of three passed the hidden tests as well.
    assert side["visible_success_rate"] == 1.0 and side["success_rate"] == pytest.approx(2 / 3)
    assert side["overfit"] == 1 and side["overfit_rate"] == pytest.approx(1 / 3)
    for kind in ("tokens", "cpu_s", "gen_s"):
        e = data["equal_budget"][kind]
        assert e["small_success_rate"] <= side["success_rate"]  # counting visible passes gave 3 / 3 here
        assert e["per_task"] == {"o": False, "p": True, "q": True}
        curve = data["budget_curves"][kind][SMALL]
        assert max(rate for _, rate in curve) <= side["success_rate"]
    # The replay has to reach the kept node of p (10 + 30 tokens), not its visibly passing root (10).
    assert first_pass_spend(arm[1], "tokens") == 40
    assert first_pass_depth(arm[0]) is None and first_pass_depth(arm[1]) == 0
    br = data["branching"]
    assert all(s["success_rate"] <= side["success_rate"] for s in br["success_if_stopped_at_depth"].values())
    assert br["success_if_stopped_at_depth"]["1"]["solved"] == 2
    # Nodes: 5, held-out passing 2 (the kept answers of p and q), not the 4 that passed visibly.
    assert (br["nodes"], br["passing_nodes"]) == (5, 2)
    assert pass_at_k_over_nodes(arm)["1"] == pytest.approx((0 + 1 / 2 + 1) / 3)
    assert sum(data["arms"][1]["tree_shape"]["first_pass_from"].values()) == 2


def test_without_hidden_tests_a_passing_node_counts_as_before():
    tree = small_tree()  # no hidden tests: a node's verdict is on every test
    assert first_pass_spend(tree, "tokens") == 250 and first_pass_depth(tree) == 1


# -- unmeasured figures are None, never 0 ----------------------------------------------------------------


def remote(result: TaskResult) -> TaskResult:
    """The same result from a model server sizeup could not watch and that reported no prompt tokens."""
    server = result.server.model_copy(
        update={
            "cpu_s": 0.0,
            "peak_rss_mb": 0.0,
            "method": {"cpu_s": Measured.NOT_MEASURABLE, "peak_rss_mb": Measured.NOT_MEASURABLE},
        }
    )
    return result.model_copy(update={"server": server, "method": {"prompt_tokens": "not_measurable"}})


def test_a_remote_servers_cpu_memory_and_tokens_are_not_measured_not_zero():
    from sizeup.analysis.costs import figure
    from sizeup.analysis.tables import comparison_table, equal_budget_table

    base = [task(f"t{i}", LARGE, [node("0", "passed", prompt=50, completion=50)], cpu=4.0) for i in range(4)]
    arm = [remote(task(f"t{i}", SMALL, [node("0", "passed", completion=20)], cpu=1.0)) for i in range(4)]
    assert figure(arm[0], "cpu_s") is None and figure(arm[0], "peak_rss_mb") is None
    assert figure(arm[0], "tokens") is None and figure(base[0], "cpu_s") == 4.0
    data = compare(RunRecord(run_id="r"), base + arm)
    side = data["sides"][SMALL]
    assert side["per_task_median"]["cpu_s"] == {"median": None, "ci95": None, "tasks": 0}
    assert side["model_peak_rss_mb"] is None and side["cpu_s_total"] is None and side["tokens_total"] is None
    assert side["cost_per_solved"]["cpu_s"] is None and side["model_mean_cpu_pct"] is None
    assert data["efficiency"]["cpu_pct_less"] is None and data["efficiency"]["memory_pct_less"] is None
    assert data["efficiency"]["ratios"]["cpu_s"]["tasks"] == 0
    for kind in ("cpu_s", "tokens"):
        e = data["equal_budget"][kind]
        assert (e["tasks"], e["tasks_not_measured"], e["small_success_rate"]) == (0, 4, None)
        assert set(e["per_task"].values()) == {None} and data["budget_curves"][kind][SMALL] == []
    assert data["equal_budget"]["gen_s"]["tasks"] == 4  # timed by sizeup: measured
    header, rows = comparison_table(data)
    column = header.index(next(h for h in header if h.startswith(SMALL)))
    cells = {row[0]: row[column] for row in rows}
    assert cells["CPU per task, median [95 % CI]"] == "not measured"
    assert cells["CPU, total (model server + sandbox)"] == "not measured"
    assert cells["tokens, total (prompt + completion)"] == "not measured"
    assert "4 tasks not measured" in equal_budget_table(data)[1][1][0]
    json.dumps(data, allow_nan=False)


def test_export_leaves_unmeasured_figures_empty_and_credits_only_held_out_passes(tmp_path):
    from sizeup.store import open_store
    from sizeup.store.transfer import export_run

    arm = [remote(r) if r.task_id == "q" else r for r in overfit_arm()]
    with open_store(f"sqlite:///{tmp_path / 's.db'}") as store:
        store.save_run(RunRecord(run_id="r", config={"large_model": "L", "small_model": "S"}))
        for result in arm:
            store.save_result(result)
        export_run(store, "r", "jsonl", tmp_path / "rows.jsonl")
    rows = {row["task_id"]: row for row in map(json.loads, (tmp_path / "rows.jsonl").read_text().splitlines())}
    figures = ("model_cpu_s", "model_peak_rss_mb", "model_mean_cpu_pct", "prompt_tokens")
    assert [rows["q"][f] for f in figures] == [None] * 4  # a server sizeup could not watch: empty, not 0
    assert all(rows["p"][f] is not None for f in figures)
    # o's repair passed only what it was shown: no first pass to credit, as compare says.
    assert rows["o"]["first_pass_from"] is None and rows["p"]["first_pass_from"] == "node by ?"


def test_a_held_out_run_that_the_harness_failed_is_no_overfit():
    (o, *_) = overfit_arm()
    assert o.overfit
    assert not o.model_copy(update={"status": Status.HARNESS_ERROR}).overfit


def test_plan_and_helper_calls_are_not_nodes():
    plan = node("0").model_copy(update={"executed": False, "status": Status.UNVERIFIED})
    program = node("0.0", "passed")
    tree = task("t", SMALL, [plan, program])
    assert pass_at_k_over_nodes([tree])["1"] == 1.0  # one candidate program, and it passed
