"""The harness that runs INSIDE the sandboxed child interpreter. Standard library only, self-contained.

Usage: python driver.py JOB_FILE RESULT_FD  (the process backend), or `run_job` in a forked child (the
isolated backend's worker imports this module).

JOB_FILE holds {"setup_code", "program", "tests", "test_timeout_s", "nonce"}; it is read and deleted before
any candidate code runs. A test is either source to run here (an in-process test: its asserts judge
themselves) or {"call": SOURCE}: a call whose value goes back to the parent, which alone knows what it
should be (sandbox/expect.py). Results go to RESULT_FD (never stdout, which belongs to the program) as
JSON lines:
  {"started": true}                        the driver is about to run candidate code
  {"load_error": "...", "memory": bool}    setup or program raised (tests are then not run)
  {"test": i, "outcome": "...", "message": "...", "seconds": float}   an in-process test, or a call that
                                           raised or timed out
  {"test": i, "value": ENCODED, "seconds": float}                     a call's value (see _encode)
  {"peak_mb": float}                       VmHWM of this process
  {"done": nonce}                          the parent's nonce: only the driver knows it
The candidate shares this process, so it can write to RESULT_FD too: for in-process tests that is the
limit of what a Python harness can promise (tests/hostile shows it); for calls it can only send values.
"""

import json
import os
import signal
import sys
import time
import types

# Bound once, so a program that patches json.dumps or deletes os._exit cannot break the reporting.
_dumps, _write, _exit, _clock = json.dumps, os.write, os._exit, time.perf_counter
_MAX_MESSAGE = 300


class _TestTimeout(BaseException):
    """Private and a BaseException, so the candidate's `except Exception` does not swallow it."""


_armed = False


def _on_alarm(signum, frame):
    if _armed:
        raise _TestTimeout()


def _describe(exc: BaseException) -> str:
    """'Type: message (line N)', the line being the candidate's last frame, kept short for prompts."""
    try:
        text = f"{type(exc).__name__}: {exc}".rstrip(": ")
    except Exception:  # a candidate exception whose __str__ itself fails
        text = type(exc).__name__
    if not isinstance(exc, SyntaxError):
        import traceback  # only on failures: it costs a few ms of every start-up

        lines = [f.lineno for f in traceback.extract_tb(exc.__traceback__) if f.filename == "<candidate>"]
        if lines:
            text += f" (line {lines[-1]})"
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


