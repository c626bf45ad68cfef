"""Reads all of stdin at load time; the sandbox gives it an empty stdin, so this must return at once."""

import sys

DATA = sys.stdin.read()


def answer():
    return DATA
