"""One process per session: an advisory ``flock`` on a sibling ``<session-id>.lock`` file.

Invariants:
- The OS drops the lock when its holder exits or dies, so a crash never leaves a session taken.
- The holder writes its pid into the lock file (for the message another process shows) and removes the file
  as it lets go; a lock taken on a file removed meanwhile guards nothing, so taking re-checks and starts over.
- Where ``fcntl`` does not exist (Windows), or the file system has no locks, nothing is locked and work goes
  on unlocked rather than refused.
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no flock; sessions are used unlocked there
    fcntl = None  # type: ignore[assignment]


class LockHeld(Exception):
    """Another process holds the lock; ``pid`` is its process id when it could be read."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        super().__init__(pid)


def take(lock_path: Path) -> int | None:
    """The held lock's descriptor, or None when nothing can be locked here; raises LockHeld."""
    if fcntl is None:
        return None
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            pid = _read_pid(fd)
            os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES):
                raise LockHeld(pid) from None
            return None  # a file system without locks: carry on unlocked rather than refuse to work
        try:
            if os.stat(lock_path).st_ino == os.fstat(fd).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def release(fd: int, lock_path: Path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(lock_path)  # still held: anyone who opened it re-checks and starts over
    os.close(fd)


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
