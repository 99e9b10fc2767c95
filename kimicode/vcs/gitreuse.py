"""The git watch's fingerprint (gitwatch.py), worked out again only when something it depends on changed.

A fingerprint is a function of the host entries its lookups pass through: the ``.git`` of the workspace
and of each folder above it (and what is in an empty one: the sandbox's placeholder), what ``.git`` leads
to (links, a ``gitdir:`` file, ``commondir``, a linked worktree's ``gitdir``), the control files and hooks
there, ``.gitmodules``, the index and each nested repository it records. ``dependencies`` lists those
(folder, name) pairs — every name resolved on the way, links followed, as ``Path.resolve`` or the kernel
follows them — and every file or folder whose status or contents the fingerprint reads, watched as that
path itself: a folder's watch reports the names in it, not what is done to an entry in place (a write, a
mode changed; a write through another hard link reaches no folder's watch at all).

The reuse keeps described.py's discipline: a fingerprint is reused only when it was itself computed while
all its dependencies were already watched and no change to them was reported from before it started until
after it ended. The first fingerprint of a workspace (a command's "before") computes and starts watching, the second
computes again under watch; from the third on it is reused, for the price of one read of the kernel's
queue and no thread, until a change is reported. Where inotify
cannot be had (another system, no watches left, a file system whose changes the kernel may not see, a lost
report, a forked child), or the repository has ``modules/``, each fingerprint is computed as before. A
mount or unmount in kimicode's mount namespace (which inotify does not report) makes every kept fingerprint
stale (mountwatch.py).
"""

from __future__ import annotations

import asyncio
import os
import stat
import threading
from pathlib import Path

from kimicode.security import hostwatch as W
from kimicode.vcs.gitwatch import Fingerprint, fingerprint, gitlinks
from kimicode.vcs.layout import GitRefused, find_layout
from kimicode.vcs.mountwatch import MOUNTS

__all__ = ["DISABLE_VARIABLE", "dependencies", "taken"]

DISABLE_VARIABLE = "KIMICODE_GIT_WATCH_EACH"  # "1": compute the fingerprint afresh for every command
MAX_WORKSPACES = 16
RETRY_AFTER = 32  # fingerprints computed plainly before watching is tried again where it could not be
# Watches this reuse may bring the process's count to: the rest stay for the sandbox's description
# (described.py), which would lose its own reuse were the watcher used up (many worktrees in one swarm).
MAX_WATCHES = W.MAX_WATCHES // 2
_LOCK = threading.Lock()


class _Known:
    """A workspace's last fingerprint and what it depends on (None: computed with nothing watched)."""

    def __init__(self, value: Fingerprint, watched: W.Watched | None, plain: int = 0) -> None:
        self.value = value
        self.watched = watched
        self.watcher = W.watcher() if watched is not None else None  # whose reports it heeds
        self.plain = plain  # fingerprints still to compute without watching (its dependencies could not be)


_known: dict[str, _Known] = {}


def _new_lock_in_child() -> None:
    global _LOCK
    _LOCK = threading.Lock()  # a fork while another thread held it would leave the child's copy held


os.register_at_fork(after_in_child=_new_lock_in_child)


async def taken(workspace: Path) -> Fingerprint:
    """The fingerprint of ``workspace`` as ``fingerprint`` gives it now: the last one while nothing it
    depends on was reported changed (no thread), else computed afresh in a thread."""
    key = os.path.abspath(workspace)
    watcher = W.watcher()
    known = _known.get(key)
    if (known is not None and known.plain) or not watcher.usable or os.environ.get(DISABLE_VARIABLE, "") == "1":
        value = await asyncio.to_thread(fingerprint, workspace)
        _remember(key, _Known(value, None, plain=max(0, known.plain - 1) if known is not None else 0))
        return value
    # Every use of the watcher happens here, on the event loop's thread (as described.py's); the thread
    # only reads the host's files.
    with _LOCK:
        watcher.drain()
        mounts = MOUNTS.heed()  # (a mount makes no inotify report)
        kept = known.watched if known is not None else None
        if mounts and kept is not None and kept.fresh and known is not None and known.watcher is watcher:
            return known.value
        watching_before = set(watcher.by_folder)
        before = kept.deps if kept is not None else None  # (the first: it starts the watch, not yet reusable)
        watched = W.Watched()
        watched.deps, watched.fresh = dict(before or {}), before is not None
        watcher.sets.add(watched)
        MOUNTS.sets.add(watched)
    value, deps = await asyncio.to_thread(_computed, workspace)
    with _LOCK:
        if deps is None or not _watch(watcher, deps):
            watcher.sets.discard(watched)
            _remember(key, _Known(value, None, plain=RETRY_AFTER))  # computed as before, for a while
            return value
        watcher.drain()
        watched.fresh = MOUNTS.heed() and mounts and watched.fresh and W.covers(before or {}, deps, watching_before)
        watched.deps = deps
        _remember(key, _Known(value, watched))
    return value


def _watch(watcher: W.Watcher, deps: W.Deps) -> bool:
    """Watch every dependency (False: not all can be, or not within this reuse's share of watches)."""
    if len(watcher.by_folder) + sum(path not in watcher.by_folder for path in deps) > MAX_WATCHES:
        return False
    return watcher.watch_deps(deps)


def _remember(key: str, known: _Known) -> None:
    if len(_known) >= MAX_WORKSPACES and key not in _known:
        _known.pop(next(iter(_known)))
    _known[key] = known


def _computed(workspace: Path) -> tuple[Fingerprint, W.Deps | None]:
    return fingerprint(workspace), dependencies(workspace)


