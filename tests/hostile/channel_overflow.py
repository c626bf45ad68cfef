"""Writes a record to the result channel that no float can hold: {"peak_mb": N} with N a 400-digit integer
(json reads it as an int; float() of it raises OverflowError). It finds the channel as forge_frames does, by
walking up to the driver's frame; `solve` itself answers right."""

import os
import sys


def _channel():
    frame = sys._getframe()
    while "result_fd" not in frame.f_locals:
        frame = frame.f_back
    return frame.f_locals["result_fd"]


def solve(x):
    os.write(_channel(), b'{"peak_mb": ' + b"9" * 400 + b"}\n")
    return 2 * x
