"""The docker backend against a real Docker-API engine (podman's service here: tests/podman_engine.py): the same
verdicts as the process backend, the container's limits, the warm pool's hygiene, and its figures."""

from __future__ import annotations

import hashlib
import json
import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest

from podman_engine import Engine, docker_engine  # noqa: F401 - the session fixture
from requirements import need

# Aliased: pytest would try to collect classes named Test* imported into a test module.
from sizeup.sandbox import Limits, ProcessSandbox, Status
from sizeup.sandbox import TestOutcome as Outcome
from sizeup.sandbox.docker import LABEL, OWNER_LABEL, DockerSandbox, DockerUnavailable, cleanup
from sizeup.sandbox.process import DRIVER

HOSTILE = Path(__file__).parent / "hostile"
SHORT = Limits(timeout_s=1.0, test_timeout_s=0.5)
ADD = "def add(a, b):\n    return a + b\n"
ADD_TESTS = ["assert add(1, 2) == 3", "assert add(-1, 1) == 0", "assert add(2, 2) == 4"]


def hostile(name: str, marker: str = "") -> str:
    text = (HOSTILE / f"{name}.py").read_text()
    return text.replace("sizeup-hostile-marker", marker) if marker else text


@pytest.fixture(scope="module")
def engine(docker_engine) -> Engine:  # noqa: F811 - pytest passes the imported fixture
    return docker_engine


@pytest.fixture(scope="module")
def sandbox(engine):
    with DockerSandbox(engine.image, pool_size=2, client=engine.client) as box:
        yield box


@pytest.fixture(scope="module")
def single(engine):
    """One warm container, so consecutive runs show whether it was kept or replaced."""
    with DockerSandbox(engine.image, pool_size=1, client=engine.client) as box:
        yield box


def survivors(engine: Engine, marker: str, wait_s: float = 5.0) -> list[int]:
    """Host pids whose command line carries `marker` (read-only: the container's removal is what kills them)."""
    need(
        "a local Docker-API engine",
        "SIZEUP_REQUIRE_DOCKER",
        engine.local,
        "the engine is remote: its processes are not in this machine's /proc",
    )
    deadline = time.monotonic() + wait_s
    while True:
        found = [
            proc.pid
            for proc in psutil.process_iter(["cmdline", "status"])
            if marker in (proc.info["cmdline"] or []) and proc.info["status"] != psutil.STATUS_ZOMBIE
        ]
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def gone(engine: Engine, container_id: str, wait_s: float = 10.0) -> bool:
    """Whether the engine removed the container (replacements are removed in the background)."""
    deadline = time.monotonic() + wait_s
    while engine.client.api.containers(all=True, filters={"id": container_id}):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


# --- verdicts: the same as the process backend's ----------------------------------------------------------

