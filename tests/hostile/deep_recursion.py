"""Recursion without end: `dive` hits Python's recursion limit; `crash` lifts the limit and recurses through C
(repr), which overflows the C stack and kills the interpreter with SIGSEGV."""

import sys


def dive(n):
    return dive(n + 1)


class Deep:
    def __init__(self, n):
        self.n = n

    def __repr__(self):
        return repr(Deep(self.n + 1))


def crash():
    sys.setrecursionlimit(10**7)
    return repr(Deep(0))
