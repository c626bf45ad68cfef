"""Leaves a grandchild sleeping long after the program itself has finished."""

import subprocess
import sys

MARKER = "sizeup-hostile-marker"
subprocess.Popen([sys.executable, "-S", "-c", "import time; time.sleep(60)", MARKER])


def answer():
    return 42
