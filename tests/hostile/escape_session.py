"""Starts a grandchild in a session of its own (outside the process group), then outlives the timeout."""

import subprocess
import sys
import time

MARKER = "sizeup-hostile-marker"
subprocess.Popen([sys.executable, "-S", "-c", "import time; time.sleep(60)", MARKER], start_new_session=True)
time.sleep(60)
