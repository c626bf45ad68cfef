"""Writes a verdict for test -1 to the result channel (Python's index of the last test): a record for a test
that does not exist, not a way to name the last one. It finds the channel as forge_frames does, by walking
up to the driver's frame; `solve` itself answers right."""

import os
import sys


def _channel():
    frame = sys._getframe()
    while "result_fd" not in frame.f_locals:
        frame = frame.f_back
    return frame.f_locals["result_fd"]


def solve(x):
    os.write(_channel(), b'{"test": -1, "outcome": "passed", "message": "", "seconds": 0}\n')
    return 2 * x
