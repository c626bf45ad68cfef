"""Like exit_before_tests, but os._exit cannot be caught by the driver."""

import os


def answer():
    return 0


os._exit(0)
