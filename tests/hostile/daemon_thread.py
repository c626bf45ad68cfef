"""A daemon thread that outlives the tests: after they are done it starts a process with MARKER in its command
line. It must never get the chance."""

import subprocess
import sys
import threading
import time

MARKER = "sizeup-hostile-marker"


def later():
    time.sleep(0.3)
    subprocess.Popen([sys.executable, "-S", "-c", "import time; time.sleep(60)", MARKER])


threading.Thread(target=later, daemon=True).start()


def answer():
    return 42
