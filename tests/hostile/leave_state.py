"""Leaves state behind for the next run: files in /tmp and /dev/shm, an environment variable, another working
directory. The next run, in the same worker, must see none of it (see tests/test_sandbox.py)."""

import os

MARKER = "sizeup-hostile-marker"
for path in (f"/tmp/{MARKER}", f"/dev/shm/{MARKER}"):
    try:
        with open(path, "w") as poison:
            poison.write("poison")
    except OSError:
        pass
os.environ["SIZEUP_POISON"] = MARKER
os.chdir("/")


def answer():
    return 42
