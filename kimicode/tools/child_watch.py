"""Learning that a child process ended without a thread per process.

On Python 3.11 asyncio waits for each child it starts in a thread of its own (``ThreadedChildWatcher``):
every command pays for starting that thread and for switching to it, and on a loaded machine the new thread
may wait for a core before the command counts as started. Linux (5.3 and later) gives a descriptor per
process that becomes readable when the process exits (a pidfd); watched by the event loop that started the
process, the exit arrives with that loop's other events. Python 3.12 does this by itself, so nothing is
changed there. Where a pidfd cannot be had (an older kernel, a seccomp filter), that one process is waited
for in a thread, as before.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from collections.abc import Callable
from typing import Any, TypeVarTuple, Unpack

_Ts = TypeVarTuple("_Ts")

_installed = False
_install_lock = threading.Lock()  # loops in several threads may start their first command at once


def watch_children() -> None:
    """Make asyncio learn of child exits through pidfds from now on (once per process; a no-op where
    Python already does, or where the kernel gives no pidfd)."""
    global _installed
    if _installed or sys.version_info >= (3, 12):
        return
    with _install_lock:
        if _installed:
            return
        _installed = True
        if not _pidfds_work() or type(asyncio.get_child_watcher()) is not asyncio.ThreadedChildWatcher:
            return  # (a watcher someone chose on purpose is left alone)
        asyncio.set_child_watcher(PidfdChildWaiter())


def _pidfds_work() -> bool:
    try:
        fd = os.pidfd_open(os.getpid())
    except (AttributeError, OSError):
        return False
    os.close(fd)
    return True


# Defined only where it is used: Python 3.12 deprecates child watchers, and later versions have none.
if sys.version_info < (3, 12):

    class PidfdChildWaiter(asyncio.AbstractChildWatcher):
        """A child watcher for any running loop: each child's pidfd is watched by the loop that started it.

        Handlers are added from that loop's own thread (asyncio starts subprocesses there)."""

        def __init__(self) -> None:
            self._threaded = asyncio.ThreadedChildWatcher()  # for a child whose pidfd cannot be had
            self._watched: dict[int, tuple[int, asyncio.AbstractEventLoop]] = {}

        def add_child_handler(
            self, pid: int, callback: Callable[[int, int, Unpack[_Ts]], object], *args: Unpack[_Ts]
        ) -> None:
            loop = asyncio.get_running_loop()
            try:
                fd = os.pidfd_open(pid)
            except OSError:
                self._threaded.add_child_handler(pid, callback, *args)
                return
            self._watched[pid] = (fd, loop)
            loop.add_reader(fd, self._exited, pid, callback, args)

        def _exited(self, pid: int, callback: Callable[..., Any], args: tuple[Any, ...]) -> None:
            fd, loop = self._watched.pop(pid)
            loop.remove_reader(fd)
            os.close(fd)
            try:
                _, status = os.waitpid(pid, 0)  # readable: it has exited, so this does not block
                code = os.waitstatus_to_exitcode(status)
            except ChildProcessError:
                code = 255  # reaped by someone else: what asyncio itself reports then
            callback(pid, code, *args)

        def remove_child_handler(self, pid: int) -> bool:
            watched = self._watched.pop(pid, None)
            if watched is None:
                return self._threaded.remove_child_handler(pid)
            fd, loop = watched
            if not loop.is_closed():
                loop.remove_reader(fd)
            os.close(fd)
            return True

        def attach_loop(self, loop: asyncio.AbstractEventLoop | None) -> None:
            """Nothing to attach: each child is watched by the loop running when it was started."""

        def close(self) -> None:
            for pid in list(self._watched):
                self.remove_child_handler(pid)
            self._threaded.close()

        def is_active(self) -> bool:
            return True

        def __enter__(self) -> PidfdChildWaiter:
            return self

        def __exit__(self, *exc: object) -> None:
            return None
