"""Scaling out: two local worker processes (pinned, each with its own sandbox), and a real local Ray cluster of
two node processes; a scripted model provider that every process loads ($SIZEUP_PLUGINS) and the real sandbox."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from requirements import need
from sizeup.cli.runner import RunConfig, Runner, check_budgets
from sizeup.cli.workers import LocalPool, WorkerError, WorkerSpec, claim_cpus, gpu_name, split_cpus
from sizeup.records import ArmSpec, Budget
from sizeup.store import StoreError, open_store
from sizeup.tasks import Task

TESTS_DIR = Path(__file__).parent
TASKS = [
    Task(
        task_id=f"w/{i}",
        source="test",
        prompt=f"Return x (task {i}).",
        entry_point="answer_for",
        tests=[f"assert answer_for({i}) == {i}"],
    )
    for i in range(8)
]
ARMS = [
    ArmSpec(name="large", strategy="single", models=["passer"]),
    ArmSpec(name="small", strategy="adaptive", models=["half"], params={"max_depth": 1}),
]


@pytest.fixture
def plugin_env(monkeypatch):
    monkeypatch.setenv("SIZEUP_PLUGINS", "scripted_plugin")
    path = os.pathsep.join(filter(None, [str(TESTS_DIR), os.environ.get("PYTHONPATH")]))
    monkeypatch.setenv("PYTHONPATH", path)
    return {**os.environ, "SIZEUP_PLUGINS": "scripted_plugin", "PYTHONPATH": path}


# A provider whose clients leave a file behind when closed (named by the closing process and the model): what
# shows that a worker's close() ran, i.e. that its model servers and sandbox were stopped, not abandoned.
CLOSING_PLUGIN = """
import os, time
from sizeup.models import register_provider
from sizeup.models.types import Completion, ModelClient, PromptStyle, Usage

class ClosingClient(ModelClient):
    provider = "closing-plugin"

    def __init__(self, model):
        self.model, self.style = model, PromptStyle.CHAT

    def generate(self, prompt, params=None):
        if self.model == "sleeper" and prompt.user != "Hi":
            time.sleep(30.0)
        usage = Usage(prompt_tokens=5, completion_tokens=7, total_s=0.01)
        return Completion("```python\\ndef answer_for(x):\\n    return x\\n```", usage, "stop")

    def close(self):
        time.sleep(1.0)  # as stopping a server or a docker container takes a while: a worker killed meanwhile shows
        with open(os.path.join(os.environ["CLOSED_DIR"], f"{os.getpid()}-{self.model}"), "w"):
            pass

@register_provider("closing-plugin")
def _provider(model, settings):
    return ClosingClient(model)
"""


@pytest.fixture
def closing_env(plugin_env, monkeypatch, tmp_path):
    """The closing-plugin provider in this process and every worker; the directory its clients' close() marks."""
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "closing_plugin.py").write_text(CLOSING_PLUGIN)
    closed = tmp_path / "closed"
    closed.mkdir()
    monkeypatch.setenv("CLOSED_DIR", str(closed))
    monkeypatch.setenv("SIZEUP_PLUGINS", "scripted_plugin,closing_plugin")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path / "plugins"), os.environ["PYTHONPATH"]]))
    monkeypatch.syspath_prepend(str(tmp_path / "plugins"))
    return closed


def closed_by(closed: Path) -> dict[int, set[str]]:
    """pid -> the models whose client that process closed."""
    found: dict[int, set[str]] = {}
    for marker in closed.iterdir():
        pid, model = marker.name.split("-", 1)
        found.setdefault(int(pid), set()).add(model)
    return found


def test_cpu_sets_are_disjoint_and_cover_the_cpus():
    assert split_cpus(2, [0, 1, 2, 3, 4]) == [[0, 1, 2], [3, 4]]
    assert split_cpus(1, [5, 7]) == [[5, 7]]
    with pytest.raises(ValueError, match="only 2 CPUs"):
        split_cpus(3, [0, 1])


HOLD_A_CPU = """
import sys, time
from pathlib import Path
from sizeup.cli.workers import claim_cpus
claim = claim_cpus(1, [0, 1], Path(sys.argv[1]))
print(claim.cpus, flush=True)
time.sleep(600)
"""


