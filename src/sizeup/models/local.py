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


def listening_pid(url: str) -> int | None:
    """The pid of the process listening on the URL's TCP port on this machine, or None (remote, nobody
    listening, or a process we may not see). Reads every socket on the machine: call it once, not per sample."""
    if not is_local(url):
        return None
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
