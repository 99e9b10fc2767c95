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
        """Remove the empty folders this process made that no other kimicode holds; let go of the rest."""
        for folder in reversed(self._made):
            fd = self._held.get(folder)
            try:
                if fd is not None:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                if _empty(folder):
                    os.rmdir(folder)
            except OSError:
                continue  # in use by another kimicode, or no longer ours to remove
        for fd in self._held.values():
            os.close(fd)
        self._made.clear()
        self._held.clear()


def _empty(folder: Path) -> bool:
    try:
        with os.scandir(folder) as entries:
            return next(entries, None) is None
    except OSError:
        return False
