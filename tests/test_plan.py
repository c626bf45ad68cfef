"""Arms from the seed's flags, `--arm` and plan files; bad plans are one line naming file, line and field."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sizeup.cli.main import build_flat_parser, build_parser, run_arms
from sizeup.cli.plan import PlanError, load_plan, parse_arm_option
from sizeup.records import ArmSpec, Budget

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "plan.toml"


def test_the_seed_flags_mean_the_two_seed_arms_with_the_strategies_defaults():
    args = build_flat_parser().parse_args(
        ["--all", "--max-depth", "3", "--large-model", "big", "--small-model", "tiny", "--url", "http://x:11434"]
    )
    arms, baseline = run_arms(args, "ollama")
    assert baseline is None
    assert arms == [
        ArmSpec(name="large", strategy="single", models=["big"]),
        ArmSpec(name="small", strategy="adaptive", models=["tiny"], params={"max_depth": 3}),
    ]
    args = build_parser().parse_args(["run", "--all"])
    assert [arm.models for arm in run_arms(args, "embedded")[0]] == [["gemma3:270m"], ["smollm2:135m"]]


def test_a_budget_flag_goes_to_the_arms_that_make_more_than_one_call():
    args = build_parser().parse_args(["run", "--all", "--budget-tokens", "1000", "--max-tokens", "100"])
    large, small = run_arms(args, "embedded")[0]
    assert large.budget is None and small.budget == Budget(tokens=1000)
    assert small.params == {"max_tokens": 100} and large.params == {"max_tokens": 100}


def test_the_example_plan_has_four_arms_and_its_defaults():
    arms, baseline = load_plan(EXAMPLE, {}, None)
    assert baseline == "large" and [arm.name for arm in arms] == ["large", "small", "small-bon", "mixed"]
    assert [arm.strategy for arm in arms] == ["single", "adaptive", "best-of-n", "adaptive"]
    assert arms[2].params == {"max_tokens": 256, "n": 5}
    assert arms[3].models == ["smollm2:135m", "gemma3:270m"] and arms[3].budget == Budget(tokens=1536)


def test_flags_are_defaults_under_the_plan():
    arms, _ = load_plan(EXAMPLE, {"max_depth": 4, "temperature": 0.5}, None)
    assert arms[1].params["max_depth"] == 2  # the plan's own value wins
    assert arms[3].params["max_depth"] == 2 and arms[1].params["temperature"] == 0.5
    assert "max_depth" not in arms[2].params  # best-of-n has no max_depth


def test_an_arm_on_the_command_line():
    arm = parse_arm_option(
        "name=bon strategy=best-of-n models=smollm2:135m,gemma3:270m n=3 budget.calls=2", {"max_depth": 2}, None
    )
    assert arm == ArmSpec(
        name="bon",
        strategy="best-of-n",
        models=["smollm2:135m", "gemma3:270m"],
        params={"n": 3},
        budget=Budget(calls=2),
    )
    with pytest.raises(ValueError, match="'oops' is not key=value"):
        parse_arm_option("name=x oops", {}, None)


def test_a_budget_under_defaults_goes_to_every_arm_that_makes_more_than_one_call(tmp_path):
    plan = tmp_path / "plan.toml"
    plan.write_text(
        '[defaults]\nmax_tokens = 64\nbudget = { tokens = 600 }\n[[arm]]\nname = "a"\nstrategy = "single"\n'
        'models = ["m"]\n[[arm]]\nname = "b"\nstrategy = "adaptive"\nmodels = ["m"]\n[[arm]]\nname = "c"\n'
        'strategy = "adaptive"\nmodels = ["m"]\nbudget = { calls = 3 }\n'
    )
    arms, _ = load_plan(plan, {}, None)
    assert [arm.budget for arm in arms] == [None, Budget(tokens=600), Budget(calls=3)]
    assert [arm.params["max_tokens"] for arm in arms] == [64, 64, 64]


@pytest.mark.parametrize(
    "text, line, message",
    [
        (
            '[[arm]]\nname = "a"\nstrategy = "adaptive"\nmodels = ["m"]\nmax_depht = 2\n',
            5,
            "arm 1 (a), field 'max_depht': Extra inputs are not permitted",
        ),
        (
            '[[arm]]\nname = "a"\nstrategy = "single"\nmodels = ["m"]\n\n[[arm]]\nname = "b"\nstrategy = "magic"\n'
            'models = ["m"]\n',
            8,
            "arm 2 (b), field 'strategy': unknown strategy 'magic'",
        ),
        (
            '[[arm]]\nname = "a"\nstrategy = "best-of-n"\nmodels = ["m"]\nn = "many"\n',
            5,
            "arm 1 (a), field 'n': Input should be a valid integer",
        ),
        (
            '[[arm]]\nname = "a"\nstrategy = "adaptive"\nmodels = ["m"]\nbudget = { tokens = 10 }\n',
            5,
            "field 'budget': 10 is less than one call's max_tokens (384)",
        ),
        ('[[arm]]\nname = "a"\nstrategy = "single"\nmodels = []\n', 4, "field 'models'"),
        (
            '[[arm]]\nname = "a"\nstrategy = "single"\nmodels = ["m"]\n[[arm]]\nname = "a"\nstrategy = "single"\n'
            'models = ["m"]\n',
            6,
            "field 'name': arm name 'a' is used twice",
        ),
        (
            'baseline = "z"\n[[arm]]\nname = "a"\nstrategy = "single"\nmodels = ["m"]\n',
            1,
            "field 'baseline': 'z' is none of the arms (a)",
        ),
        ('[[arm]\nname = "a"\n', 1, "not valid TOML"),
        ("arms = 3\n", 1, "field 'arms': unknown"),
        ('baseline = "a"\narm = [1, 2]\n', 2, "field 'arm': arm 1 is 1, not a table"),
        (
            '[defaults]\nmax_tokens = 64\nmax_tokns = 64\n\n[[arm]]\nname = "a"\nstrategy = "single"\nmodels = ["m"]\n',
            3,
            "field 'defaults.max_tokns': no strategy has this parameter",
        ),
        (
            '[defaults]\nbudget = { tokns = 600 }\n[[arm]]\nname = "a"\nstrategy = "single"\nmodels = ["m"]\n',
            2,
            "field 'defaults.budget': tokns: Extra inputs are not permitted",
        ),
    ],
)
def test_a_bad_plan_is_one_line_naming_file_line_and_field(tmp_path, text, line, message):
    plan = tmp_path / "plan.toml"
    plan.write_text(text)
    with pytest.raises(PlanError) as caught:
        load_plan(plan, {}, None)
    error = str(caught.value)
    assert error.startswith(f"{plan}:{line}: ") and message in error and "\n" not in error


def test_the_cli_reports_a_bad_plan_in_one_line_and_stores_nothing(tmp_path):
    plan = tmp_path / "plan.toml"
    plan.write_text('[[arm]]\nname = "a"\nstrategy = "single"\nmodels = ["m"]\ntemprature = 1\n')
    db = tmp_path / "s.db"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "sizeup.cli",
            "run",
            "--plan",
            str(plan),
            "--task-type",
            "gcd",
            "--db",
            f"sqlite:///{db}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        f"sizeup: {plan}:5: arm 1 (a), field 'temprature': Extra inputs are not permitted (strategy 'single')"
    )
    assert not db.exists()


def sizeup(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sizeup.cli", *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_a_resume_refuses_flags_it_would_ignore_before_opening_the_store(tmp_path):
    db = tmp_path / "s.db"
    proc = sizeup("run", "--resume", "r1", "--workers", "2", "--max-depth", "3", "--db", f"sqlite:///{db}")
    assert proc.returncode == 1 and not db.exists()
    assert proc.stderr.strip() == (
        "sizeup: --resume continues the run with its own settings; drop --workers, --max-depth"
    )
    proc = sizeup("run", "--resume", "r1", "--threads", "2", "--limit", "5", "--db", f"sqlite:///{db}")
    assert proc.returncode == 1 and not db.exists()
    assert proc.stderr.strip().endswith("drop --threads, --limit")


def test_export_samples_defaults_to_the_first_arm_that_is_not_the_baseline_and_checks_a_named_one(tmp_path):
    db = tmp_path / "s.db"
    shutil.copy(Path(__file__).parent / "data" / "store-before-arms.db", db)
    url, rows, samples = f"sqlite:///{db}", tmp_path / "rows.jsonl", tmp_path / "samples.jsonl"
    proc = sizeup("export", "20261202-031755-6673", "-o", str(rows), "--samples", str(samples), "--db", url)
    assert proc.returncode == 0, proc.stderr
    assert "samples of arm small" in proc.stderr and samples.exists()  # progress goes to stderr
    rows.unlink()
    proc = sizeup(
        "export", "20261202-031755-6673", "-o", str(rows), "--samples", str(samples), "--arm", "x", "--db", url
    )
    assert proc.returncode == 1 and not rows.exists()
    assert proc.stderr.strip() == "sizeup: --arm x: run 20261202-031755-6673 has no such arm (large, small)"
