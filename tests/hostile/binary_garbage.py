"""Writes bytes that are not UTF-8 to both streams, then behaves."""

import sys

sys.stdout.buffer.write(bytes(range(256)) * 4 + b"\xff\xfe\xc3\x28")
sys.stderr.buffer.write(b"\x80\x81\x82 not utf-8 \xed\xa0\x80")


def answer():
    return 42
