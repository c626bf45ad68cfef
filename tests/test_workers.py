"""Scaling out: two local worker processes (pinned, each with its own sandbox), and a real local Ray cluster of
two node processes; a scripted model provider that every process loads ($SIZEUP_PLUGINS) and the real sandbox."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from requirements import need
from sizeup.cli.runner import RunConfig, Runner
from sizeup.cli.workers import split_cpus
from sizeup.records import ArmSpec
from sizeup.store import open_store
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


def test_cpu_sets_are_disjoint_and_cover_the_cpus():
    assert split_cpus(2, [0, 1, 2, 3, 4]) == [[0, 1, 2], [3, 4]]
    assert split_cpus(1, [5, 7]) == [[5, 7]]
    with pytest.raises(ValueError, match="only 2 CPUs"):
        split_cpus(3, [0, 1])


def pairs(results) -> list[tuple[str, str]]:
    return sorted((r.task_id, r.arm) for r in results)


def test_two_local_workers_store_every_task_once_each_on_its_own_cpus(plugin_env, tmp_path):
    workers = min(2, len(os.sched_getaffinity(0)))
    config = RunConfig(provider="scripted-plugin", sandbox="process", workers=workers)
    with open_store(f"sqlite:///{tmp_path / 's.db'}") as store:
        run_id = Runner(store, config, ARMS).run(TASKS)
        results = store.results(run_id)
        run = store.get_run(run_id)
    assert pairs(results) == sorted((t.task_id, a.name) for t in TASKS for a in ARMS)
    assert run.status == "finished" and run.config["concurrency"] == workers and len(run.load["workers"]) == workers
    cpu_sets = {tuple(r.worker["cpus"]) for r in results}
    assert len({r.worker["id"] for r in results}) == workers and len(cpu_sets) == workers
    assert not set.intersection(*map(set, cpu_sets)) if workers > 1 else True
    assert all(r.worker["concurrency"] == workers and r.worker["node"]["host"] for r in results)
    assert all(r.passed == (r.arm == "large") for r in results)


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

    def content(results):
        return sorted((r.task_id, r.arm, r.status, r.model_calls, [a.code for a in r.attempts]) for r in results)

    assert content(local) == content(remote)
    assert {r.worker["id"] for r in remote} == {0, 1} and all(r.worker["node"]["host"] for r in remote)


def test_a_ray_worker_killed_mid_task_has_its_task_retried_and_stored_once(ray_cluster, plugin_env, tmp_path):
    import ray

    from sizeup.cli.ray_pool import RayPool

    address, _ = ray_cluster
    arms = [ArmSpec(name="slow", strategy="single", models=["sleeper"])]
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
    assert killed and pairs(results) == sorted((t.task_id, "slow") for t in TASKS[:4])
    assert len(results) == 4  # the killed actor's task was retried elsewhere and stored exactly once
    assert {r.worker["id"] for r in results[1:]} == {r.worker["id"] for r in results[-1:]}  # the survivor took over