def test_cpu_claims_keep_workers_off_each_others_cpus_and_end_with_their_process(tmp_path):
    claims = tmp_path / "claims"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_A_CPU, str(claims)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "[0]"
        assert claim_cpus(2, [0, 1], claims) is None  # CPU 0 is the other process's: not two free
        mine = claim_cpus(1, [0, 1], claims)
        assert mine is not None and mine.cpus == [1]
        assert claim_cpus(1, [0, 1], claims) is None  # none left, not a CPU given twice
        holder.kill()  # SIGKILL: no clean-up code runs, and still the claim ends with its process
        holder.wait(timeout=10)
        again = claim_cpus(1, [0, 1], claims)
        assert again is not None and again.cpus == [0]
        mine.release()
        again.release()
        both = claim_cpus(2, [0, 1], claims)
        assert both is not None and both.cpus == [0, 1]
        both.release()
    finally:
        holder.kill()
        holder.wait(timeout=10)


def pairs(results) -> list[tuple[str, str]]:
    return sorted((r.task_id, r.arm) for r in results)


def test_two_local_workers_store_every_task_once_each_on_its_own_cpus(plugin_env, tmp_path, monkeypatch):
    import sizeup.cli.runner as runner

    def no_driver_sandbox(*args, **kwargs):
        raise AssertionError("the driver of a --workers run opened a sandbox")

    monkeypatch.setattr(runner, "make_sandbox", no_driver_sandbox)  # the workers (other processes) open theirs
    workers = min(2, len(os.sched_getaffinity(0)))
    config = RunConfig(provider="scripted-plugin", sandbox="process", workers=workers)
    with open_store(f"sqlite:///{tmp_path / 's.db'}") as store:
        run_id = Runner(store, config, ARMS).run(TASKS)
        results = store.results(run_id)
        run = store.get_run(run_id)
        starts = [p for _, p in store.progress(run_id) if p["kind"] == "start"]
    assert pairs(results) == sorted((t.task_id, a.name) for t in TASKS for a in ARMS)
    assert run.status == "finished" and run.config["concurrency"] == workers and len(run.load["workers"]) == workers
    cpu_sets = {tuple(r.worker["cpus"]) for r in results}
    assert len({r.worker["id"] for r in results}) == workers and len(cpu_sets) == workers
    assert not set.intersection(*map(set, cpu_sets)) if workers > 1 else True
    assert all(r.worker["concurrency"] == workers and r.worker["node"]["host"] for r in results)
    assert all(r.worker["pinned"] is True and "gpu" in r.worker["node"] for r in results)
    assert all(r.passed == (r.arm == "large") for r in results)
    # The sandbox the run names is the workers' own, as they reported it.
    assert run.config["sandbox_backend"] == "process" and "NOT isolated" in run.config["sandbox_isolation"]
    # The live view's task in flight: a start record for every arm of every task, from the worker that ran it.
    assert sorted((p["task_id"], p["arm"]) for p in starts) == pairs(results)
    ran_on = {(r.task_id, r.arm): r.worker["id"] for r in results}
    assert all(ran_on[(p["task_id"], p["arm"])] == p["worker"] for p in starts)
    # Every arm of a task runs on one worker: a task's arms are compared on the same CPUs.
    assert all(len({r.worker["id"] for r in results if r.task_id == t}) == 1 for t, _ in pairs(results))


def test_a_one_worker_run_records_its_worker_too(plugin_env, tmp_path):
    """Issue 17: every stored result has `worker`; a one-worker run's is this process, on the CPUs it may use,
    pinned by nobody, one task at a time."""
    with open_store(f"sqlite:///{tmp_path / 's.db'}") as store:
        run_id = Runner(store, RunConfig(provider="scripted-plugin", sandbox="process"), ARMS).run(TASKS[:2])
        results = store.results(run_id)
    assert len(results) == 4
    for result in results:
        assert result.worker is not None
        assert (result.worker["id"], result.worker["concurrency"], result.worker["pinned"]) == (0, 1, False)
        assert result.worker["cpus"] == sorted(os.sched_getaffinity(0))
        assert result.worker["node"]["host"] and result.worker["node"]["cores"] == os.cpu_count()


