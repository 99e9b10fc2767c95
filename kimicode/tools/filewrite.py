"""Atomic writes of edited text, through the descriptor of the directory the policy judged.

The place a write lands is found by the descriptor walk (kimicode.tools.safeopen) and judged on its real
path; the temp file, the rename and an in-place copy then all name their file relative to that directory's
descriptor, so a link swapped in after the check cannot carry the write into another folder.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path

from kimicode.tools.base import ToolContext, ToolError
from kimicode.tools.fileio import Splice, TextFile, encode_text, restore_endings
from kimicode.tools.safeopen import Target, locate_for_writing, make_missing, refuse_special

_OPEN_EXISTING = os.O_WRONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_NOFOLLOW | os.O_CLOEXEC


def write_text_file(
    path: Path, text: str, like: TextFile | None = None, splice: Splice | None = None, make_parents: bool = False
) -> None:
    """Write ``text`` to ``path`` so that a failure leaves the old file whole.

    With ``like`` (the file as read before an edit) the original encoding, BOM, line endings and mode are
    kept (``splice``, where the edit changed the text, tells which lines keep their endings for sure).
    Symlinks are followed, so the link stays a link. Read-only files (no write permission bit, or
    not writable by this user) and anything but a regular file are refused. ``make_parents``: missing
    directories on the way are created (after the policy judged where they lead).

    The new content always goes to a temp file in the same directory first (written, fsynced). An
    ordinary file is then replaced by renaming the temp file over it: atomic, so a reader or a crash sees
    the old or the new content, never half. A file with several hard links (st_nlink > 1) would lose them
    to a rename (the other names would keep the old inode), so its content is copied into the original
    inode instead, and the temp file, a complete copy, is removed only once that succeeded.
    """
    data = encode_text(text, like, splice)
    target, existing = writable_target(path)
    try:
        if target.missing:
            if not make_parents:
                raise ToolError(f"cannot write {path}: its directory does not exist")
            make_missing(target)
        _write(path, target, data, existing, like)
    finally:
        target.close()


def _write(path: Path, target: Target, data: bytes, existing: os.stat_result | None, like: TextFile | None) -> None:
    tmp = f".{target.name}.{secrets.token_hex(4)}.tmp"
    at = target.fd
    try:
        # 0o666 lets the umask decide a new file's mode, as any editor would.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666, dir_fd=at)
        try:
            _write_all(fd, data)
            if existing is not None:
                _copy_ownership_and_mode(fd, existing, like)
            os.fsync(fd)
        finally:
            os.close(fd)
        if existing is not None and stat.S_ISREG(existing.st_mode) and existing.st_nlink > 1:
            _write_in_place(path, target, data, existing, tmp)
            _remove_quietly(tmp, at)
            return
        if target.moved():  # narrows a rename of the whole directory to the moment of the rename below
            raise ToolError(f"cannot write {path}: its directory was moved while it was being written")
        os.replace(tmp, target.name, src_dir_fd=at, dst_dir_fd=at)
    except _InPlaceError:
        raise
    except ToolError:
        _remove_quietly(tmp, at)
        raise
    except OSError as e:
        _remove_quietly(tmp, at)
        raise ToolError(f"cannot write {path}: {e.strerror or e}") from None
    except BaseException:
        _remove_quietly(tmp, at)
        raise
    _fsync_at(at)


def writable_target(path: Path) -> tuple[Target, os.stat_result | None]:
    """Where a write to ``path`` lands (symlinks followed, judged by the policy on its real path) and the
    stat of what is there (None: it is new); raises ToolError for special files and read-only ones. The
    caller closes the target."""
    target = locate_for_writing(path)
    try:
        existing = target.lstat()
        if existing is not None:
            refuse_special(path, existing)
            if stat.S_ISDIR(existing.st_mode):
                raise ToolError(f"cannot write {path}: it is a directory; give a file path")
            _refuse_read_only(path, target, existing)
    except BaseException:
        target.close()
        raise
    return target, existing


class _InPlaceError(ToolError):
    """Writing into a hard-linked file failed part way; the temp file keeps the whole new content."""


def _refuse_read_only(path: Path, target: Target, existing: os.stat_result) -> None:
    # The mode bits count even for root (which os.access lets write anything): a file someone made
    # read-only says "do not change me", and replacing it through the directory would ignore that.
    mode = stat.S_IMODE(existing.st_mode)
    if mode & 0o222 == 0 or not os.access(target.name, os.W_OK, dir_fd=target.fd):
        raise ToolError(
            f"{path} is read-only (mode {mode:04o}); it was not changed. If the change is intended, make "
            f"the file writable first (e.g. `chmod u+w {path}`) and edit it again"
        )


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _write_in_place(path: Path, target: Target, data: bytes, existing: os.stat_result, tmp: str) -> None:
    """Copy ``data`` into the existing inode of ``target`` (overwrite, then truncate to length)."""
    try:
        fd = os.open(target.name, _OPEN_EXISTING, dir_fd=target.fd)
    except OSError as e:
        _remove_quietly(tmp, target.fd)
        raise ToolError(f"cannot write {path}: {e.strerror or e}") from None
    try:
        now = os.fstat(fd)
        if (now.st_dev, now.st_ino) != (existing.st_dev, existing.st_ino) or not stat.S_ISREG(now.st_mode):
            _remove_quietly(tmp, target.fd)
            raise ToolError(f"{path} was replaced by another file while being edited; nothing was written")
        try:
            _write_all(fd, data)
            os.ftruncate(fd, len(data))
            os.fsync(fd)
        except OSError as e:
            where = target.real.parent / tmp
            raise _InPlaceError(
                f"cannot write {path}: {e.strerror or e}; it may be partly written, and the complete new "
                f"content is in {where}"
            ) from None
    finally:
        os.close(fd)


def _copy_ownership_and_mode(fd: int, existing: os.stat_result, like: TextFile | None) -> None:
    mode = like.mode if like is not None and like.mode is not None else stat.S_IMODE(existing.st_mode)
    if (existing.st_uid, existing.st_gid) != (os.geteuid(), os.getegid()):
        try:
            os.fchown(fd, existing.st_uid, existing.st_gid)
        except PermissionError:
            pass  # an unprivileged user cannot give files away; the content still gets written
    os.fchmod(fd, mode)


def _remove_quietly(name: str, dir_fd: int) -> None:
    try:
        os.unlink(name, dir_fd=dir_fd)
    except OSError:
        pass


def _fsync_at(dir_fd: int) -> None:
    """Make the rename itself durable; not every filesystem allows it, and that is fine."""
    _fsync_opened(lambda: os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=dir_fd))


def fsync_directory(directory: Path) -> None:
    """Make a rename in ``directory`` durable; not every filesystem allows it, and that is fine."""
    _fsync_opened(lambda: os.open(directory, os.O_RDONLY))


def _fsync_opened(open_directory: Callable[[], int]) -> None:
    try:
        fd = open_directory()
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


async def save_text(
    ctx: ToolContext,
    path: Path,
    text: str,
    like: TextFile | None = None,
    splice: Splice | None = None,
    make_parents: bool = False,
) -> None:
    """``write_text_file``, or through the editor when one holds the files (same refusals first)."""
    if ctx.files is not None:
        found, _ = writable_target(path)
        try:
            target = found.real
        finally:
            found.close()
        encode_text(text, like, splice)  # a character the file's encoding cannot hold is refused here too
        content, before = text, None
        if like is not None:
            crlf = like.newline == "\r\n"
            content = restore_endings(text, like, splice) if crlf else text
            before = restore_endings(like.text, like) if crlf else like.text
        if await ctx.files.write_text(target, content, before):
            return
    # In a thread: the fsync (milliseconds, far more on a busy disk) would stall every other agent of a swarm.
    await asyncio.to_thread(write_text_file, path, text, like, splice, make_parents)

