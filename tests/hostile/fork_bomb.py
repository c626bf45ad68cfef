"""Fork bomb. It first re-executes itself with MARKER in argv, so that every process it forks carries the
marker in its command line and the test can look for survivors. The doubling stops at 2**9 processes to
spare the shared machine it runs on; the group kill does not depend on that bound."""

import os
import sys

MARKER = "sizeup-hostile-marker"
BOMB = """
import os, time
for _ in range(9):
    os.fork()
    time.sleep(0.02)
while True:
    time.sleep(1)
"""
os.execv(sys.executable, [sys.executable, "-S", "-c", BOMB, MARKER])
