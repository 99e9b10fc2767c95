"""Ending the process once a headless run is over, without the interpreter's own teardown.

After the last line is printed, the interpreter would still clear every module and free every object one
by one (tens of milliseconds after a long run, whose history, SDK models and caches are all still alive)
before the process ends; the kernel frees all of it at once anyway. By then the run has closed its session
log (written unbuffered, record by record), ended its sandboxes and the processes its commands left
(security/orphans.py) and removed its placeholders, so nothing is left for that teardown to do.

So ``end`` does what the interpreter's exit does that anyone can observe, in the same order, and ends the
process: the registered exit handlers run (temporary folders, terminal modes, log handlers), standard
output and error are flushed. It leaves the exit to the interpreter, as before, whenever that exit would
do more: a thread that is not a daemon still running (the interpreter would wait for it, and so do the
thread pools' exit hooks), or output that cannot be flushed (the interpreter says so and exits with 120).

Only the process's own entry point (``cli.entry``) calls ``end``, and only once a front end ``arm``-ed it:
code that runs a front end or ``cli.main`` inside a process of its own (tests, the SDK, the batch zygote's
tasks) never has that process ended under it.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading

_armed = False


def arm() -> None:
    """The front end is done with everything it opened: the process may end without the teardown."""
    global _armed
    _armed = True


def end(code: object) -> None:
    """End the process with ``code`` (as ``sys.exit`` takes it) if armed and nothing needs the interpreter's
    own exit; returns otherwise (the caller then exits as usual)."""
    if not _armed or not isinstance(code, int | None) or _threads_to_wait_for() or not _flushed():
        return
    atexit._run_exitfuncs()  # (what the interpreter runs at exit, in the same order; private but stable)
    if not _flushed():  # (an exit handler may have written; its output must still go out)
        return
    os._exit((code or 0) & 0xFF)


def release_watches() -> None:
    """The inotify queue let go of, where the session used one (security/hostwatch.py ``let_go``: handed to a
    short-lived child, so that neither its close nor the exit waits for the kernel to retire the watches).
    Once the session's children are ended (security/orphans.py would end that child and wait for it)."""
    watches = sys.modules.get("kimicode.security.hostwatch")
    if watches is not None:
        watches.let_go()


def _threads_to_wait_for() -> bool:
    main = threading.main_thread()
    return any(t is not main and not t.daemon and t.is_alive() for t in threading.enumerate())


def _flushed() -> bool:
    for stream in {id(s): s for s in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__)}.values():
        if stream is None:
            continue
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: the interpreter's exit reports it, as before
            return False
    return True
