"""Tries to overwrite, chmod and delete files outside its temp dir, and to create one next to each. The test
prepends TARGETS, a list of absolute paths."""

import os


def attempts(path):
    yield lambda: open(path, "w").write("pwned")
    yield lambda: os.chmod(path, 0o777)
    yield lambda: os.remove(path)
    yield lambda: open(path + ".new", "w").write("planted")


for target in TARGETS:  # noqa: F821
    for attempt in attempts(target):
        try:
            attempt()
        except OSError as exc:
            print(f"{target}: {exc!r}")


def answer():
    return 42