PARITY = {
    "correct": (ADD, ADD_TESTS, Limits()),
    "wrong": ("def add(a, b):\n    return a + b if a > 0 else a - b\n", ADD_TESTS, Limits()),
    "syntax_error": ("def add(a, b)\n    return a + b\n", ADD_TESTS, Limits()),
    "top_level_exception": (ADD + "x = 1 / 0\n", ADD_TESTS, Limits()),
    "system_exit_in_a_test": (ADD, ["assert add(1, 2) == 3", "raise SystemExit(0)"], Limits()),
    "no_tests": (ADD, [], Limits()),
    "setup_code": ("def twice():\n    return 2 * BASE\n", ["assert twice() == 14"], Limits()),
    "main_guard_and_dataclass": (
        "import dataclasses\n@dataclasses.dataclass\nclass P:\n    x: int\n\nif __name__ == '__main__':\n    input()\n",
        ["assert P(1).x == 1"],
        Limits(),
    ),
    "exit_before_tests": (hostile("exit_before_tests"), ["assert answer() == 1"], Limits()),
    "os_exit_before_tests": (hostile("os_exit_before_tests"), ["assert answer() == 1"], Limits()),
    "forge_results": (hostile("forge_results"), ["assert False"], Limits()),
    "close_channels": (hostile("close_channels"), ["assert answer() == 42"], Limits()),
    "binary_garbage": (hostile("binary_garbage"), ["assert answer() == 42"], Limits()),
    "segfault": (hostile("segfault"), ["assert True"], Limits()),
    "close_stdout": (hostile("close_stdout"), ["assert answer() == 42"], Limits()),
    "recursion_limit": (hostile("deep_recursion"), ["dive(0)", "assert True"], Limits()),
    "c_stack_overflow": (hostile("deep_recursion"), ["crash()", "assert True"], Limits()),
    "looping_test": (
        ADD,
        ["assert add(1, 2) == 3", "while True:\n    pass", "assert add(2, 2) == 4"],
        Limits(timeout_s=5, test_timeout_s=0.5),
    ),
    "swallowed_timeout": (
        hostile("swallow_timeout"),
        ["stubborn()", "assert True"],
        Limits(timeout_s=5, test_timeout_s=0.3),
    ),
    "memory_hog_at_load": (hostile("memory_hog"), ["assert True"], Limits(memory_mb=256)),
    # A record the parent cannot read, written by the program: its error, not the harness's.
    "channel_overflow": (hostile("unreadable_record", "overflow"), ["assert solve(2) == 4"], Limits()),
    "channel_nesting": (hostile("unreadable_record", "nesting"), ["assert solve(2) == 4"], Limits()),
    # repr refuses ints of more than 4300 digits: still a wrong answer, and failed.
    "huge_wrong_answer": ("def solve(x):\n    return 10 ** 5000\n", ["assert solve(2) == 4"], Limits()),
    # Values the test only wraps (bool(CALL), set(CALL)) need not be plain data.
    "wrapped_values": (
        "import re\ndef matches(s):\n    return re.match('a', s)\n"
        "def squares(n):\n    return (i * i for i in range(n))\n",
        ["assert matches('abc')", "assert not matches('xyz')", "assert set(squares(3)) == set([0, 1, 4])"],
        Limits(),
    ),
    "memory_hog_in_a_test": (ADD, ["assert add(1, 2) == 3", "x = bytearray(2 * 1024**3)"], Limits(memory_mb=256)),
    "file_too_large": (
        "with open('big', 'wb') as f:\n    f.write(b'0' * 3 * 1024 * 1024)\n",
        ["assert True"],
        Limits(max_file_mb=1),
    ),
}


# What the newer cases must come to, on both sides (tests/test_sandbox.py says why).
VERDICTS = {
    "channel_overflow": Status.ERROR,
    "channel_nesting": Status.ERROR,
    "huge_wrong_answer": Status.FAILED,
    "wrapped_values": Status.PASSED,
}


@pytest.mark.parametrize("case", PARITY)
def test_verdicts_and_test_results_match_the_process_backend(sandbox, case):
    program, tests, limits = PARITY[case]
    setup = "BASE = 7" if case == "setup_code" else ""
    expected = ProcessSandbox().run(program, tests, limits, setup)
    run = sandbox.run(program, tests, limits, setup)
    assert run.backend == "docker" and run.container_id
    if case in VERDICTS:
        assert run.status is VERDICTS[case], run.detail
    assert (run.status, run.detail) == (expected.status, expected.detail)
    assert [(t.source, t.outcome, t.message) for t in run.tests] == [
        (t.source, t.outcome, t.message) for t in expected.tests
    ]
    # Tracebacks through the driver name its path, which differs.
    assert run.stdout == expected.stdout
    assert run.stderr == expected.stderr.replace(str(DRIVER), "/work/.sizeup/driver.py")


@pytest.mark.parametrize(
    "name", ["forge_frames", "forge_gc", "peek_expected", "read_job", "read_parent", "read_datasets"]
)
def test_no_program_passes_a_parent_compared_test_it_does_not_satisfy(sandbox, name):
    run = sandbox.run(hostile(name), ["assert solve(2) == 4", "assert solve(3) == 6"], Limits(timeout_s=20))
    assert [t.mode for t in run.tests] == ["parent-compared"] * 2
    assert run.status is not Status.PASSED and run.status is not Status.HARNESS_ERROR, run.detail
    # read_datasets: no dataset or store in the image holds an expected value (its prefix, /usr/lib, /work) —
    # after a walk that did happen, or the empty list would prove nothing.
    lines = run.stdout.splitlines()
    if name == "read_datasets":
        assert any(line.startswith("searched: ") for line in lines), run.stdout
    assert [line for line in lines if line.startswith("read: ") and not line.endswith("{}")] == []


