"""A busy loop that ignores SIGTERM (and SIGINT, SIGHUP): only SIGKILL ends it."""

import signal

for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(sig, signal.SIG_IGN)
while True:
    pass