def test_a_normal_finish_lets_every_worker_close_its_servers_and_sandbox(closing_env, tmp_path):
    """The last result in, the driver waits for the workers to close (end-of-work None) instead of killing them
    inside close(): every worker process closed its clients."""
    workers = min(2, len(os.sched_getaffinity(0)))
    config = RunConfig(provider="closing-plugin", sandbox="process", workers=workers)
    arms = [ArmSpec(name="one", strategy="single", models=["passer"])]
    with open_store(f"sqlite:///{tmp_path / 's.db'}") as store:
        run_id = Runner(store, config, arms).run(TASKS[:4])
        assert len(store.results(run_id)) == 4
    closed = closed_by(closing_env)
    assert len(closed) == workers and all(models == {"passer"} for models in closed.values())
    assert os.getpid() not in closed  # the driver made no client of its own


def test_a_stopped_worker_closes_its_servers_before_it_exits(closing_env):
    """SIGTERM (an error elsewhere, Ctrl-C, the driver dying) unwinds a worker mid-task through its close()."""
    config = RunConfig(provider="closing-plugin", sandbox="process")
    arm = ArmSpec(name="slow", strategy="single", models=["sleeper"])
    spec = WorkerSpec(0, split_cpus(1)[0], "r", dataclasses.asdict(config), [arm.model_dump()], 1)
    pool = LocalPool([spec])
    try:
        pool.start()
        pool.submit_all([(TASKS[0].model_dump_json(), ["slow"])])
        # The worker took the task and began its arm: a 30 s call, cut short by stop() below.
        assert pool._next() == ("start", 0, {"task_id": TASKS[0].task_id, "arm": "slow"})
    finally:
        began = time.monotonic()
        pool.stop()
    assert time.monotonic() - began < 10  # told to stop at once: neither the call waited out nor a kill
    (process,) = pool.processes
    assert process.exitcode == 143 and closed_by(closing_env) == {process.pid: {"sleeper"}}


def test_a_failure_after_the_servers_started_marks_the_run_failed_and_stops_them(closing_env, tmp_path):
    # A CPU budget the started server cannot measure (no local process): refused once the model is up.
    arms = [ArmSpec(name="cpu", strategy="single", models=["passer"], budget=Budget(cpu_s=5))]
    with open_store(f"sqlite:///{tmp_path / 's.db'}") as store:
        with pytest.raises(ValueError, match="arm cpu: a CPU budget needs a local model server"):
            Runner(store, RunConfig(provider="closing-plugin", sandbox="process"), arms).run(TASKS[:1])
        (run,) = store.list_runs()
        assert run.status == "failed" and closed_by(closing_env) == {os.getpid(): {"passer"}}
        # A store that fails mid-run: the run is failed too (not left `running`), its server stopped.
        for marker in closing_env.iterdir():
            marker.unlink()

        def broken(result):
            raise StoreError("disk full")

        store.save_result = broken  # type: ignore[method-assign]
        plain = [ArmSpec(name="plain", strategy="single", models=["passer"])]
        with pytest.raises(StoreError, match="disk full"):
            Runner(store, RunConfig(provider="closing-plugin", sandbox="process"), plain).run(TASKS[:1])
        assert [r.status for r in store.list_runs()] == ["failed", "failed"]
    assert closed_by(closing_env) == {os.getpid(): {"passer"}}


# A driver whose store fails at its first save while the task queue still holds far more than a pipe's
# 64 KB: its error must end the process, not leave it waiting at exit for the queue to drain into workers
# that are gone.
FULL_QUEUE_DRIVER = """
import sys
from sizeup.cli.runner import RunConfig, Runner
from sizeup.records import ArmSpec
from sizeup.store import StoreError, open_store
from sizeup.tasks import Task

def broken(result):
    raise StoreError("disk full")

tasks = [Task(task_id=f"q/{i}", source="test", prompt="Return x. " + "pad " * 500, entry_point="answer_for",
              tests=[f"assert answer_for({i}) == {i}"]) for i in range(400)]
with open_store(sys.argv[1]) as store:
    store.save_result = broken
    try:
        Runner(store, RunConfig(provider="scripted-plugin", sandbox="process", workers=2),
               [ArmSpec(name="plain", strategy="single", models=["passer"])]).run(tasks)
    except StoreError as err:
        print("stopped:", err, flush=True)
"""


