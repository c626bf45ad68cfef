"""Which local process is charged for a model server's URL (sizeup.models.local): the one listening on its
port, unless that process only forwards the port (a container's published port, a tunnel)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest

from sizeup.models import make_client
from sizeup.models.local import listener

# Listens on a free port under a process name of its choosing (prctl PR_SET_NAME), then waits.
LISTENER = """
import ctypes, socket, sys, time
ctypes.CDLL(None).prctl(15, sys.argv[1].encode(), 0, 0, 0)
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
print(s.getsockname()[1], flush=True)
time.sleep(60)
"""


@pytest.fixture
def listening_as():
    procs: list[subprocess.Popen] = []

    def start(name: str) -> tuple[subprocess.Popen, str]:
        proc = subprocess.Popen([sys.executable, "-c", LISTENER, name], stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        port = int(proc.stdout.readline())
        return proc, f"http://127.0.0.1:{port}/v1"

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


def test_the_process_listening_on_the_port_is_the_server(listening_as):
    proc, url = listening_as("my-llm-server")
    assert listener(url) == (proc.pid, "")
    assert "server_process" in make_client("openai", "m", url=url).attribution()


def test_a_forwarder_on_the_port_is_not_charged_as_the_server(listening_as):
    _, url = listening_as("docker-proxy")
    pid, why = listener(url)
    assert pid is None and "forwarded by docker-proxy" in why
    attribution = make_client("openai", "m", url=url).attribution()
    assert attribution.startswith("not_measurable") and "docker-proxy" in attribution


def test_nobody_listening_and_another_host_are_said_apart():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    time.sleep(0.01)
    assert listener(f"http://127.0.0.1:{free}")[1].startswith("no process")
    assert listener("http://192.0.2.1:8000")[1] == "the URL's host is another machine"