def peak_mb(pid: int | str = "self") -> float:
    """A process's VmHWM in MB (0.0 if unreadable). VmHWM resets at exec, unlike the parent's wait4
    ru_maxrss, which inherits the parent's RSS. Shared by every backend's supervisor, which reads it for a
    child the deadline is about to kill, since the driver will not live to report it."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return 0.0


def read_capped(fd: int, buffer: bytearray, cap: int) -> int | None:
    """Read what is available from a non-blocking fd, keep up to `cap` bytes in `buffer` and drop the rest,
    so endless output never grows memory. Returns the bytes read: 0 at EOF, None when nothing is there yet.
    Shared by the process, isolated and docker supervisors (this module is stdlib-only and ships with each)."""
    try:
        chunk = os.read(fd, 65536)
    except (BlockingIOError, InterruptedError):
        return None
    buffer += chunk[: max(0, cap - len(buffer))]
    return len(chunk)


# Bytes kept from the result channel. A verdict record is < 400 bytes, but a parent-compared value travels
# encoded (about 12 bytes per int of a list): 16 MiB holds a list of a million small ints.
RESULT_CAP = 16 << 20
DRAIN_GRACE_S = 0.5  # after the child exits, how long escaped holders of its pipes may keep a supervisor waiting


def kill_group(pgid: int) -> None:
    """SIGKILL the whole group, twice: a fork bomb may add members while the first signal goes out."""
    for _ in range(2):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            return


def supervise(pid: int, streams: dict, seconds: float, before_kill=None) -> tuple:
    """The supervisor of the process and docker backends: drain the child's pipes (fd -> (buffer, cap)) while
    it runs, for at most `seconds`; kill its process group once it exits (what it left running) or at the
    deadline; reap it. `before_kill(pid)` runs at the deadline while the child still lives to be walked from.
    Returns (timed_out, wait status, rusage, VmHWM in MB read at the deadline, else 0.0)."""
    import select  # here, not at the top: the child that runs this module as its driver never needs it

    deadline = time.monotonic() + seconds
    pidfd = os.pidfd_open(pid)  # readable once the child exits: no polling
    poller = select.poll()
    for fd in (*streams, pidfd):
        if fd != pidfd:
            os.set_blocking(fd, False)
        poller.register(fd, select.POLLIN)
    open_fds, exited, timed_out = set(streams), False, False
    while open_fds or not exited:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            timed_out = not exited
            break
        for fd, _ in poller.poll(remaining * 1000):
            if fd == pidfd:
                poller.unregister(pidfd)
                exited = True
                kill_group(pid)  # a zombie until reaped below, so its group id cannot be reused meanwhile
                deadline = min(deadline, time.monotonic() + DRAIN_GRACE_S)
            elif read_capped(fd, *streams[fd]) == 0:  # EOF
                poller.unregister(fd)
                open_fds.discard(fd)
    os.close(pidfd)
    hwm_mb = 0.0
    if not exited:
        hwm_mb = peak_mb(pid)  # the driver will not live to report it
        if before_kill is not None:
            before_kill(pid)
    kill_group(pid)
    _, status, usage = os.wait4(pid, 0)
    kill_group(pid)
    for fd in streams:  # what was written before the kill
        while read_capped(fd, *streams[fd]):
            pass
    return timed_out, status, usage, hwm_mb


def _run_test(source: str, namespace: dict, timeout_s: float) -> tuple[str, str]:
    global _armed
    try:
        code = compile(source, "<test>", "exec")
        signal.signal(signal.SIGALRM, _on_alarm)  # again: the program may have replaced it
        _armed = True
        # The interval re-fires the alarm in case the candidate swallows the first one with a bare except.
        signal.setitimer(signal.ITIMER_REAL, timeout_s, 0.1)
        try:
            exec(code, namespace)
        finally:
            _armed = False
            signal.setitimer(signal.ITIMER_REAL, 0)
        return "passed", ""
    except _TestTimeout:
        return "timeout", f"test took longer than {timeout_s:g} s"
    except AssertionError as exc:
        return "failed", _describe(exc)
    except MemoryError:
        return "error", "MemoryError"
    except BaseException as exc:  # SystemExit and KeyboardInterrupt included: an error of this test
        return "error", _describe(exc)


_MAX_DEPTH = 200


def _encode(value, depth: int = 0):
    """A call's value as plain JSON data the parent decodes without running anything: builtin scalars and
    containers only, tagged by type. Subclasses (Counter, OrderedDict, namedtuple, IntEnum) are read through
    their base type, as an == against a literal sees them; a number with an exact ratio (Fraction, Decimal)
    as that ratio; anything else cannot be compared outside."""
    if depth > _MAX_DEPTH:
        raise ValueError("the value is nested too deep to send")
    if value is None or value is True or value is False:
        return value
    if isinstance(value, int):
        return {"i": hex(int.__index__(value))}  # hex: no size limit, linear both ways
    if isinstance(value, float):
        return {"f": float.__repr__(float(value))}
    if isinstance(value, complex):
        return {"c": [float.__repr__(value.real), float.__repr__(value.imag)]}
    if isinstance(value, str):
        return {"s": str.__str__(value)}
    if isinstance(value, bytes | bytearray):
        return {"b": bytes(value).hex()}
    if isinstance(value, list):
        return {"l": [_encode(item, depth + 1) for item in list.__iter__(value)]}
    if isinstance(value, tuple):
        return {"t": [_encode(item, depth + 1) for item in tuple.__iter__(value)]}
    if isinstance(value, frozenset):
        return {"F": [_encode(item, depth + 1) for item in frozenset.__iter__(value)]}
    if isinstance(value, set):
        return {"S": [_encode(item, depth + 1) for item in set.__iter__(value)]}
    if isinstance(value, dict):
        return {"d": [[_encode(k, depth + 1), _encode(v, depth + 1)] for k, v in dict.items(value)]}
    ratio = getattr(value, "as_integer_ratio", None)  # Fraction, Decimal: sent exactly, as a fraction
    if ratio is not None:
        numerator, denominator = ratio()
        return {"q": [hex(int.__index__(numerator)), hex(int.__index__(denominator))]}
    raise TypeError(f"a {type(value).__name__} cannot be sent to the parent to be compared")


def _run_call(source: str, namespace: dict, timeout_s: float, imports: str = "") -> dict:
    """Evaluate a parent-compared test's call (its own timeout, like any test) and encode the value. The test's
    own imports (`import math`) run first, as they would in the test."""
    global _armed
    try:
        if imports:
            exec(compile(imports, "<test>", "exec"), namespace)
        code = compile(source, "<test>", "eval")
        signal.signal(signal.SIGALRM, _on_alarm)
        _armed = True
        signal.setitimer(signal.ITIMER_REAL, timeout_s, 0.1)
        try:
            value = eval(code, namespace)
            encoded = _dumps(_encode(value))  # inside the alarm: encoding runs the value's own methods
        finally:
            _armed = False
            signal.setitimer(signal.ITIMER_REAL, 0)
        return {"value_json": encoded}
    except _TestTimeout:
        return {"outcome": "timeout", "message": f"test took longer than {timeout_s:g} s"}
    except MemoryError:
        return {"outcome": "error", "message": "MemoryError"}
    except BaseException as exc:
        return {"outcome": "error", "message": _describe(exc)}


def run_job(job: dict, result_fd: int) -> None:
    """Run the candidate and its tests in this process, report on `result_fd`, then end the process."""
    nonce = job.pop("nonce")
    # Close-on-exec: a program the candidate execs (subprocess, os.exec*) does not get the channel. A child it
    # forks (os.fork, multiprocessing's default "fork" start) is a copy of this process, channel and all, and
    # can write to it for as long as the run lasts: no more than the candidate itself can, since the
    # candidate shares this process anyway (see the module's docstring).
    try:
        os.set_inheritable(result_fd, False)
    except OSError:
        pass

    def write_all(data: bytes) -> None:
        # A pipe write of more than PIPE_BUF bytes may be cut short by a signal: the rest follows, so the
        # parent never reads half a record of the driver's (and blames the program for it).
        view = memoryview(data)
        while view:
            written = _write(result_fd, view)
            if written <= 0:  # not a pipe any more (the program put something else there): give up
                return
            view = view[written:]

    def send(record: dict) -> None:
        write_all((_dumps(record) + "\n").encode())

    # A real module, so pickle, dataclasses and typing can find the candidate's classes by module name.
    # Not "__main__": the program's `if __name__ == "__main__":` demo (often reading input()) is skipped.
    module = types.ModuleType("__candidate__")
    sys.modules["__candidate__"] = module
    namespace = module.__dict__
    send({"started": True})
    try:
        exec(compile(job["program"], "<candidate>", "exec"), namespace)
        # Test setup runs after the program: MBPP's fixtures use classes the solution defines (Node).
        exec(compile(job["setup_code"], "<setup>", "exec"), namespace)
    except MemoryError:
        send({"load_error": "MemoryError", "memory": True})
    except BaseException as exc:  # SystemExit at top level too: the program ended before the tests
        send({"load_error": _describe(exc), "memory": False})
    else:
        for index, test in enumerate(job["tests"]):
            started = _clock()  # per test, so timeouts can scale with the reference's slowest test
            if isinstance(test, dict):
                result = _run_call(test["call"], namespace, job["test_timeout_s"], test.get("imports", ""))
                seconds = _clock() - started
                if "value_json" in result:  # already JSON: spliced in, not encoded twice
                    write_all(
                        f'{{"test": {index}, "seconds": {seconds!r}, "value": {result["value_json"]}}}\n'.encode()
                    )
                else:
                    send({"test": index, **result, "seconds": seconds})
                continue
            outcome, message = _run_test(test, namespace, job["test_timeout_s"])
            send({"test": index, "outcome": outcome, "message": message, "seconds": _clock() - started})
    for stream in (sys.stdout, sys.stderr):  # os._exit skips the flush of the program's buffered prints
        try:
            stream.flush()
        except BaseException:
            pass
    # One write for both: the supervisor wakes once, not twice, at the end of every run.
    write_all((_dumps({"peak_mb": peak_mb()}) + "\n" + _dumps({"done": nonce}) + "\n").encode())
    _exit(0)


def main() -> None:
    job_path, result_fd = sys.argv[1], int(sys.argv[2])
    with open(job_path) as job_file:
        job = json.load(job_file)
    os.remove(job_path)
    run_job(job, result_fd)


if __name__ == "__main__":
    main()