def test_a_driver_stopped_with_tasks_still_queued_exits(plugin_env, tmp_path):
    driver = subprocess.run(
        [sys.executable, "-c", FULL_QUEUE_DRIVER, f"sqlite:///{tmp_path / 's.db'}"],
        env=plugin_env,
        capture_output=True,
        text=True,
        timeout=120,  # hung at exit before (the queue's feeder thread joined forever): this raises then
    )
    assert driver.returncode == 0 and "stopped: disk full" in driver.stdout, driver.stderr[-2000:]


def test_a_cpu_budget_on_a_server_every_worker_shares_is_refused_before_anything_starts(tmp_path):
    arms = [*ARMS, ArmSpec(name="cpu", strategy="single", models=["m"], budget=Budget(cpu_s=5))]
    before = set(psutil.Process().children(recursive=True))  # e.g. multiprocessing's resource tracker
    with open_store(f"sqlite:///{tmp_path / 's.db'}") as store:
        for provider in ("ollama", "openai"):
            config = RunConfig(provider=provider, url="http://127.0.0.1:9", sandbox="process", workers=2)
            with pytest.raises(ValueError, match="arm cpu: a CPU budget cannot be enforced with --workers 2") as err:
                Runner(store, config, arms).run(TASKS)
            assert "\n" not in str(err.value)
        assert store.list_runs() == []  # nothing stored, no worker or server started
    assert set(psutil.Process().children(recursive=True)) <= before
    check_budgets(arms, RunConfig(provider="embedded", workers=2))  # each worker's servers are its own
    check_budgets(arms, RunConfig(provider="ollama", workers=1))  # one task at a time: the CPU is that task's
    check_budgets(ARMS, RunConfig(provider="ollama", workers=2))  # token and call budgets are per task anyway


class FakeNvml:
    """pynvml as a machine with `names` GPUs, or without a driver (init raises)."""

    def __init__(self, names: list[str] | None):
        self.names, self.shut = names, 0

    def nvmlInit(self):
        if self.names is None:
            raise OSError("libnvidia-ml.so.1: cannot open shared object file")

    def nvmlShutdown(self):
        self.shut += 1

    def nvmlDeviceGetCount(self):
        return len(self.names or [])

    def nvmlDeviceGetHandleByIndex(self, index):
        return index

    def nvmlDeviceGetName(self, handle):
        return (self.names or [])[handle].encode()  # older nvidia-ml-py returns bytes


@pytest.mark.parametrize(
    "names, expected",
    [
        (None, None),  # no driver: unknown, and no error
        ([], None),
        (["NVIDIA H200"], "NVIDIA H200"),
        (["NVIDIA H200", "NVIDIA H200"], "2 x NVIDIA H200"),
        (["NVIDIA A10", "Tesla T4"], "NVIDIA A10, Tesla T4"),
    ],
)
def test_a_node_names_its_gpu_or_says_none(monkeypatch, names, expected):
    fake = FakeNvml(names)
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    assert gpu_name() == expected
    assert fake.shut == (0 if names is None else 1)  # NVML's init count is given back


def _stored(db: Path) -> list[tuple[str, str]]:
    try:
        with sqlite3.connect(db) as conn:
            return conn.execute("select task_id, side from results").fetchall()
    except sqlite3.OperationalError:
        return []


