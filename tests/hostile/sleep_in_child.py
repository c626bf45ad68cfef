"""Waits on a child process that sleeps far past the timeout."""

import subprocess
import sys

MARKER = "sizeup-hostile-marker"
subprocess.run([sys.executable, "-S", "-c", "import time; time.sleep(60)", MARKER])
