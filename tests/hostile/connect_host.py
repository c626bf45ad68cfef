"""Connects to a port the host listens on at 127.0.0.1 and sends a token. The test prepends PORT and TOKEN."""

import socket

try:
    with socket.create_connection(("127.0.0.1", PORT), timeout=2) as conn:  # noqa: F821
        conn.sendall(TOKEN.encode())  # noqa: F821
    REACHED = True
except OSError as exc:
    REACHED = False
    print(f"connect failed: {exc!r}")


def reached():
    return REACHED
