"""Which process on this machine serves a model server's URL: the one listening on its port, never one found
by name (several `ollama serve` or vLLM processes may run on one machine, and only one is behind the URL)."""

from __future__ import annotations

import socket
from urllib.parse import urlparse

import psutil

_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _local_addresses() -> set[str]:
    addresses = {"0.0.0.0", "::"}
    for entries in psutil.net_if_addrs().values():
        addresses.update(entry.address.split("%")[0] for entry in entries)
    return addresses


def is_local(url: str) -> bool:
    """The URL's host is this machine: a loopback name or address, or one of this machine's own addresses."""
    host = (urlparse(url).hostname or "").lower()
    if host in _LOOPBACK_NAMES or host.startswith("127.") or host == "::1":
        return True
    if host in (socket.gethostname().lower(), socket.getfqdn().lower()):
        return True
    return host in _local_addresses()


# Processes that listen on a port only to forward it elsewhere (a container's published port, a tunnel):
# measuring one would charge the model for a proxy's few MB and CPU-ms while the server runs out of sight.
FORWARDERS = {
    "docker-proxy",
    "rootlessport",
    "rootlessport-child",
    "slirp4netns",
    "pasta",
    "pasta.avx2",
    "conmon",
    "socat",
    "ssh",
    "sshd",
    "kubectl",
}


def listener(url: str) -> tuple[int | None, str]:
    """The process serving the URL on this machine, and why none is, in words: (pid, "") when one is. Reads
    every socket on the machine: call it once, not per sample."""
    if not is_local(url):
        return None, "the URL's host is another machine"
    pid = _listening(url)
    if pid is None:
        return None, "no process on this machine that sizeup may see listens on the URL's port"
    try:
        name = psutil.Process(pid).name()
    except psutil.Error:
        return None, "the process listening on the URL's port is gone or hidden"
    if name in FORWARDERS:
        return None, f"the URL's port is forwarded by {name} (a container's or a tunnel's server: --server-pid)"
    return pid, ""


def _listening(url: str) -> int | None:
    parsed = urlparse(url)
    port = parsed.port or _DEFAULT_PORTS.get(parsed.scheme or "http")
    try:
        connections = psutil.net_connections(kind="tcp")
    except (psutil.AccessDenied, OSError):
        return None
    for conn in connections:
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
            return conn.pid
    return None