def test_a_killed_driver_leaves_no_worker_and_resume_finishes_the_run(plugin_env, tmp_path):
    db = tmp_path / "s.db"
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text(
        "".join(
            json.dumps({"task_id": t.task_id, "prompt": t.prompt, "tests": t.tests, "entry_point": t.entry_point})
            + "\n"
            for t in TASKS[:6]
        )
    )
    cli = [sys.executable, "-m", "sizeup.cli"]
    subprocess.run(
        [*cli, "import", "--jsonl-file", str(tasks), "--db", f"sqlite:///{db}"],
        check=True,
        env=plugin_env,
        capture_output=True,
    )
    run = [
        *cli,
        "run",
        "--all",
        "--provider",
        "scripted-plugin",
        "--large-model",
        "sleeper",
        "--small-model",
        "sleeper",
        "--max-depth",
        "0",
        "--workers",
        "2",
        "--sandbox",
        "process",
        "--db",
        f"sqlite:///{db}",
    ]
    driver = subprocess.Popen(run, env=plugin_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(_stored(db)) < 2:
        time.sleep(0.2)
    workers = psutil.Process(driver.pid).children(recursive=True)
    assert len(workers) >= 2
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait()
    _, alive = psutil.wait_procs(workers, timeout=15)
    assert alive == []  # every worker died with its driver
    before = _stored(db)
    assert 2 <= len(before) < 12
    with sqlite3.connect(db) as conn:
        (run_id,) = conn.execute("select run_id from runs").fetchone()
    done = subprocess.run(
        [*cli, "run", "--resume", run_id, "--db", f"sqlite:///{db}"],
        env=plugin_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    after = _stored(db)
    assert len(after) == len(set(after)) == 12 and set(before) <= set(after)


# -- Ray ---------------------------------------------------------------------------------------------------


def _ray_available() -> tuple[bool, str]:
    try:
        import ray  # noqa: F401
    except ImportError:
        return False, "ray is not installed (pip install 'sizeup[ray]')"
    return True, ""


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    """A real Ray cluster on this machine: a head and a second node process, one CPU each."""
    ok, why = _ray_available()
    need("Ray", "SIZEUP_REQUIRE_RAY", ok, why)
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        **os.environ,
        "SIZEUP_PLUGINS": "scripted_plugin",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS_DIR), os.environ.get("PYTHONPATH")])),
        "RAY_USAGE_STATS_ENABLED": "0",
        # Said outright: once a local ray.init() has left ~/.ray/auth_token (a local Ray instance makes one),
        # `ray start --head` turns token authentication on while `ray start --address` does not use the token,
        # and the second node cannot join.
        "RAY_AUTH_MODE": "disabled",
    }
    ray_cli = str(Path(sys.executable).with_name("ray"))
    common = ["--num-cpus", "1", "--disable-usage-stats"]
    subprocess.run(
        [
            ray_cli,
            "start",
            "--head",
            "--port",
            str(port),
            "--node-ip-address",
            "127.0.0.1",
            "--include-dashboard",
            "false",
            *common,
        ],
        check=True,
        env=env,
        capture_output=True,
        timeout=180,
    )
    try:
        subprocess.run(
            [ray_cli, "start", "--address", f"127.0.0.1:{port}", "--node-ip-address", "127.0.0.1", *common],
            check=True,
            env=env,
            capture_output=True,
            timeout=180,
        )
        yield f"127.0.0.1:{port}", env
    finally:
        subprocess.run([ray_cli, "stop", "--force"], env=env, capture_output=True, timeout=120)


def test_ray_workers_give_the_same_results_as_local_ones(ray_cluster, plugin_env, tmp_path):
    address, _ = ray_cluster
    with open_store(f"sqlite:///{tmp_path / 's.db'}") as store:
        local_id = Runner(store, RunConfig(provider="scripted-plugin", sandbox="process"), ARMS).run(TASKS[:4])
        ray_id = Runner(
            store,
            RunConfig(provider="scripted-plugin", sandbox="process", workers=2, executor="ray", ray_address=address),
            ARMS,
        ).run(TASKS[:4])
        local, remote = store.results(local_id), store.results(ray_id)
        starts = [p for _, p in store.progress(ray_id) if p["kind"] == "start"]

    def content(results):
        return sorted((r.task_id, r.arm, r.status, r.model_calls, [a.code for a in r.attempts]) for r in results)

    assert content(local) == content(remote)
    assert {r.worker["id"] for r in remote} == {0, 1} and all(r.worker["node"]["host"] for r in remote)
    # Ray gave each actor a CPU's worth of time ({"CPU": 1}); each claimed a CPU of its own and pinned itself to
    # it (`cpus` is the affinity read back), the two nodes sharing this host's claims: no CPU taken twice.
    assert all(r.worker["pinned"] is True and r.worker["resources"] == {"CPU": 1.0} for r in remote)
    cpus = {r.worker["id"]: tuple(r.worker["cpus"]) for r in remote}
    assert all(len(c) == 1 for c in cpus.values()) and len(set(cpus.values())) == 2
    # At the priority of a local worker, not the niceness 15 Ray gives its workers (its servers inherit it).
    assert (
        {r.worker["nice"] for r in remote} == {r.worker["nice"] for r in local} == {os.getpriority(os.PRIO_PROCESS, 0)}
    )
    # The live view's arm in flight: each arm's start, from the actor its task was dealt to.
    ran_on = {r.task_id: r.worker["id"] for r in remote}
    assert sorted((p["task_id"], p["arm"]) for p in starts) == sorted((r.task_id, r.arm) for r in remote)
    assert all(ran_on[p["task_id"]] == p["worker"] for p in starts)