@pytest.mark.parametrize("name", ["forge_frames", "os_exit_before_tests"])
def test_a_run_that_ends_before_the_driver_reports_still_has_a_measured_peak(sandbox, name):
    run = sandbox.run(hostile(name), ["assert solve(2) == 4"], Limits(timeout_s=20))
    assert run.peak_rss_mb > 1 and "ru_maxrss" in run.figures_from["peak_rss_mb"]


def test_a_correct_program_passes_on_a_warm_container_with_its_figures(sandbox):
    run = sandbox.run(ADD + "print('hi')\n", ADD_TESTS)
    assert run.status is Status.PASSED, run.detail
    assert (run.tests_passed, run.tests_total, run.exit_code, run.stdout) == (3, 3, 0, "hi\n")
    assert sandbox.startup_s > 0 and run.figures["container_start_s"] == 0 == run.figures["containers_started"]
    assert "cgroup" in run.figures_from["cpu_s"] and 0 < run.cpu_s < 2
    assert 0 < run.peak_rss_mb < 100 and run.peak_rss_mb <= run.figures["container_peak_mb"]
    assert run.figures["container_cpu_total_s"] >= run.cpu_s and run.figures["container_memory_mb"] > 0
    assert 0 < run.figures["run_wall_s"] < run.figures["exec_s"] < run.wall_s
    assert run.figures["oom_kills"] == 0 and run.figures["container_replaced"] == 0
    assert set(run.figures) <= set(run.figures_from) | {"container_replaced"}


def test_cpu_time_is_the_containers_cgroup_delta(sandbox):
    program = "import time\nend = time.process_time() + 0.5\nwhile time.process_time() < end:\n    pass\n"
    run = sandbox.run(program, ["assert True"])
    assert run.status is Status.PASSED
    assert 0.5 <= run.cpu_s < 1.5, run.cpu_s
    assert run.figures["rusage_cpu_s"] <= run.cpu_s + 0.01  # the cgroup counts the launcher too


# --- time -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("program", ["while True:\n    pass\n", hostile("ignore_sigterm")], ids=["loop", "no_sigterm"])
def test_an_infinite_loop_times_out_on_time_and_its_container_is_replaced(engine, sandbox, program):
    run = sandbox.run(program, ADD_TESTS, SHORT)
    assert run.status is Status.TIMEOUT
    assert SHORT.timeout_s <= run.figures["run_wall_s"] < SHORT.timeout_s + 0.5
    assert run.wall_s < SHORT.timeout_s + 3
    assert all(t.outcome is Outcome.NOT_RUN for t in run.tests)
    assert run.figures["container_replaced"] == 1 and run.figures_from["container_replaced"] == "the run timed out"
    assert gone(engine, run.container_id)


def test_a_blocking_read_on_stdin_gets_eof_at_once(sandbox):
    run = sandbox.run(hostile("block_on_stdin"), ["assert answer() == ''"], SHORT)
    assert run.status is Status.PASSED, run.detail


def test_endless_output_is_capped_and_the_run_ends_at_the_timeout(sandbox):
    limits = Limits(timeout_s=1.0, max_output_bytes=1000)
    run = sandbox.run(hostile("unbounded_output"), ["assert True"], limits)
    assert run.status is Status.TIMEOUT
    assert len(run.stdout) == 1000 and set(run.stdout) <= {"x", "\n"}
    assert run.wall_s < limits.timeout_s + 3


# --- memory -----------------------------------------------------------------------------------------------


def test_processes_together_over_the_containers_memory_are_killed_as_memory_exceeded(sandbox):
    # Each child stays under its own address-space limit (256 MB); together they pass the cgroup's 384 MB.
    program = (
        "import os, time\nkids = []\nfor _ in range(3):\n    pid = os.fork()\n    if pid == 0:\n"
        "        block = bytearray(150 * 1024 * 1024)\n        time.sleep(2)\n        os._exit(0)\n"
        "    kids.append(pid)\nfor pid in kids:\n    os.waitpid(pid, 0)\n"
    )
    run = sandbox.run(program, ["assert True"], Limits(memory_mb=256, timeout_s=10))
    assert run.status is Status.MEMORY_EXCEEDED, run.detail
    assert run.figures["oom_kills"] >= 1 and "cgroup" in run.detail
    assert run.figures["container_peak_mb"] > 300
    assert run.figures["container_replaced"] == 1


