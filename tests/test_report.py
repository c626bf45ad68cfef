"""`sizeup report`: the same numbers in every format, a self-contained and escaped HTML page, several runs."""

from __future__ import annotations

import csv
import html
import io
import json
import re

import pytest

from sizeup.analysis.report import build_report, headline, render_csv, render_html, render_json, render_markdown
from sizeup.records import LARGE, SMALL, Attempt, ResourceSummary, RunRecord, TaskResult

HOSTILE = '<script>alert("x")</script><img src="https://evil.example/x.png">'


def attempt(attempt_id: str, passed: bool, tokens: int = 100) -> Attempt:
    parent = attempt_id.rsplit(".", 1)[0] if "." in attempt_id else None
    return Attempt(
        attempt_id=attempt_id,
        parent_id=parent,
        depth=attempt_id.count("."),
        status="passed" if passed else "failed",
        prompt_tokens=tokens // 2,
        completion_tokens=tokens // 2,
        gen_s=1.0,
        tests_passed=2 if passed else 1,
        tests_total=2,
        code=f"def f():\n    return {HOSTILE!r}",
        response=HOSTILE,
        feedback="assert f() == 1  # failed: AssertionError",
        prompt="solve <this>",
    )


def result(run_id: str, task_id: str, side: str, attempts: list[Attempt], wall: float) -> TaskResult:
    passed = any(a.status == "passed" for a in attempts)
    return TaskResult(
        run_id=run_id,
        task_id=task_id,
        side=side,
        model="big-7b" if side == LARGE else "tiny-1b",
        strategy="single" if side == LARGE else "adaptive",
        status="passed" if passed else "failed",
        tests_passed=2 if passed else 1,
        tests_total=2,
        best_attempt_id=attempts[-1].attempt_id,
        depth_reached=max(a.depth for a in attempts),
        model_calls=len(attempts),
        wall_s=wall,
        prompt_tokens=sum(a.prompt_tokens for a in attempts),
        completion_tokens=sum(a.completion_tokens for a in attempts),
        gen_s=sum(a.gen_s for a in attempts),
        attempts=attempts,
        server=ResourceSummary(
            cpu_s=2 * wall,
            peak_rss_mb=4000 if side == LARGE else 900,
            method={"cpu_s": "kernel", "peak_rss_mb": "sampled"},
        ),
    )


def make_run(run_id: str, tasks: int, small_wins: set[int], large_wins: set[int]) -> tuple[RunRecord, list]:
    run = RunRecord(
        run_id=run_id,
        config={
            "large_model": "big-7b",
            "small_model": "tiny-1b",
            "max_depth": 1,
            "branching": 2,
            "beam": 1,
            "parallel": 1,
        },
        environment={"dataset_hash": "abc123", "python": "3.11"},
        task_ids=[str(i) for i in range(tasks)],
        status="finished",
        load={"large": {"load_s": 3.5}, "small": {"load_s": 1.25}},
    )
    results = []
    for i in range(tasks):
        task_id = f"<b>{i}</b>" if i == 0 else str(i)  # task ids come from files: untrusted too
        results.append(result(run_id, task_id, LARGE, [attempt("0", i in large_wins, 400)], wall=4.0 + i))
        tree = [attempt("0", False), attempt("0.0", i in small_wins), attempt("0.1", False)]
        results.append(result(run_id, task_id, SMALL, tree, wall=6.0 + i))
    return run, results


@pytest.fixture(scope="module")
def report():
    return build_report([make_run("run-a", 12, small_wins={1, 2, 3, 4, 5}, large_wins={5, 6})])


@pytest.fixture(scope="module")
def page(report):
    return render_html(report)  # with plots: rendered once for the module


def visible_text(page: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


HEADLINE = re.compile(
    r"solved (\d+) % \[(\d+)–(\d+)\] of \d+ tasks vs large .*? (\d+) % \[(\d+)–(\d+)\]; "
    r"difference ([+-]\d+) pp.*?exact McNemar p = ([\d.]+)"
)


def test_the_same_numbers_in_every_format(report, page):
    data = json.loads(render_json(report))
    cmp = data["runs"][0]["comparison"]
    small, large = cmp["sides"]["small"], cmp["sides"]["large"]
    expected = (
        f"{100 * small['success_rate']:.0f}",
        f"{100 * small['success_rate_ci95'][0]:.0f}",
        f"{100 * small['success_rate_ci95'][1]:.0f}",
        f"{100 * large['success_rate']:.0f}",
        f"{100 * large['success_rate_ci95'][0]:.0f}",
        f"{100 * large['success_rate_ci95'][1]:.0f}",
        f"{100 * cmp['efficiency']['success_rate_diff']:+.0f}",
        f"{cmp['quality']['mcnemar_p']:.2g}",
    )
    assert expected[0] == "42" and expected[3] == "17"  # 5/12 and 2/12
    found = {
        name: HEADLINE.search(text).groups()
        for name, text in (
            ("terminal", headline(report)),
            ("html", visible_text(page)),
            ("md", html.unescape(render_markdown(report))),
        )
    }
    assert found == {"terminal": expected, "html": expected, "md": expected}
    # The comparison tables carry the same rates, and the CSV the same raw values as the JSON.
    for text in (visible_text(page), html.unescape(render_markdown(report))):
        assert f"{expected[0]} % [{expected[1]}–{expected[2]}]" in text
        assert f"{expected[3]} % [{expected[4]}–{expected[5]}]" in text
    rows = list(csv.DictReader(io.StringIO(render_csv(report))))
    by_key = {(r["section"], r["metric"], r["side"], r["task_id"]): r for r in rows}
    assert float(by_key["quality", "success_rate", "small", ""]["value"]) == small["success_rate"]
    assert float(by_key["quality", "success_rate", "large", ""]["ci95_high"]) == large["success_rate_ci95"][1]
    assert float(by_key["quality", "mcnemar_p", "small-large", ""]["value"]) == cmp["quality"]["mcnemar_p"]
    assert by_key["task", "passed", "small", "1"]["value"] == "True"


def test_html_is_one_self_contained_file_with_every_section(report, page):
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page)
    assert "<script" not in page and "<link" not in page and "@import" not in page
    assert page.count('src="data:image/png;base64,') == 5  # 4 for the run, the decision's Pareto plot
    for section in (
        "headline",
        "run0-comparison",
        "run0-plots",
        "run0-pairs",
        "run0-pair-small",
        "run0-tasks",
        "run0-trees",
        "run0-record",
        "methods",
    ):
        assert f'id="{section}"' in page
    # Each task row links to its tree, and the tree shows every node with its code and feedback.
    assert 'href="#run0-task3"' in page and 'id="run0-task3"' in page
    assert page.count("<li>") == 12 * 4 + 3  # 1 large + 3 small nodes per task, and 3 decision targets
    assert "failed: AssertionError" in page and "abc123" in page and "kernel" in page


