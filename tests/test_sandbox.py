"""The process sandbox against real programs: verdicts, limits, and one hostile program per threat."""

from __future__ import annotations

import os
import signal
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

# Aliased: pytest would try to collect classes named Test* imported into a test module.
from sizeup.sandbox import Limits, ProcessSandbox, Status, make_sandbox
from sizeup.sandbox import TestOutcome as Outcome
from sizeup.sandbox.process import Facts, decide

HOSTILE = Path(__file__).parent / "hostile"
SANDBOX = ProcessSandbox()
SHORT = Limits(timeout_s=1.0, test_timeout_s=0.5)

ADD = "def add(a, b):\n    return a + b\n"
ADD_TESTS = ["assert add(1, 2) == 3", "assert add(-1, 1) == 0", "assert add(2, 2) == 4"]


def hostile(name: str, marker: str = "") -> str:
    text = (HOSTILE / f"{name}.py").read_text()
    return text.replace("sizeup-hostile-marker", marker) if marker else text


def survivors(marker: str, wait_s: float = 2.0) -> list[int]:
    """Pids whose command line carries `marker`, after giving the kernel up to `wait_s` to reap them."""
    psutil = pytest.importorskip("psutil", reason="psutil is needed to look for surviving processes")
    deadline = time.monotonic() + wait_s
    while True:
        found = []
        for proc in psutil.process_iter(["cmdline", "status"]):
            cmdline, status = proc.info["cmdline"] or [], proc.info["status"]
            if marker in cmdline and status != psutil.STATUS_ZOMBIE:
                found.append(proc.pid)
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def kill_all(pids: list[int]) -> None:
    """Clean up after a failing survivor test, so one failure does not leave load on the machine."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


# --- verdicts -------------------------------------------------------------------------------------------

def test_correct_program_passes_every_test():
    run = SANDBOX.run(ADD, ADD_TESTS)
    assert run.status is Status.PASSED, run.detail
    assert (run.tests_passed, run.tests_total) == (3, 3)
    assert [t.source for t in run.tests] == ADD_TESTS
    assert run.backend == "process" and run.exit_code == 0


def test_wrong_program_fails_the_one_test_it_gets_wrong():
    run = SANDBOX.run("def add(a, b):\n    return a + b if a > 0 else a - b\n", ADD_TESTS)
    assert run.status is Status.FAILED
    assert [t.outcome for t in run.tests] == [Outcome.PASSED, Outcome.FAILED, Outcome.PASSED]
    assert run.tests_passed == 2
    assert run.tests[1].message.startswith("AssertionError")


def test_syntax_error_is_an_error_and_runs_no_test():
    run = SANDBOX.run("def add(a, b)\n    return a + b\n", ADD_TESTS)
    assert run.status is Status.ERROR
    assert "SyntaxError" in run.detail
    assert all(t.outcome is Outcome.NOT_RUN for t in run.tests)


def test_exception_at_top_level_is_an_error_naming_the_line():
    run = SANDBOX.run(ADD + "x = 1 / 0\n", ADD_TESTS)
    assert run.status is Status.ERROR
    assert "ZeroDivisionError" in run.detail and "line 3" in run.detail
    assert all(t.outcome is Outcome.NOT_RUN for t in run.tests)


@pytest.mark.parametrize("name", ["exit_before_tests", "os_exit_before_tests"])
def test_exiting_before_the_tests_never_passes(name):
    run = SANDBOX.run(hostile(name), ["assert answer() == 1"])
    assert run.status is Status.ERROR, run.detail
    assert run.tests[0].outcome is Outcome.NOT_RUN


def test_forged_results_without_the_nonce_do_not_pass():
    run = SANDBOX.run(hostile("forge_results"), ["assert False"])
    assert run.status is not Status.PASSED
    assert run.status is not Status.HARNESS_ERROR, run.detail


def test_closing_the_result_channel_does_not_pass():
    run = SANDBOX.run(hostile("close_channels"), ["assert answer() == 42"])
    assert run.status is Status.ERROR, run.detail


def test_system_exit_inside_a_test_fails_only_that_test():
    tests = ["assert add(1, 2) == 3", "raise SystemExit(0)", "assert add(2, 2) == 4"]
    run = SANDBOX.run(ADD, tests)
    assert [t.outcome for t in run.tests] == [Outcome.PASSED, Outcome.ERROR, Outcome.PASSED]
    assert "SystemExit" in run.tests[1].message
    assert run.status is Status.FAILED


def test_no_tests_is_unverified_not_passed():
    run = SANDBOX.run(ADD, [])
    assert run.status is Status.UNVERIFIED
    assert run.tests == []


def test_setup_code_runs_before_the_program():
    run = SANDBOX.run("def twice():\n    return 2 * BASE\n", ["assert twice() == 14"], setup_code="BASE = 7")
    assert run.status is Status.PASSED, run.detail


def test_dataclasses_and_main_guard_work_as_in_a_module():
    program = ("from __future__ import annotations\nimport dataclasses\n\n@dataclasses.dataclass\n"
               "class P:\n    x: int\n\nif __name__ == '__main__':\n    input()\n")
    run = SANDBOX.run(program, ["assert P(1).x == 1"])
    assert run.status is Status.PASSED, run.detail


def test_site_packages_are_off_unless_asked_for():
    program, tests = "import pytest\n", ["assert pytest.fail"]  # pytest is installed wherever this runs
    assert "ModuleNotFoundError" in SANDBOX.run(program, tests).detail
    assert ProcessSandbox(site_packages=True).run(program, tests).status is Status.PASSED


# --- time -----------------------------------------------------------------------------------------------

def test_infinite_loop_at_top_level_times_out_on_time():
    run = SANDBOX.run("while True:\n    pass\n", ADD_TESTS, SHORT)
    assert run.status is Status.TIMEOUT
    assert SHORT.timeout_s <= run.wall_s < SHORT.timeout_s + 1.0
    assert all(t.outcome is Outcome.NOT_RUN for t in run.tests)


def test_a_looping_test_times_out_alone_and_the_others_still_run():
    tests = ["assert add(1, 2) == 3", "while True:\n    pass", "assert add(2, 2) == 4"]
    run = SANDBOX.run(ADD, tests, Limits(timeout_s=5, test_timeout_s=0.5))
    assert [t.outcome for t in run.tests] == [Outcome.PASSED, Outcome.TIMEOUT, Outcome.PASSED]
    assert run.status is Status.TIMEOUT
    assert run.wall_s < 3


def test_a_swallowed_test_timeout_fires_again():
    run = SANDBOX.run(hostile("swallow_timeout"), ["stubborn()", "assert True"],
                      Limits(timeout_s=5, test_timeout_s=0.3))
    assert [t.outcome for t in run.tests] == [Outcome.TIMEOUT, Outcome.PASSED]


def test_cpu_time_of_a_busy_loop_is_measured():
    program = "import time\nend = time.process_time() + 0.5\nwhile time.process_time() < end:\n    pass\n"
    run = SANDBOX.run(program, ["assert True"])
    assert run.status is Status.PASSED
    assert 0.3 <= run.cpu_s <= 1.0, run.cpu_s


def test_blocking_read_on_stdin_gets_eof_at_once():
    run = SANDBOX.run(hostile("block_on_stdin"), ["assert answer() == ''"], SHORT)
    assert run.status is Status.PASSED, run.detail
    assert run.wall_s < SHORT.timeout_s


# --- memory, output, files ------------------------------------------------------------------------------

def test_memory_hog_at_load_exceeds_memory():
    run = SANDBOX.run(hostile("memory_hog"), ["assert True"], Limits(memory_mb=256))
    assert run.status is Status.MEMORY_EXCEEDED, run.detail
    assert 0 < run.peak_rss_mb < 256


def test_memory_hog_inside_a_test_exceeds_memory():
    run = SANDBOX.run(ADD, ["assert add(1, 2) == 3", "x = bytearray(2 * 1024**3)"], Limits(memory_mb=256))
    assert run.status is Status.MEMORY_EXCEEDED
    assert run.tests[1].outcome is Outcome.ERROR and run.tests[1].message == "MemoryError"


def test_peak_memory_is_the_childs_own_not_the_big_parents():
    ballast = b"x" * (300 * 1024 * 1024)  # makes this parent's RSS big; wait4's ru_maxrss would inherit it
    small = SANDBOX.run("x = 1\n", ["assert x == 1"])
    big = SANDBOX.run("block = b'x' * (100 * 1024 * 1024)\n", ["assert len(block) > 0"])
    stuck = SANDBOX.run("while True:\n    pass\n", [], SHORT)
    assert len(ballast) > 0
    assert 0 < small.peak_rss_mb < 100
    assert 100 <= big.peak_rss_mb < 200
    assert stuck.status is Status.TIMEOUT and 0 < stuck.peak_rss_mb < 100


def test_endless_output_is_capped_and_the_run_ends_at_the_timeout():
    limits = Limits(timeout_s=1.0, max_output_bytes=1000)
    run = SANDBOX.run(hostile("unbounded_output"), ["assert True"], limits)
    assert run.status is Status.TIMEOUT
    assert len(run.stdout) == 1000 and set(run.stdout) <= {"x", "\n"}
    assert run.wall_s < limits.timeout_s + 1.0


def test_binary_garbage_on_stdout_and_stderr_is_decoded():
    run = SANDBOX.run(hostile("binary_garbage"), ["assert answer() == 42"])
    assert run.status is Status.PASSED, run.detail
    assert "\ufffd" in run.stdout and "not utf-8" in run.stderr


def test_file_size_limit_stops_a_big_write():
    program = "with open('big', 'wb') as f:\n    f.write(b'0' * 3 * 1024 * 1024)\n"
    run = SANDBOX.run(program, ["assert True"], Limits(max_file_mb=1))
    assert run.status is Status.ERROR
    assert "File too large" in run.detail


def test_deleting_its_cwd_spares_the_callers_files(tmp_path, monkeypatch):
    # The program runs in a temp dir of its own. This backend does NOT stop writes to absolute paths.
    sentinel = tmp_path / "sentinel.txt"
    sentinel.write_text("keep me")
    monkeypatch.chdir(tmp_path)
    run = SANDBOX.run(hostile("delete_cwd"), ["assert answer() == 42"])
    assert run.status is Status.PASSED, run.detail
    assert sentinel.read_text() == "keep me"
    workdir = Path(run.stdout.strip())
    assert workdir != tmp_path and not workdir.exists()  # and the sandbox's own temp dir is gone


def test_environment_is_scrubbed_and_hashing_is_deterministic(monkeypatch):
    monkeypatch.setenv("SIZEUP_SECRET", "do not leak")
    program = "import os\nENV = dict(os.environ)\nprint(hash('sizeup'))\n"
    tests = ["assert 'SIZEUP_SECRET' not in ENV", "assert ENV['HOME'] == os.getcwd()",
             "assert ENV['PYTHONHASHSEED'] == '0'"]
    first, second = SANDBOX.run(program, tests), SANDBOX.run(program, tests)
    assert first.status is Status.PASSED, first.feedback()
    assert first.stdout == second.stdout  # -I would ignore PYTHONHASHSEED and make these differ


# --- processes ------------------------------------------------------------------------------------------

def test_fork_bomb_ends_and_leaves_no_process():
    marker = f"sizeup-bomb-{uuid.uuid4().hex}"
    run = SANDBOX.run(hostile("fork_bomb", marker), ["assert True"], SHORT)
    left = survivors(marker)
    kill_all(left)
    assert run.status is Status.TIMEOUT
    assert run.wall_s < SHORT.timeout_s + 2.0
    assert left == []


def test_a_sleeping_grandchild_is_killed_after_a_normal_run():
    marker = f"sizeup-sleeper-{uuid.uuid4().hex}"
    run = SANDBOX.run(hostile("spawn_sleeper", marker), ["assert answer() == 42"], SHORT)
    left = survivors(marker)
    kill_all(left)
    assert run.status is Status.PASSED, run.detail
    assert run.wall_s < SHORT.timeout_s
    assert left == []


def test_a_grandchild_in_its_own_session_is_killed_at_the_timeout():
    marker = f"sizeup-escapee-{uuid.uuid4().hex}"
    run = SANDBOX.run(hostile("escape_session", marker), ["assert True"], SHORT)
    left = survivors(marker)
    kill_all(left)
    assert run.status is Status.TIMEOUT
    assert left == []


def test_a_segfault_is_an_error_naming_the_signal():
    run = SANDBOX.run(hostile("segfault"), ["assert True"])
    assert run.status is Status.ERROR
    assert "SIGSEGV" in run.detail and run.exit_code == -signal.SIGSEGV


def test_an_interpreter_that_cannot_start_is_a_harness_error():
    run = SANDBOX.run(ADD, ADD_TESTS, Limits(memory_mb=2))
    assert run.status is Status.HARNESS_ERROR, run.detail
    assert all(t.outcome is Outcome.NOT_RUN for t in run.tests)


def test_concurrent_runs_from_threads_get_their_own_verdicts():
    def one(i: int):
        expected = i if i % 2 == 0 else -1  # odd runs are wrong on purpose
        return i, SANDBOX.run(f"def f():\n    print({i})\n    return {i}\n", [f"assert f() == {expected}"])

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(one, range(8)))
    for i, run in results:
        assert run.status is (Status.PASSED if i % 2 == 0 else Status.FAILED), (i, run.detail)
        assert run.stdout == f"{i}\n"


# --- the verdict rules alone ----------------------------------------------------------------------------

PASS, FAIL, TIME = Outcome.PASSED, Outcome.FAILED, Outcome.TIMEOUT


def facts(outcomes=(PASS, PASS), **overrides) -> Facts:
    base = Facts(started=True, returncode=0, marker=True, outcomes=list(outcomes),
                 messages=["" for _ in outcomes])
    for key, value in overrides.items():
        setattr(base, key, value)
    return base


@pytest.mark.parametrize(("observed", "expected"), [
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
])
def test_decide(observed, expected):
    status, detail = decide(observed)
    assert status is expected
    assert (detail == "") == (expected is Status.PASSED)


def test_make_sandbox():
    assert isinstance(make_sandbox(), ProcessSandbox)
    assert make_sandbox("process").name == "process"
    with pytest.raises(ValueError, match="unknown sandbox backend 'nope'"):
        make_sandbox("nope")
