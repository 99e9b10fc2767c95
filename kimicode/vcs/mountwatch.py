"""Knowing, for the price of one ``poll``, whether this process's mount table may have changed.

A folder mounted over another (``mount --bind elsewhere .git``, by root) changes what every path below it
shows, and inotify reports none of it. The kernel flags ``/proc/self/mountinfo`` to ``poll`` (POLLPRI) after
each mount or unmount in the process's mount namespace; mounts inside a sandbox's own namespace do not
flag it. Values reused while nothing was reported changed (gitreuse.py) are marked stale here when it is.
"""

from __future__ import annotations

import os
import select
import weakref
from typing import BinaryIO

from kimicode.security.hostwatch import Watched

MOUNT_TABLE = "/proc/self/mountinfo"


class Mounts:
    """The mount table's flag, read by one process (a forked child opens its own: the two would share it)."""

    def __init__(self) -> None:
        self.pid = -1
        self.file: BinaryIO | None = None
        self.poller: select.poll | None = None
        self.sets: weakref.WeakSet[Watched] = weakref.WeakSet()  # made stale by a change

    def heed(self) -> bool:
        """Mark every set stale if the table may have changed since the last look; False when it cannot
        be watched (then nothing may be reused)."""
        if self.pid != os.getpid():
            return self._open()
        assert self.file is not None and self.poller is not None
        try:
            if not self.poller.poll(0):
                return True
            self.file.seek(0)
            self.file.read()  # (older kernels clear the flag on a read, newer ones on the poll)
        except OSError:
            self._stale()
            self.pid = -1
            return False
        self._stale()
        return True

    def _open(self) -> bool:
        self._stale()  # what changed before the table was watched is not known
        try:
            file = open(MOUNT_TABLE, "rb")  # kept open: the flag lives on this open file
            file.read()
            poller = select.poll()
            poller.register(file.fileno(), select.POLLPRI | select.POLLERR)
        except (OSError, AttributeError):  # no /proc, or no poll() here
            return False
        if self.file is not None:
            self.file.close()  # (in a child: its own copy only)
        self.file, self.poller, self.pid = file, poller, os.getpid()
        return True

    def _stale(self) -> None:
        for watched in self.sets:
            watched.fresh = False


MOUNTS = Mounts()
