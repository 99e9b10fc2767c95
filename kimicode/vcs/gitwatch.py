"""Noticing that a command changed what git would run: the repository's control files, before and after.

A fingerprint is a handful of ``lstat`` calls (``.git`` and what it points at, ``config``, ``commondir``,
``gitdir``, ``hooks/``, ``info/attributes``, ``.gitmodules``, ``modules/*/config``) plus the nested
repositories the index records (gitlinks, read from the index file only when it changed). The bash tool
takes one before and one after each command; when they differ, the result says so and kimicode runs no
git in that repository for the rest of the process: the user's own ``git status`` there may now run code
the command planted, which kimicode cannot prevent, only point out. A new start of kimicode re-enables it.
"""

from __future__ import annotations

import os
import struct
import threading
from pathlib import Path

from kimicode.vcs.layout import REFUSED_HEADLINE, GitRefused, find_dotgit, find_layout, within

__all__ = ["CHANGED_HEADLINE", "REFUSED_HEADLINE", "fingerprint", "gitlinks", "note", "refusal"]

CHANGED_HEADLINE = "git control files changed"
UNREADABLE_INDEX = "<index not readable>"  # what gitlinks() says when it cannot parse the index
Fingerprint = tuple[tuple[str, object], ...]

_lock = threading.Lock()
_changed: dict[Path, str] = {}  # work tree or workspace -> what changed there
_gitlink_cache: dict[str, tuple[tuple[int, int, int, int], tuple[str, ...]]] = {}


def _stat(path: Path, with_times: bool = True) -> object:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if not with_times:
        return (st.st_ino, st.st_mode)
    return (st.st_ino, st.st_mode, st.st_size, st.st_mtime_ns)


def _listing(folder: Path) -> object:
    try:
        with os.scandir(folder) as entries:
            return tuple(sorted((e.name, _stat(Path(e.path))) for e in entries))
    except OSError:
        return None


def fingerprint(workspace: Path) -> Fingerprint:
    """What identifies the repository around ``workspace`` and what its git would run."""
    dotgit = _nearest_dotgit(workspace)
    if dotgit is None:
        return (("no repository", str(Path(workspace).resolve())),)
    parts: list[tuple[str, object]] = [(".git", str(dotgit)), ("stat .git", _stat(dotgit, with_times=False))]
    if dotgit.is_symlink() or dotgit.is_file():
        parts.append(("stat .git file", _stat(dotgit)))
        try:
            parts.append(("pointer", os.readlink(dotgit) if dotgit.is_symlink() else dotgit.read_bytes()[:4096]))
        except OSError:
            parts.append(("pointer", None))
    try:
        layout = find_layout(dotgit.parent)
    except GitRefused as exc:
        return (*parts, ("refused", str(exc)))
    if layout is None:
        return tuple(parts)
    for folder in dict.fromkeys((layout.git_dir, layout.common_dir)):
        for name in ("config", "config.worktree", "commondir", "gitdir", "info/attributes"):
            parts.append((f"{folder}/{name}", _stat(folder / name)))
        parts.append((f"{folder}/hooks", (_stat(folder / "hooks"), _listing(folder / "hooks"))))
        modules = folder / "modules"
        if modules.is_dir():
            parts.append((f"{folder}/modules", tuple(sorted((str(p), _stat(p)) for p in modules.glob("**/config")))))
    parts.append((".gitmodules", _stat(layout.toplevel / ".gitmodules")))
    for link in gitlinks(layout.git_dir / "index"):
        parts.append((f"gitlink {link}", _stat(layout.toplevel / link / ".git", with_times=False)))
    return tuple(parts)


def _nearest_dotgit(workspace: Path) -> Path | None:
    """The nearest ``.git`` at or above ``workspace`` that is not an empty folder.

    An empty ``.git`` folder is what the sandbox puts in place as a mount point in a folder that is no
    repository (security/placeholders.py), made while a command starts: git itself looks past it, as
    past any folder that holds no repository, and so does this watch. Anything put into it is seen.
    """
    found = find_dotgit(workspace)
    while found is not None and not found.is_symlink() and found.is_dir() and _empty(found):
        above = found.parent.parent
        found = find_dotgit(above) if above != found.parent else None  # "/.git" has nothing above
    return found


def _empty(folder: Path) -> bool:
    try:
        with os.scandir(folder) as entries:
            return next(entries, None) is None
    except OSError:
        return False  # unreadable: not known to be empty, so taken as a repository


