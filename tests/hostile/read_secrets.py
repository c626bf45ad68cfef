"""Looks for the test's secrets where a program might find them: a file in the user's home, its own
environment, and the environment of its parent (and, inside a sandbox that shows only a few processes, of
every process there). The test prepends SECRET_PATH and SECRET (the value planted in the file and in the
parent's environment). Prints which channels leaked as JSON, never the secrets themselves."""

import json
import os

LEAKS = {
    "home": False,
    "environ": SECRET in "\n".join(os.environ.values()),  # noqa: F821
    "proc": False,
    "parent_environ_readable": False,
}
try:
    with open(SECRET_PATH) as planted:  # noqa: F821
        LEAKS["home"] = SECRET in planted.read()  # noqa: F821
except OSError:
    pass
pids = [pid for pid in os.listdir("/proc") if pid.isdigit()]
# On a host, only the parent: reading every process's environment there is not this test's business.
for pid in pids if len(pids) < 50 else [str(os.getppid())]:
    try:
        with open(f"/proc/{pid}/environ", "rb") as environ:
            text = environ.read()
    except OSError:
        continue
    LEAKS["proc"] = LEAKS["proc"] or SECRET.encode() in text  # noqa: F821
    if pid == str(os.getppid()):
        LEAKS["parent_environ_readable"] = bool(text)
print(json.dumps(LEAKS))


def answer():
    return 42
