"""Empty folders that stand in for protected paths that do not exist yet, so that the sandbox can mount over them.

A mount needs a mount point. For a protected path that does not exist (``.mcp.json``, ``.vscode/``, ``.git`` in a
folder that is no repository yet) kimicode makes an empty folder, and the sandbox binds it read-only: inside,
the name exists, is empty, and nothing can be created in it, renamed onto it or put in its place. A folder
even for names that are files (``.mcp.json``): git ignores empty folders, so a placeholder never shows in
``git status``, a checkpoint or a diff, which an empty file would; a program inside that opens it for
writing fails just the same. (bubblewrap would make the mount point itself, on the host, and leave it.)

Placeholders are removed when kimicode ends, if still empty — unless another kimicode still uses them: each
holds a shared ``flock`` on every empty protected folder it mounts, and only the one that made a folder,
and can then take the lock alone, removes it. Removing a mount point on the host would detach the mount
in a sandbox still running, hence the lock. A kimicode killed outright leaves its empty folders behind.
"""

from __future__ import annotations

import atexit
import fcntl
import os
import threading
from collections.abc import Callable
from pathlib import Path


class Placeholders:
    def __init__(self) -> None:
        self._made: list[Path] = []  # in the order made; removed in reverse
        self._held: dict[Path, int] = {}  # open folder -> fd holding a shared lock
        self._registered = False

    def claim(self, path: Path) -> Path | None:
        """The real path of folder ``path``, made empty when missing; None when it is not a folder we can use."""
        made = False
        if not os.path.lexists(path):
            try:
                os.mkdir(path, 0o755)
                made = True
            except FileExistsError:
                pass
            except OSError:
                return None
        try:
            real = Path(os.path.realpath(path))
        except (OSError, ValueError):
            return None
        if not os.path.isdir(real):
            return real if os.path.exists(real) else None
        if made:
            self._made.append(real)
            if not self._registered:
                atexit.register(self.remove)
                _MADE.append(self)
                self._registered = True
        if real not in self._held and (made or _empty(real)):
            self._hold(real)
        return real

    def _hold(self, folder: Path) -> None:
        try:
            fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
        except OSError:
            os.close(fd)
            return
        self._held[folder] = fd

    def remove(self) -> None:
        """Remove the empty folders this process made that no other kimicode holds; let go of the rest.

        Folders at the same depth are removed at the same time: removing a folder can wait for the disk
        (a directory's block freed, several milliseconds each on some file systems), and a dozen one after
        the other was the longest part of kimicode's exit. Deeper ones first: a placeholder may sit in
        another (``.github/workflows``). Safe to call again (nothing is left to do)."""
        made, self._made = self._made, []
        held, self._held = self._held, {}
        by_depth: dict[int, list[Path]] = {}
        for folder in made:
            by_depth.setdefault(len(folder.parts), []).append(folder)
        for depth in sorted(by_depth, reverse=True):
            _each(by_depth[depth], lambda folder: _remove_one(folder, held.pop(folder, None)))
        for fd in held.values():  # empty folders found, not made: another kimicode's to remove
            os.close(fd)


def remove_all() -> None:
    """Every placeholder of this process removed now (at the end of the session, once no sandbox runs), so
    that the exit does not wait for it later; the handlers registered at exit then find nothing to do."""
    for placeholders in list(_MADE):
        placeholders.remove()


_MADE: list[Placeholders] = []  # those that made a folder (kept: remove_all and the exit handler)


def _remove_one(folder: Path, fd: int | None) -> None:
    try:
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if _empty(folder):
            os.rmdir(folder)
    except OSError:
        pass  # in use by another kimicode, or no longer ours to remove
    finally:
        if fd is not None:  # (the last reference to a removed folder: this close may be what frees it)
            os.close(fd)


def _each(folders: list[Path], work: Callable[[Path], None]) -> None:
    """``work`` for every folder, at the same time (a thread each); inline where no thread may start (at
    interpreter shutdown, Python 3.12 and later)."""
    threads: list[threading.Thread] = []
    rest = list(folders)
    while len(rest) > 1:
        thread = threading.Thread(target=work, args=(rest[-1],), name="placeholder-removal", daemon=True)
        try:
            thread.start()
        except RuntimeError:
            break
        threads.append(thread)
        rest.pop()
    for folder in rest:
        work(folder)
    for thread in threads:
        thread.join()


def _empty(folder: Path) -> bool:
    try:
        with os.scandir(folder) as entries:
            return next(entries, None) is None
    except OSError:
        return False
