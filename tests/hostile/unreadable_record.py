"""Writes one record to the result channel that the parent cannot read, then answers right. Which one is the
test's choice (the marker names it):
- overflow: {"peak_mb": N} with N a 400-digit integer (json reads it as an int; float() of it raises
  OverflowError);
- nesting: 100000 brackets open and close (json.loads raises RecursionError);
- negative_index: a verdict for test -1 (Python's index of the last test): a test that does not exist.
It finds the channel as forge_frames does, by walking up to the driver's frame."""

import os
import sys

RECORDS = {
    "overflow": b'{"peak_mb": ' + b"9" * 400 + b"}\n",
    "nesting": b"[" * 100_000 + b"]" * 100_000 + b"\n",
    "negative_index": b'{"test": -1, "outcome": "passed", "message": "", "seconds": 0}\n',
}
KIND = "sizeup-hostile-marker"


def _channel():
    frame = sys._getframe()
    while "result_fd" not in frame.f_locals:
        frame = frame.f_back
    return frame.f_locals["result_fd"]


def solve(x):
    fd, view = _channel(), memoryview(RECORDS[KIND])
    while view:  # a pipe write this long may be cut short: the whole line, or the test proves nothing
        view = view[os.write(fd, view) :]
    return 2 * x