def test_more_ray_workers_than_the_cluster_has_cpus_stop_with_one_line(ray_cluster, plugin_env, tmp_path):
    address, _ = ray_cluster  # two nodes of one CPU each
    config = RunConfig(provider="scripted-plugin", sandbox="process", workers=3, executor="ray", ray_address=address)
    began = time.monotonic()
    with open_store(f"sqlite:///{tmp_path / 's.db'}") as store:
        with pytest.raises(WorkerError, match="--workers 3: the Ray cluster at .* has 2 CPUs") as err:
            Runner(store, config, ARMS).run(TASKS[:2])
        (run,) = store.list_runs()
    assert "\n" not in str(err.value) and time.monotonic() - began < 60 and run.status == "failed"


def test_an_unreachable_ray_address_is_one_line(plugin_env, tmp_path):
    ok, why = _ray_available()
    need("Ray", "SIZEUP_REQUIRE_RAY", ok, why)
    import ray

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = RunConfig(
        provider="scripted-plugin", sandbox="process", workers=2, executor="ray", ray_address=f"127.0.0.1:{port}"
    )
    with open_store(f"sqlite:///{tmp_path / 's.db'}") as store:
        with pytest.raises(WorkerError, match=f"could not connect to 127.0.0.1:{port}") as err:
            Runner(store, config, ARMS).run(TASKS[:2])
        assert [r.status for r in store.list_runs()] == ["failed"]
    assert "\n" not in str(err.value) and not ray.is_initialized()


def test_a_ray_worker_killed_mid_task_has_its_task_retried_and_stored_once(ray_cluster, plugin_env, tmp_path):
    import ray

    from sizeup.cli.ray_pool import RayPool

    address, _ = ray_cluster
    # Each task's first arm comes back at once; its second after 0.5 s (task 0) or 4 s (the others): the actor
    # killed when task 0 comes back has its task's first arm back and is mid-way through the second.
    arms = [
        ArmSpec(name="fast", strategy="single", models=["passer"]),
        ArmSpec(name="slow", strategy="single", models=["stagger"]),
    ]
    config = RunConfig(provider="scripted-plugin", sandbox="process", workers=2, executor="ray", ray_address=address)
    killed: list[int] = []
    original = RayPool.results

    def results_killing_one(self, count):
        for index, bodies in enumerate(original(self, count)):
            if index == 0 and not killed and self.busy:  # an actor with a task in flight: kill it mid-task
                victim = self.pids()[next(iter(self.busy))]
                os.kill(victim, signal.SIGKILL)
                killed.append(victim)
            yield bodies

    RayPool.results = results_killing_one
    try:
        with open_store(f"sqlite:///{tmp_path / 's.db'}") as store:
            run_id = Runner(store, config, arms).run(TASKS[:4])
            results = store.results(run_id)
    finally:
        RayPool.results = original
        if ray.is_initialized():
            ray.shutdown()
    assert killed and pairs(results) == sorted((t.task_id, arm) for t in TASKS[:4] for arm in ("fast", "slow"))
    assert len(results) == 8  # the killed actor's task was retried elsewhere and stored exactly once
    # The survivor took over, and ran the retried task's arms again, the one already back included: a task's
    # arms are compared on one worker.
    assert len({r.worker["id"] for r in results}) == 1