# --- the container's walls --------------------------------------------------------------------------------

WRITE_EVERYWHERE = """
import os
TARGETS = ["/x", "/etc/x", "/usr/x", "/home/x", "/root/x", "/tmp/x", "/var/tmp/x", "/run/x", "/work/x",
           "/work/.sizeup/x", "/work/.sizeup/driver.py", "/usr/lib/python3/dist-packages/x.py"]
ROOT_MOUNT = next(line.split()[5] for line in open("/proc/self/mountinfo") if line.split()[4] == "/")
WRITTEN = []
for path in TARGETS:
    try:
        with open(path, "a") as handle:
            handle.write("x")
        WRITTEN.append(path)
    except OSError:
        pass
"""


def test_writes_outside_the_run_dir_fail(sandbox):
    tests = [
        "assert WRITTEN == [], WRITTEN",
        "assert ROOT_MOUNT.split(',')[0] == 'ro', ROOT_MOUNT",
        "assert os.getcwd().startswith('/work/run-')",
        "open('mine', 'w').write('fine')",
    ]
    run = sandbox.run(WRITE_EVERYWHERE, tests)
    assert run.status is Status.PASSED, run.feedback()
    assert run.figures["container_replaced"] == 0


def test_state_left_in_shared_memory_gets_the_container_replaced(single):
    """leave_state: /tmp is read-only; its file in /dev/shm costs the container; its environment and working
    directory die with its process."""
    marker = f"sizeup-poison-{uuid.uuid4().hex}"
    run = single.run(hostile("leave_state", marker), ["assert answer() == 42", f"open('/tmp/{marker}', 'w')"])
    assert [t.outcome for t in run.tests] == [Outcome.PASSED, Outcome.ERROR]
    assert "Read-only file system" in run.tests[1].message
    assert run.figures["container_replaced"] == 1
    assert f"/dev/shm/{marker}" in run.figures_from["container_replaced"]
    checks = [
        f"assert not os.path.exists('/dev/shm/{marker}')",
        "assert 'SIZEUP_POISON' not in os.environ",
        "assert os.getcwd().startswith('/work/run-')",
    ]
    after = single.run("import os\n", checks)
    assert after.status is Status.PASSED, after.feedback()
    assert after.container_id != run.container_id


def test_deleting_its_cwd_leaves_the_container_fit_for_the_next_run(single):
    run = single.run(hostile("delete_cwd"), ["assert answer() == 42"])
    assert run.status is Status.PASSED, run.detail
    assert run.stdout.startswith("/work/run-") and run.figures["container_replaced"] == 0
    after = single.run(ADD, ADD_TESTS)
    assert after.status is Status.PASSED and after.container_id == run.container_id


def test_the_driver_and_the_system_cannot_be_overwritten_chmodded_or_deleted(single):
    targets = ["/work/.sizeup/driver.py", "/work/.sizeup/launcher.py", "/usr/bin/python3", "/etc/passwd"]
    run = single.run(f"TARGETS = {targets!r}\n" + hostile("escape_files"), ["assert answer() == 42"])
    assert run.status is Status.PASSED, run.detail
    assert run.stdout.count("Error(") == 4 * len(targets), run.stdout  # every attempt failed
    digest = hashlib.sha256(DRIVER.read_bytes()).hexdigest()
    after = single.run(
        "import hashlib\nDIGEST = hashlib.sha256(open('/work/.sizeup/driver.py', 'rb').read()).hexdigest()\n",
        [f"assert DIGEST == {digest!r}"],
    )
    assert after.status is Status.PASSED and after.container_id == run.container_id


def test_no_secret_of_the_host_reaches_the_program(sandbox, tmp_path, monkeypatch):
    secret = uuid.uuid4().hex
    planted = tmp_path / "secret.txt"
    planted.write_text(secret)
    monkeypatch.setenv("SIZEUP_SECRET", secret)
    run = sandbox.run(
        f"SECRET_PATH, SECRET = {str(planted)!r}, {secret!r}\n" + hostile("read_secrets"), ["assert answer() == 42"]
    )
    assert run.status is Status.PASSED, run.detail
    assert json.loads(run.stdout) == {"home": False, "environ": False, "proc": False, "parent_environ_readable": False}


