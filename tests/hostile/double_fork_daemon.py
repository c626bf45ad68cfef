"""The classic daemon: fork, setsid, fork again, and the grandchild sleeps on with MARKER in its command line,
reparented away from the program, which then finishes normally."""

import os
import sys

MARKER = "sizeup-hostile-marker"
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv(sys.executable, [sys.executable, "-S", "-c", "import time; time.sleep(60)", MARKER])
    os._exit(0)
os.wait()


def answer():
    return 42
