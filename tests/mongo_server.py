"""A real MongoDB-wire server for the store tests, started once per session.

$SIZEUP_TEST_MONGODB_URI names a server to use (a real mongod). Otherwise FerretDB v1.24 (SQLite handler)
is started on a free loopback port with its data in a temporary directory; the binary is $FERRETDB_BIN,
the build cache's (scripts/install_ferretdb.sh builds it there; `make test` runs that) or `ferretdb` on PATH.
With neither, the MongoDB tests skip — unless SIZEUP_REQUIRE_MONGODB=1 (set in CI), where they fail.

Each test gets its own database, dropped afterwards, so tests never see each other's data.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from requirements import cache_dir, need

URI_ENV = "SIZEUP_TEST_MONGODB_URI"
REQUIRE_ENV = "SIZEUP_REQUIRE_MONGODB"
READY_TIMEOUT_S = 30.0
PR_SET_PDEATHSIG = 1
FERRETDB_VERSION = "v1.24.2"  # scripts/install_ferretdb.sh builds it


@dataclass(frozen=True)
class MongoServer:
    uri: str  # without a database
    kind: str  # "ferretdb" or "external"

    def url_for(self, database: str) -> str:
        return with_database(self.uri, database)


def with_database(uri: str, database: str) -> str:
    """`uri` with its path set to /database, keeping credentials and ?options."""
    scheme, rest = uri.split("://", 1)
    rest, _, options = rest.partition("?")
    hosts = rest.split("/", 1)[0]
    return f"{scheme}://{hosts}/{database}" + (f"?{options}" if options else "")


def ferretdb_binary() -> tuple[Path | None, str]:
    """The first FerretDB 1.x that runs, or None and why none did. A `go install`ed ferretdb panics
    (no version.txt), so each candidate is asked its version before it is trusted."""
    candidates = [
        os.environ.get("FERRETDB_BIN"),
        str(cache_dir() / "bin" / f"ferretdb-{FERRETDB_VERSION}"),
        shutil.which("ferretdb"),
    ]
    rejected = []
    for candidate in dict.fromkeys(c for c in candidates if c):
        if not (Path(candidate).is_file() and os.access(candidate, os.X_OK)):
            continue
        try:
            proc = subprocess.run([candidate, "--version"], capture_output=True, text=True, timeout=30)
            version = proc.stdout.splitlines()[0] if proc.returncode == 0 and proc.stdout else ""
        except (OSError, subprocess.TimeoutExpired) as exc:
            version = f"({exc})"
        if version.startswith("version: v1."):
            return Path(candidate), ""
        rejected.append(f"{candidate} is no working FerretDB 1.x ({(version or proc.stderr).splitlines()[0][:80]})")
    why = "; ".join(rejected) or "no FerretDB binary ($FERRETDB_BIN, the build cache, PATH)"
    return None, why + "; run scripts/install_ferretdb.sh"


def require_or_skip(why: str) -> None:
    need("a MongoDB server", REQUIRE_ENV, False, why)


def ping(uri: str, timeout_ms: int = 1000) -> str | None:
    """None when the server answers, else why not."""
    import pymongo

    client: pymongo.MongoClient = pymongo.MongoClient(uri, serverSelectionTimeoutMS=timeout_ms)
    try:
        client.admin.command("ping")
        return None
    except Exception as exc:  # any failure means "not ready"
        return str(exc).splitlines()[0]
    finally:
        client.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:
    """In FerretDB's process before exec: a pytest killed with SIGKILL must not leave the server running."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def start_ferretdb(binary: Path, workdir: Path) -> tuple[subprocess.Popen, str]:
    """Start FerretDB on a free port and wait until it answers a ping; retried once should the port be
    taken between choosing it and FerretDB binding it."""
    data, log_path = workdir / "data", workdir / "ferretdb.log"
    data.mkdir(parents=True, exist_ok=True)
    why = ""
    for _ in range(2):
        port = _free_port()
        uri = f"mongodb://127.0.0.1:{port}/"
        cmd = [
            str(binary),
            "--handler=sqlite",
            f"--sqlite-url=file:{data}/",
            f"--listen-addr=127.0.0.1:{port}",
            "--debug-addr=-",  # no metrics/pprof HTTP listener: it would take a fixed port (8088)
            "--telemetry=disable",
            f"--state-dir={workdir}",
            "--log-level=warn",
        ]
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, preexec_fn=_die_with_parent)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline and proc.poll() is None:
            why = ping(uri, timeout_ms=500) or ""
            if not why:
                return proc, uri
            time.sleep(0.1)
        stop(proc)
    tail = log_path.read_text(errors="replace")[-2000:] if log_path.exists() else ""
    raise RuntimeError(f"FerretDB ({binary}) did not start: {why}\n{tail}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def mongo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MongoServer]:
    external = os.environ.get(URI_ENV)
    if external:
        why = ping(external, timeout_ms=3000)
        if why:  # asked for explicitly: a typo must not turn into a quiet skip
            pytest.fail(f"{URI_ENV} does not answer: {why}")
        yield MongoServer(uri=external, kind="external")
        return
    binary, why = ferretdb_binary()
    if binary is None:
        require_or_skip(f"{URI_ENV} is not set and {why}")
    proc, uri = start_ferretdb(binary, tmp_path_factory.mktemp("ferretdb"))
    try:
        yield MongoServer(uri=uri, kind="ferretdb")
    finally:
        stop(proc)


@pytest.fixture
def mongodb_url(mongo_server: MongoServer, request: pytest.FixtureRequest) -> Iterator[str]:
    """A store URL naming a fresh database for this test alone."""
    import pymongo

    database = "sizeup_test_" + hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:16]
    client: pymongo.MongoClient = pymongo.MongoClient(mongo_server.uri, serverSelectionTimeoutMS=3000)
    client.drop_database(database)  # a real server may keep one from an earlier, interrupted session
    try:
        yield mongo_server.url_for(database)
    finally:
        client.drop_database(database)
        client.close()