def test_the_hosts_loopback_is_out_of_reach(sandbox):
    token = uuid.uuid4().hex
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(0.2)
        run = sandbox.run(
            f"PORT, TOKEN = {server.getsockname()[1]}, {token!r}\n" + hostile("connect_host"),
            ["assert reached() is False"],
        )
        with pytest.raises(TimeoutError):
            server.accept()
    assert run.status is Status.PASSED, run.detail
    assert "connect failed" in run.stdout


def test_the_network_is_unreachable(sandbox):
    program = (
        "import os, socket\nINTERFACES = sorted(os.listdir('/sys/class/net'))\nERRORS = []\n"
        "for host in ('1.1.1.1', '10.0.2.2', '8.8.8.8'):\n    try:\n"
        "        socket.create_connection((host, 53), timeout=1).close()\n"
        "    except OSError as exc:\n        ERRORS.append(type(exc).__name__)\n"
        "try:\n    socket.getaddrinfo('deb.debian.org', 80)\nexcept OSError as exc:\n"
        "    ERRORS.append(type(exc).__name__)\n"
    )
    run = sandbox.run(
        program, ["assert INTERFACES == ['lo'], INTERFACES", "assert len(ERRORS) == 4, ERRORS"], Limits(timeout_s=10)
    )
    assert run.status is Status.PASSED, run.feedback()


def test_the_candidate_is_nobody_without_capabilities_in_a_scrubbed_environment(sandbox, monkeypatch):
    monkeypatch.setenv("SIZEUP_SECRET", "do not leak")
    program = "import os\nENV = dict(os.environ)\nSTATUS = open('/proc/self/status').read()\nprint(hash('sizeup'))\n"
    tests = [
        "assert os.getuid() == 65534 and os.getgid() == 65534",
        "assert 'CapEff:\\t0000000000000000' in STATUS and 'NoNewPrivs:\\t1' in STATUS",
        "assert 'SIZEUP_SECRET' not in ENV and ENV['HOME'] == os.getcwd() == ENV['TMPDIR']",
        "assert ENV['PYTHONHASHSEED'] == '0'",
        # The launcher is not dumpable: the candidate cannot write a report in its name.
        "try:\n    os.open(f'/proc/{os.getppid()}/fd/1', os.O_WRONLY)\nexcept PermissionError:\n    pass\n"
        "else:\n    raise AssertionError('opened the launcher stdout')",
    ]
    first, second = sandbox.run(program, tests), sandbox.run(program, tests)
    assert first.status is Status.PASSED, first.feedback()
    assert first.stdout == second.stdout


def test_an_interpreter_that_cannot_start_is_a_harness_error(sandbox):
    run = sandbox.run(ADD, ADD_TESTS, Limits(memory_mb=2))
    assert run.status is Status.HARNESS_ERROR, run.detail
    assert "did not start" in run.detail and all(t.outcome is Outcome.NOT_RUN for t in run.tests)


# --- processes --------------------------------------------------------------------------------------------


def test_a_fork_bomb_meets_the_pids_limit_and_leaves_no_process(engine, sandbox):
    marker = f"sizeup-bomb-{uuid.uuid4().hex}"
    run = sandbox.run(hostile("fork_bomb", marker), ["assert True"], SHORT)
    # fork() fails at the pids limit: if the bomb's first process is the one it fails in, the program ends with
    # that error (ERROR); if not, it sleeps until the timeout. Never a pass, never a harness error.
    assert run.status in (Status.ERROR, Status.TIMEOUT), run.detail
    assert "BlockingIOError: [Errno 11] Resource temporarily unavailable" in run.stderr
    assert run.wall_s < SHORT.timeout_s + 3
    assert survivors(engine, marker) == []


def test_a_sleeping_grandchild_in_the_group_is_killed_with_it(engine, single):
    marker = f"sizeup-sleeper-{uuid.uuid4().hex}"
    run = single.run(hostile("spawn_sleeper", marker), ["assert answer() == 42"], SHORT)
    assert run.status is Status.PASSED, run.detail
    assert run.figures["container_replaced"] == 0  # the group kill got it: nothing was left
    assert survivors(engine, marker, wait_s=0) == []


def test_a_double_forked_daemon_after_a_passing_run_gets_the_container_replaced(engine, single):
    marker = f"sizeup-daemon-{uuid.uuid4().hex}"
    run = single.run(hostile("double_fork_daemon", marker), ["assert answer() == 42"], SHORT)
    assert run.status is Status.PASSED, run.detail
    assert run.figures["container_replaced"] == 1
    assert "processes left running" in run.figures_from["container_replaced"]
    assert marker in run.figures_from["container_replaced"]
    assert gone(engine, run.container_id) and survivors(engine, marker) == []


