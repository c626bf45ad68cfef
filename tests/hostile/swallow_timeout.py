"""A test-time loop whose bare except swallows the first timeout signal, then keeps looping."""

import time


def stubborn():
    try:
        while True:
            time.sleep(0.01)
    except BaseException:
        pass
    while True:
        time.sleep(0.01)
