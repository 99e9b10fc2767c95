"""Open what a path names one component at a time, so the file decided on is the file used.

A check on a path string and a later ``open`` of the same string can meet two different files: between them
a link can be swapped (``d`` -> ``.git``, ``notes`` -> ``~/.ssh/id_rsa``). Here the path is walked from ``/``
with a directory descriptor per step, every component opened with ``O_NOFOLLOW``; a symlink met on the way
is read and followed by this walk, not by the kernel. The opened descriptor's own path (``/proc/self/fd``)
is then what the permission policy judges again (``check_opened``), and the bytes are read or written
through that descriptor — a later swap of the name changes nothing for this call.

Why a walk rather than ``openat2``: ``RESOLVE_NO_SYMLINKS`` would refuse the links a project keeps (a link
inside the workspace to a file inside it works as it always did), and ``RESOLVE_BENEATH`` would refuse the
files outside the workspace the user approves; ``openat2`` also needs Linux 5.6 and a syscall number per
architecture. The walk works on every Linux and still knows each step.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from kimicode.tools.base import ToolError, check_opened

# As the kernel's own limit: a loop of links ends with an error, not forever.
MAX_SYMLINKS = 40
# A swap that keeps racing the walk gets this many fresh tries before the call gives up.
MAX_RETRIES = 8
_DIR = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_NOFOLLOW | os.O_CLOEXEC


class Raced(Exception):
    """A component changed between looking at it and opening it: walk again."""


@dataclass
class Target:
    """Where a path leads: ``fd`` is the deepest existing directory on the way, ``missing`` the directories
    still to create below it, ``name`` the last component (never a symlink when the walk looked)."""

    fd: int
    name: str
    missing: list[str] = field(default_factory=list)
    judged: Path | None = None  # the real path the policy judged (locate_for_writing)

    @property
    def real(self) -> Path:
        """The real path this target names: the directory's path as the kernel knows it, plus the rest."""
        return real_path(self.fd).joinpath(*self.missing, self.name)

    def moved(self) -> bool:
        """The judged directory is somewhere else by now (renamed as a whole since the check)."""
        return self.judged is not None and self.real != self.judged

    def lstat(self) -> os.stat_result | None:
        if self.missing:
            return None
        try:
            return os.stat(self.name, dir_fd=self.fd, follow_symlinks=False)
        except FileNotFoundError:
            return None

    def close(self) -> None:
        os.close(self.fd)


def real_path(fd: int) -> Path:
    """The path of an open descriptor, read back from the kernel."""
    try:
        return Path(os.readlink(f"/proc/self/fd/{fd}"))
    except OSError as e:  # no /proc: nothing to judge the file by, so it is not used
        raise ToolError(f"cannot tell which file was opened (/proc/self/fd: {e.strerror}); nothing was done") from None


def locate(path: Path) -> Target:
    """Walk the absolute ``path`` with every symlink followed here, the last one included (a write to a
    link changes the file it points at, and the link stays a link). Raises ToolError when it cannot lead
    anywhere (a file where a directory should be, a loop of links)."""
    for _ in range(MAX_RETRIES):
        try:
            return _walk(path)
        except Raced:
            continue
        except OSError as e:
            raise ToolError(f"cannot open {path}: {e.strerror or e}") from None
    raise ToolError(f"{path} kept changing while it was being opened; nothing was read or written")


def _walk(path: Path) -> Target:
    todo = list(reversed(Path(os.path.normpath(path)).parts[1:]))  # a stack: the next component last
    fd = os.open("/", _DIR)
    missing: list[str] = []
    links = 0
    try:
        while todo:
            name = todo.pop()
            if name in ("", "."):
                continue
            if missing:  # below a directory that does not exist: nothing more to look at
                if name == "..":
                    raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT))
                if todo:
                    missing.append(name)
                    continue
                return Target(fd, name, missing)
            if name == "..":
                fd = _step(fd, "..")
                continue
            try:
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                if not todo:
                    return Target(fd, name)
                missing.append(name)
                continue
            if stat.S_ISLNK(st.st_mode):
                links += 1
                if links > MAX_SYMLINKS:
                    raise OSError(errno.ELOOP, os.strerror(errno.ELOOP))
                link = os.readlink(name, dir_fd=fd)
                if link.startswith("/"):
                    os.close(fd)
                    fd = os.open("/", _DIR)
                todo.extend(reversed(Path(link).parts[1:] if link.startswith("/") else Path(link).parts))
                continue
            if not todo:
                return Target(fd, name)
            if not stat.S_ISDIR(st.st_mode):
                raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
            fd = _step(fd, name)
        return Target(fd, ".")  # the path names "/" (or a link to it)
    except BaseException:
        os.close(fd)
        raise