def test_a_daemon_thread_never_gets_to_start_its_process(engine, single):
    marker = f"sizeup-thread-{uuid.uuid4().hex}"
    run = single.run(hostile("daemon_thread", marker), ["assert answer() == 42"], SHORT)
    assert run.status is Status.PASSED, run.detail
    assert survivors(engine, marker, wait_s=1.0) == []


def test_waiting_on_a_sleeping_child_times_out_and_leaves_no_process(engine, sandbox):
    marker = f"sizeup-sleeping-child-{uuid.uuid4().hex}"
    run = sandbox.run(hostile("sleep_in_child", marker), ["assert True"], SHORT)
    assert run.status is Status.TIMEOUT
    assert survivors(engine, marker) == []


def test_a_grandchild_in_its_own_session_dies_with_the_container_at_the_timeout(engine, sandbox):
    marker = f"sizeup-escapee-{uuid.uuid4().hex}"
    run = sandbox.run(hostile("escape_session", marker), ["assert True"], SHORT)
    assert run.status is Status.TIMEOUT
    assert run.figures["container_replaced"] == 1
    assert gone(engine, run.container_id) and survivors(engine, marker) == []


def test_killing_its_launcher_is_the_programs_error_and_costs_the_container(single):
    run = single.run("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n" + ADD, ADD_TESTS)
    assert run.status is Status.ERROR, run.detail
    assert "launcher was killed by SIGKILL" in run.detail
    assert all(t.outcome is Outcome.NOT_RUN for t in run.tests)
    assert run.figures["container_replaced"] == 1


def test_concurrent_runs_from_threads_get_their_own_verdicts(sandbox):
    def one(i: int):
        expected = i if i % 2 == 0 else -1  # odd runs are wrong on purpose
        return i, sandbox.run(f"def f():\n    print({i})\n    return {i}\n", [f"assert f() == {expected}"])

    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(one, range(6)))
    for i, run in results:
        assert run.status is (Status.PASSED if i % 2 == 0 else Status.FAILED), (i, run.detail)
        assert run.stdout == f"{i}\n"
    assert len({run.container_id for _, run in results}) >= 2


# --- cold mode, start-up, clean-up ------------------------------------------------------------------------


def test_cold_mode_starts_one_container_per_candidate_and_leaves_none(engine):
    box = DockerSandbox(engine.image, pool_size=0, client=engine.client)
    try:
        runs = [box.run(ADD, ADD_TESTS) for _ in range(3)]
    finally:
        box.close()
    assert [run.status for run in runs] == [Status.PASSED] * 3
    assert len({run.container_id for run in runs}) == 3 and box.containers_started == 3
    assert all(run.figures["containers_started"] == 1 and run.figures["container_start_s"] > 0 for run in runs)
    assert box.startup_s < 0.5  # no pool to start
    assert all(gone(engine, run.container_id) for run in runs)


def test_cleanup_removes_containers_of_ended_owners_only(engine, sandbox):
    orphan = engine.client.containers.create(
        engine.image, ["true"], labels={LABEL: "1", OWNER_LABEL: "nohost-or-this/1/0"}
    )
    dead = engine.client.containers.create(
        engine.image, ["true"], labels={LABEL: "1", OWNER_LABEL: f"{socket.gethostname()}/999999999/0"}
    )
    try:
        removed = cleanup(engine.client)
        assert removed >= 1 and gone(engine, dead.id, wait_s=0)
        assert not gone(engine, orphan.id, wait_s=0)  # another host's owner: maybe alive, kept
        assert sandbox.run(ADD, ADD_TESTS).status is Status.PASSED  # the live sandbox's pool was spared
    finally:
        for container in (orphan, dead):
            try:
                container.remove(force=True)
            except Exception:
                pass


def test_a_missing_image_is_a_one_line_value_error(engine):
    with pytest.raises(DockerUnavailable, match="sizeup-no-such-image:0 is not on the engine"):
        DockerSandbox("sizeup-no-such-image:0", client=engine.client)
    assert isinstance(DockerUnavailable("x"), ValueError)