def test_untrusted_text_is_escaped(report, page):
    assert "&lt;script&gt;" in page and "&lt;b&gt;0&lt;/b&gt;" in page
    assert "evil.example" in page and 'src="https://evil' not in page
    md = render_markdown(report)
    assert "<b>0</b>" not in md and "<script" not in md


def test_json_and_csv_have_no_nan(report):
    text = render_json(report)
    json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    pass_k = json.loads(text)["runs"][0]["comparison"]["sides"]["small"]["pass_at_k_nodes"]
    assert pass_k["1"] == pytest.approx(5 / 36) and pass_k["2"] == pytest.approx(10 / 36)  # 3 nodes, 1 passes
    assert "nan" not in render_csv(report).lower()


def test_several_runs_are_compared_on_common_tasks():
    first = make_run("run-a", 6, small_wins={1, 2}, large_wins={1})
    second = make_run("run-b", 4, small_wins={1, 2, 3}, large_wins=set())
    second[0].arms[1].params["max_depth"] = 3
    report = build_report([first, second], resamples=500)
    across = report["across_runs"]
    assert across["common_tasks"] == 4 and [r["run_id"] for r in across["rows"]] == ["run-a", "run-b"]
    assert [r["comparison"]["sides"]["small"]["solved"] for r in across["rows"]] == [2, 3]
    assert report["runs"][0]["comparison"]["tasks"] == 6  # each run's own section keeps all its tasks
    page = render_html(report, plots=False)
    assert "Runs compared on their 4 common tasks" in page and "max_depth=1" in page and "max_depth=3" in page
    assert headline(report).count("Run run-") == 2
    assert "| run-b |" in render_markdown(report)


def test_every_sandbox_status_gets_its_colour_and_trees_keep_numeric_order():
    from sizeup.analysis.report_html import CSS, _table, _tree
    from sizeup.sandbox.types import Status

    for status in Status:
        cell = _table((["task", "status"], [["1", status.value]]))
        assert f'<span class="status-{status.value}">' in cell
    assert ".status-memory_exceeded" in CSS and ".status-memory " not in CSS
    node = {
        "status": "failed",
        "tests_passed": 0,
        "tests_total": 1,
        "prompt_tokens": 1,
        "completion_tokens": 1,
        "gen_s": 0.1,
        "finish_reason": "stop",
        "depth": 1,
        "parent_id": "0",
    }
    siblings = [{**node, "attempt_id": f"0.{i}"} for i in (10, 2, 1)]
    html_tree = _tree(
        {"attempts": [{**node, "attempt_id": "0", "depth": 0, "parent_id": None}, *siblings], "best_attempt_id": "0"}
    )
    order = re.findall(r"<code>(0\.\d+)</code>", html_tree)
    assert order == ["0.1", "0.2", "0.10"]


def test_the_decision_section_has_its_link_and_the_methods_say_held_out(report, page):
    assert 'id="decision"' in page and '<a href="#decision">decision</a>' in page
    assert "held-out passing attempt" in visible_text(page) and "one-sided Wilson lower bound" in visible_text(page)
    without = dict(report, decision=None)
    assert 'href="#decision"' not in render_html(without, plots=False)


def test_a_report_before_any_common_task_says_n_a_not_zero():
    run, results = make_run("mid-run", 4, small_wins={2}, large_wins={0})
    # Each arm has finished other tasks than the other: nothing is common yet.
    started = [r for r in results if (r.arm == LARGE) == (r.task_id in ("<b>0</b>", "1"))]
    report = build_report([(run, started)], resamples=200)
    arms = report["runs"][0]["comparison"]["arms"]
    assert [arm["success_rate"] for arm in arms] == [None, None] and report["decision"] is None
    page = render_html(report)  # with plots: no arm is placed at 0 %
    cells = re.search(r"<td>success rate \[95 % CI\]</td>(.*?)</tr>", page).group(1)
    assert cells == "<td>n/a</td><td>n/a</td>"
    assert "n/a" in render_markdown(report) and json.loads(render_json(report))