def note(workspace: Path, before: Fingerprint, after: Fingerprint) -> str:
    """"" when ``after`` is as ``before``; else the note for the tool result (and git is refused)."""
    if after == before:
        return ""
    what = _describe(before, after)
    root = Path(workspace).resolve()
    with _lock:
        _changed[root] = what
    return (
        f"[{CHANGED_HEADLINE} during this command: {what}. kimicode runs no git in {root} for the rest of this "
        "session (no checkpoints, /undo or /diff); a plain `git status` there may run code the command put in "
        "place. Check .git/config, .git/hooks, .gitmodules and nested repositories, then start kimicode again.]"
    )


def _describe(before: Fingerprint, after: Fingerprint) -> str:
    old, new = dict(before), dict(after)
    names = [k for k in dict.fromkeys([*old, *new]) if old.get(k) != new.get(k)]
    shown = ", ".join(k.rsplit("/", 2)[-1] if "/" in k and not k.startswith("gitlink") else k for k in names[:4])
    return shown + (f" and {len(names) - 4} more" if len(names) > 4 else "")


def refusal(path: Path, toplevel: Path | None) -> str | None:
    """Why kimicode runs no git at ``path`` (in the work tree ``toplevel``), or None."""
    here = Path(os.path.abspath(path))
    with _lock:
        for root, what in _changed.items():
            if within(here, root) or (toplevel is not None and within(root, toplevel)):
                return (
                    f"{REFUSED_HEADLINE}: its git control files changed during this session ({what}); "
                    "check them, then start kimicode again"
                )
    return None


def gitlinks(index: Path) -> tuple[str, ...]:
    """The paths the index records as nested repositories (mode 160000), cached by the index's stat."""
    try:
        st = os.stat(index)
    except OSError:
        return ()
    key = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)  # (a change time cannot be put back)
    with _lock:
        cached = _gitlink_cache.get(str(index))
    if cached is not None and cached[0] == key:
        return cached[1]
    try:
        links = _parse_gitlinks(index.read_bytes())
    except (OSError, ValueError, struct.error):
        links = (UNREADABLE_INDEX,)
    with _lock:
        _gitlink_cache[str(index)] = (key, links)
    return links


_ENTRY = struct.Struct(">10I")  # ctime, ctime ns, mtime, mtime ns, dev, ino, mode, uid, gid, size


def _parse_gitlinks(data: bytes) -> tuple[str, ...]:
    """Index format versions 2 to 4 (SHA-1 or SHA-256 object names, told apart by what parses)."""
    if data[:4] != b"DIRC":
        raise ValueError("not an index")
    version, count = struct.unpack_from(">II", data, 4)
    if version not in (2, 3, 4):
        raise ValueError(f"index version {version}")
    if b"\x00\x00\xe0\x00" not in data:  # a gitlink's mode (0o160000, big-endian) is nowhere: none
        return ()
    for hash_size in (20, 32):
        try:
            return _entries(data, version, count, hash_size)
        except (ValueError, struct.error, UnicodeDecodeError):
            continue
    raise ValueError("index entries do not parse")


def _entries(data: bytes, version: int, count: int, hash_size: int) -> tuple[str, ...]:
    found: list[str] = []
    pos, previous = 12, b""
    for _ in range(count):
        mode = _ENTRY.unpack_from(data, pos)[6]
        flags_at = pos + 40 + hash_size
        (flags,) = struct.unpack_from(">H", data, flags_at)
        name_at = flags_at + 2 + (2 if version >= 3 and flags & 0x4000 else 0)
        if version == 4:
            strip, name_at = _varint(data, name_at)
            end = data.index(b"\0", name_at)
            if strip > len(previous):
                raise ValueError("bad prefix")
            name = previous[: len(previous) - strip] + data[name_at:end]
            pos = end + 1
        else:
            end = data.index(b"\0", name_at)
            name = data[name_at:end]
            pos += (name_at - pos + len(name) + 8) & ~7
        if (flags & 0xFFF) != min(len(name), 0xFFF):
            raise ValueError("name length mismatch")
        previous = name
        if mode & 0o170000 == 0o160000:
            found.append(name.decode("utf-8", "surrogateescape"))
    if pos > len(data):
        raise ValueError("entries overrun the index")
    return tuple(found)


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = data[pos] & 0x7F
    while data[pos] & 0x80:
        pos += 1
        value = ((value + 1) << 7) | (data[pos] & 0x7F)
    return value, pos + 1