class _Trace:
    """The dependencies of one fingerprint, gathered by looking the same names up again."""

    def __init__(self) -> None:
        self.deps: W.Deps = {}
        self.seen: W.Seen = {}
        self.memo: dict[str, str | None] = {}

    def follow(self, path: Path | str) -> str | None:
        """A lookup the kernel makes (a ``stat``, an open, a listing): the real path, or None."""
        return W.trace(os.path.abspath(path), self.deps, self.seen, self.memo)

    def entry(self, path: Path | str) -> None:
        """An ``lstat`` of ``path`` whose result is part of the fingerprint: watched itself (a folder's mode is
        part of it too, and a folder's watch reports only the names in it)."""
        folder, name = os.path.split(os.path.abspath(path))
        real = self.follow(folder)
        if real is None or self.follow(os.path.join(real, name)) is None:
            return
        self.deps.setdefault(os.path.join(real, name), set()).add(W.SELF)

    def read(self, path: Path | str) -> None:
        """A file whose contents the fingerprint reads (links followed)."""
        real = self.follow(path)
        if real is not None and os.path.isfile(real):
            self.deps.setdefault(real, set()).add(W.SELF)

    def resolve(self, path: Path | str, links: int = 0) -> str | None:
        """Each name ``Path.resolve()`` (not strict) looks up on its way; what it resolves to (None: more
        links than the kernel follows, which no reuse is worth)."""
        current = "/"
        for name in os.fspath(path).split("/"):
            if name in ("", "."):
                continue
            if name == "..":
                current = os.path.dirname(current)
                continue
            step = os.path.join(current, name)
            if current == "/" or os.path.isdir(current) and self.follow(current) == current:
                self.deps.setdefault(current, set()).add(name)  # (a lookup in no folder fails as long as that stays so)
            try:
                mode = os.lstat(step).st_mode
            except OSError:
                mode = 0
            if not stat.S_ISLNK(mode):
                current = step
                continue
            if links >= W.MAX_LINKS:
                return None
            target = os.readlink(step)
            found = self.resolve(target if target.startswith("/") else os.path.join(current, target), links + 1)
            if found is None:
                return None
            current = found
        return current


def dependencies(workspace: Path) -> W.Deps | None:
    """What ``fingerprint(workspace)`` depends on; None when it is not to be reused (a refused layout,
    ``modules/``, unreadable parts, links without end)."""
    try:
        return _dependencies(Path(os.path.abspath(workspace)))
    except OSError:
        return None


def _dependencies(start: Path) -> W.Deps | None:
    t = _Trace()
    if t.resolve(start) is None:
        return None
    dotgit = None
    for folder in (start, *start.parents):  # each .git looked for, up to the nearest that is not empty
        found = folder / ".git"
        real = t.follow(found)
        t.entry(found)
        if not os.path.lexists(found):
            continue
        if real is not None and os.path.isdir(real) and not os.path.islink(found):
            W.listing(real, "", t.deps)  # looked past while empty: anything put in it is seen
            if not os.listdir(real):
                continue
        dotgit = found
        break
    if dotgit is None:
        return t.deps
    try:
        layout = find_layout(dotgit.parent)
    except GitRefused:
        return None  # a layout only an attack makes: computed afresh each time
    if layout is None or not _layout(t, dotgit, layout.toplevel):
        return None
    for folder in dict.fromkeys((layout.git_dir, layout.common_dir)):
        for name in ("config", "config.worktree", "commondir", "gitdir", "info/attributes", "hooks"):
            t.entry(folder / name)
        hooks = t.follow(folder / "hooks")
        if hooks is not None and os.path.isdir(hooks):
            W.listing(hooks, "", t.deps)
            for name in os.listdir(hooks):
                t.entry(os.path.join(hooks, name))
        if t.follow(folder / "modules") is not None:
            return None  # nested repositories' own control files: not followed here
    t.entry(layout.toplevel / ".gitmodules")
    t.read(layout.git_dir / "index")
    for link in gitlinks(layout.git_dir / "index"):
        t.entry(layout.toplevel / link / ".git")
    return t.deps


def _layout(t: _Trace, dotgit: Path, toplevel: Path) -> bool:
    """The lookups layout.find_layout makes from ``dotgit``; False when they cannot be followed."""
    if t.resolve(dotgit.parent) is None or t.resolve(dotgit) is None:
        return False
    if os.path.isfile(dotgit) and not os.path.islink(dotgit):
        t.read(dotgit)
        text = dotgit.read_text(encoding="utf-8", errors="replace")
        first = text.splitlines()[0] if text else ""  # (as layout.py reads it)
        if not first.startswith("gitdir:"):
            return False
        target = t.resolve(toplevel / first[len("gitdir:") :].strip())
        if target is None:
            return False
        common = Path(target).parent.parent  # a linked worktree's repository
        t.follow(common / "objects")
        t.follow(common / "HEAD")
        t.read(Path(target) / "gitdir")
        try:
            back = (Path(target) / "gitdir").read_text(encoding="utf-8", errors="replace").strip()
        except OSError:
            back = ""
        if back and t.resolve(Path(target) / back) is None:
            return False
        for folder in toplevel.parents:  # a submodule's git directory under an enclosing .git/modules
            if t.resolve(folder / ".git" / "modules") is None:
                return False
        git_dir = Path(target)
    else:
        git_dir = Path(os.path.realpath(dotgit))
    t.follow(git_dir)
    t.read(git_dir / "commondir")
    try:
        common_name = (git_dir / "commondir").read_text(encoding="utf-8", errors="replace").strip()
    except FileNotFoundError:
        return True
    return t.resolve(git_dir / common_name) is not None