def _step(fd: int, name: str) -> int:
    """The directory ``name`` below ``fd``, opened without following a link; closes ``fd`` once it is open
    (on failure ``fd`` stays open for the caller to close)."""
    try:
        child = os.open(name, _DIR, dir_fd=fd)
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENOTDIR, errno.ENOENT):  # swapped since it was looked at
            raise Raced from None
        raise
    os.close(fd)
    return child


def lstat_target(path: Path) -> os.stat_result | None:
    """What ``path`` leads to (links followed by the walk), or None when nothing is there; never raises
    OSError (a name too long, a file where a directory should be: ToolError)."""
    target = locate(path)
    try:
        return target.lstat()
    except OSError as e:
        raise ToolError(f"cannot open {path}: {e.strerror or e}") from None
    finally:
        target.close()


def describe_special(mode: int) -> str:
    """What a non-regular file is, in words; "" for a regular file or a directory."""
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return ""
    return "not a regular file"


def refuse_special(path: Path, st: os.stat_result) -> None:
    """Raise ToolError for FIFOs, devices and sockets: reading one can block forever or never end."""
    kind = describe_special(st.st_mode)
    if kind:
        raise ToolError(
            f"{path} is {kind}, not a regular file; it was not opened (reading it could block or never "
            f"end). Use bash if you really need it (e.g. `head -c 100 {path}` with a timeout)"
        )


def open_for_reading(path: Path) -> tuple[int, os.stat_result]:
    """A read-only descriptor of what ``path`` names (a file or a directory) once the policy has judged its
    real path; FIFOs, devices and sockets are refused before they are opened."""
    for _ in range(MAX_RETRIES):
        target = locate(path)
        try:
            st = target.lstat()
            if st is None:
                raise ToolError(f"{path} does not exist")
            if stat.S_ISLNK(st.st_mode):
                continue  # a link appeared after the walk looked
            refuse_special(path, st)  # before any open: opening a device can have effects of its own
            try:
                fd = os.open(target.name, _READ, dir_fd=target.fd)
            except OSError as e:
                if e.errno in (errno.ELOOP, errno.ENOENT):
                    continue
                raise ToolError(f"cannot read {path}: {e.strerror}") from None
        finally:
            target.close()
        try:
            now = os.fstat(fd)
            if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
                os.close(fd)
                continue
            refuse_special(path, now)
            check_opened(real_path(fd))
        except BaseException:
            os.close(fd)
            raise
        return fd, now
    raise ToolError(f"{path} kept changing while it was being opened; nothing was read")


def locate_for_writing(path: Path) -> Target:
    """The place a write to ``path`` lands, judged by the policy on its real path; the caller closes it."""
    target = locate(path)
    try:
        target.judged = target.real
        check_opened(target.judged)
    except BaseException:
        target.close()
        raise
    return target


def make_missing(target: Target) -> None:
    """Create the directories ``target`` still lacks, each below the descriptor of the one before."""
    while target.missing:
        name = target.missing.pop(0)
        try:
            os.mkdir(name, dir_fd=target.fd)
        except FileExistsError:
            pass
        except OSError as e:
            raise ToolError(f"cannot create directory {name}: {e.strerror or e}") from None
        try:
            target.fd = _step(target.fd, name)
        except (Raced, OSError):
            raise ToolError(f"the directory {name} changed while it was being created; nothing was written") from None
