"""Writes a line to the result channel nested deeper than json can read: 100000 brackets open and close
(json.loads raises RecursionError). It finds the channel as forge_frames does, by walking up to the driver's
frame; `solve` itself answers right."""

import os
import sys


def _channel():
    frame = sys._getframe()
    while "result_fd" not in frame.f_locals:
        frame = frame.f_back
    return frame.f_locals["result_fd"]


def solve(x):
    line = b"[" * 100_000 + b"]" * 100_000 + b"\n"
    fd, view = _channel(), memoryview(line)
    while view:  # a pipe write this long may be cut short: the whole line, or the test proves nothing
        view = view[os.write(fd, view) :]
    return 2 * x
