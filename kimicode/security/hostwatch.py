"""Knowing, for the price of one read, whether any of a set of host paths may have changed since a moment.

What a path resolves to depends on one name in each folder its resolution passes through (links
followed); ``trace`` records those (folder, name) pairs. ``Watcher`` asks the kernel (inotify) to report
every change to them: an entry made, removed, renamed, replaced, its attributes or its contents changed,
or the folder itself moved or gone. The kernel queues the report as part of the change itself, so a
change made before a check is always seen by it — unlike modification times, which may not move at all
within one clock tick or can be put back (``touch -r``). A queue that overflowed counts as a change to
everything.

A folder's watch reports the names in it: an entry made, removed, renamed or replaced, and the folder
itself moved or gone. What is done to an entry in place (its contents written, its permissions changed)
is reported to a watch of that entry itself (``Watcher.watch_files``), which a caller adds for every
file or folder whose status or contents it depends on (a ``Deps`` entry ``{path: {SELF}}``): it also sees
a file changed through another hard link, which no folder's watch does. A folder's watch does not ask for
its entries' in-place changes because the kernel then marks every entry it has cached, negative ones
included, when the watch is added (≈ 15 ms for a ``/tmp`` that has seen many files come and go).
A folder's own permissions decide what a lookup through it finds, for a process subject to them: such a
process's watch of a folder it owns (whose permissions it, and its commands, may change) asks for the
folder's own changes too (folder_modes.py).

Where inotify cannot be had (another system, no instance left), ``Watcher.usable`` is False and callers
work without it. A forked child never reads its parent's queue (the two would share it, and one would
take the reports the other needs): it starts a watcher of its own.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import stat
import struct
import sys
import threading
import weakref
from collections.abc import Iterable

from kimicode.security.folder_modes import own_changes_matter

# From <sys/inotify.h>.
IN_MODIFY, IN_ATTRIB, IN_CLOSE_WRITE = 0x2, 0x4, 0x8
IN_MOVED_FROM, IN_MOVED_TO, IN_CREATE, IN_DELETE = 0x40, 0x80, 0x100, 0x200
IN_DELETE_SELF, IN_MOVE_SELF, IN_UNMOUNT, IN_Q_OVERFLOW, IN_IGNORED = 0x400, 0x800, 0x2000, 0x4000, 0x8000
IN_ONLYDIR, IN_DONT_FOLLOW = 0x01000000, 0x02000000
IN_NONBLOCK, IN_CLOEXEC = 0o4000, 0o2000000
STRUCTURAL = IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE
NAMES = STRUCTURAL | IN_DELETE_SELF | IN_MOVE_SELF  # a folder's names (and the folder moved or gone)
MASK = NAMES | IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE  # and changes in place: of a watched path itself
EVENT = struct.Struct("iIII")
# File systems whose every change is made by this machine's kernel, which reports it. Not NFS, SMB, FUSE
# and the like (another machine or a user-space server changes them unreported): no reuse there.
LOCAL_FILE_SYSTEMS = frozenset({
    0xEF53,  # ext2/3/4
    0x58465342,  # xfs
    0x9123683E,  # btrfs
    0x01021994,  # tmpfs
    0x858458F6,  # ramfs
    0x794C7630,  # overlayfs
    0xF2F52010,  # f2fs
    0x2FC12FC1,  # zfs
})
MAX_LINKS = 40  # as the kernel: more links in one resolution is ELOOP
MAX_WATCHES = 512  # per process: beyond it, no more folders are watched (callers then go without)
PREFIX = "*"  # a name "*.env": every entry whose name starts with ".env" (a folder listed for them)

Deps = dict[str, set[str]]  # folder -> names looked up in it; a watched file -> {SELF}
SELF = ""  # the name a report about a watched path itself carries
Seen = dict[str, "tuple[int, str] | None"]  # path -> (mode, link target) or None (missing), within one tracing


def trace(path: str, deps: Deps, seen: Seen | None = None, memo: dict[str, str | None] | None = None) -> str | None:
    """Add to ``deps`` each (folder, name) resolving absolute ``path`` looks at, following links as the
    kernel does; the real path it resolves to (None: it does not). ``seen`` and ``memo`` share what was
    looked up between the paths of one description, so that each name is looked up once."""
    seen = {} if seen is None else seen
    memo = {} if memo is None else memo
    if not path.startswith("/"):
        path = os.path.abspath(path)
    if path in memo:
        return memo[path]
    parent, name = os.path.split(path)
    if parent == path:  # "/"
        return "/"
    folder = trace(parent, deps, seen, memo)
    found = None if folder is None else _step(folder, name, deps, seen, 0)
    memo[path] = found
    return found


def _step(folder: str, name: str, deps: Deps, seen: Seen, links: int) -> str | None:
    """Look ``name`` up in real folder ``folder`` (following a link there): the real path, or None."""
    if folder != "/":
        info = seen.get(folder)
        if info is None or not stat.S_ISDIR(info[0]):
            return None  # (not a folder: the lookup fails, as it does for the kernel)
    if name in ("", "."):
        return folder
    if name == "..":
        return os.path.dirname(folder)
    deps.setdefault(folder, set()).add(name)
    step = folder + name if folder == "/" else folder + "/" + name
    if step not in seen:
        seen[step] = _look(step)
    found = seen[step]
    if found is None:
        return None  # missing (or unreadable): what depends on it is the name's absence, recorded above
    mode, target = found
    if not stat.S_ISLNK(mode):
        return step
    if links >= MAX_LINKS or not target:
        return None
    current: str | None = "/" if target.startswith("/") else folder
    for part in target.split("/"):
        if current is None:
            return None
        current = _step(current, part, deps, seen, links + 1)
    return current


def _look(path: str) -> tuple[int, str] | None:
    try:
        mode = os.lstat(path).st_mode
        return mode, os.readlink(path) if stat.S_ISLNK(mode) else ""
    except (OSError, ValueError):
        return None


def listing(folder: str, prefix: str, deps: Deps) -> None:
    """``folder`` (a real path, traced) is listed for the entries whose name starts with ``prefix``."""
    deps.setdefault(folder, set()).add(PREFIX + prefix)


class Watcher:
    """One inotify queue per process, shared by every ``Watched`` set of it."""

    def __init__(self) -> None:
        self.fd = -1
        self.pid = os.getpid()
        self.usable = False
        self.by_folder: dict[str, int] = {}  # folder -> watch descriptor
        self.in_place: set[str] = set()  # the paths watched for changes in place too (MASK, not NAMES)
        self.folders: dict[int, set[str]] = {}  # one folder bound at two places: one watch, two names
        self.sets: weakref.WeakSet[Watched] = weakref.WeakSet()
        self.lock = threading.RLock()  # one reader of the queue at a time: reports are taken by the first
        if not sys.platform.startswith("linux"):
            return
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            self._add = libc.inotify_add_watch
            self._add.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
            self._remove = libc.inotify_rm_watch
            self._remove.argtypes = [ctypes.c_int, ctypes.c_int]
            self._statfs = libc.statfs
            self._statfs.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
            fd = libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        except (OSError, AttributeError):
            return
        if fd >= 0:
            self.fd, self.usable = fd, True

    def watch(self, folders: Iterable[str]) -> bool:
        """Watch each folder's names (parents first, so that a folder replaced after its parent is watched is
        reported by the parent); False when one cannot be watched."""
        with self.lock:
            return self._watch(sorted(folders, key=lambda f: f.count("/")), IN_ONLYDIR)

    def watch_files(self, paths: Iterable[str]) -> bool:
        """Watch each path's own inode (not followed if a link) for every change, in place ones included: a
        file changed through another hard link is reported too. The folder holding each is to be watched
        first, so that a path replaced by another name is reported there."""
        with self.lock:
            return self._watch(paths, 0)

    def watch_deps(self, deps: Deps) -> bool:
        """Watch what ``deps`` names: each folder's names, and each ``SELF`` path itself."""
        return (self.watch([path for path, names in deps.items() if names - {SELF}])
                and self.watch_files([path for path, names in deps.items() if SELF in names]))

    def _watch(self, paths: Iterable[str], kind: int) -> bool:
        for path in paths:
            if path in self.in_place:
                continue  # (watched for everything already)
            in_place = not kind or own_changes_matter(path)
            if not in_place and path in self.by_folder:
                continue
            if path not in self.by_folder and len(self.by_folder) >= MAX_WATCHES:
                self.usable = False  # (callers stop paying for tracing what cannot be watched)
                return False
            if not self._local(path):
                return False
            # (A path watched before for its names only: the same call widens its watch, same descriptor.)
            wd = self._add(self.fd, os.fsencode(path), (MASK if in_place else NAMES) | kind | IN_DONT_FOLLOW)
            if wd < 0:
                if ctypes.get_errno() in (errno.ENOSPC, errno.ENOMEM):  # the user's watches used up
                    self.usable = False
                return False
            self.by_folder[path] = wd
            self.folders.setdefault(wd, set()).add(path)
            if in_place:
                self.in_place.add(path)
        return True

    def _local(self, folder: str) -> bool:
        """Whether ``folder`` lies on a file system in LOCAL_FILE_SYSTEMS (``statfs``'s f_type: the
        first field, a word, on every Linux ABI; a wrong guess elsewhere only means no reuse)."""
        buffer = ctypes.create_string_buffer(256)
        if self._statfs(os.fsencode(folder), buffer) != 0:
            return False
        kind = ctypes.c_ulong.from_buffer(buffer).value & 0xFFFFFFFF
        return kind in LOCAL_FILE_SYSTEMS

    def drain(self) -> None:
        """Read every report queued; mark changed each set that depends on what it names."""
        with self.lock:
            self._drain()

    def _drain(self) -> None:
        while True:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                return
            except OSError:
                self._broken()
                return
            offset = 0
            while offset + EVENT.size <= len(data):
                wd, mask, _, size = EVENT.unpack_from(data, offset)
                raw = data[offset + EVENT.size : offset + EVENT.size + size]
                offset += EVENT.size + size
                if mask & IN_Q_OVERFLOW:
                    self._broken()
                    return
                folders = self.folders.get(wd)
                if folders is None:
                    continue
                name = os.fsdecode(raw.split(b"\0", 1)[0])
                for watched in self.sets:
                    for folder in folders:
                        watched.changed(folder, name)
                if mask & (IN_IGNORED | IN_UNMOUNT):  # the watch is gone: watched again when next needed
                    for folder in list(folders):
                        self._forget(folder)
                elif mask & (IN_MOVE_SELF | IN_DELETE_SELF):
                    for folder in list(folders):
                        self._forget(folder)
                elif name and mask & STRUCTURAL:
                    # What was watched under this name is elsewhere now, or gone: a folder that takes the
                    # name is a new one, to be watched anew (the old watch follows the old folder).
                    for folder in list(folders):
                        if os.path.join(folder, name) in self.by_folder:
                            self._forget(os.path.join(folder, name))

    def _forget(self, path: str) -> None:
        """Stop counting ``path`` and the folders under it as watched."""
        inside = path + "/"
        for folder in [f for f in self.by_folder if f == path or f.startswith(inside)]:
            wd = self.by_folder.pop(folder)
            self.in_place.discard(folder)
            names = self.folders.get(wd, set())
            names.discard(folder)
            if not names:
                self.folders.pop(wd, None)
                self._remove(self.fd, wd)  # (its IN_IGNORED then finds no folder)

    def _broken(self) -> None:
        """Reports were lost: everything counts as changed, and watching starts over."""
        for watched in self.sets:
            watched.fresh = False
        os.close(self.fd)
        self.__init__()  # type: ignore[misc]


_WATCHER: Watcher | None = None


def watcher() -> Watcher:
    global _WATCHER
    if _WATCHER is None or _WATCHER.pid != os.getpid():
        _WATCHER = Watcher()
    return _WATCHER


def let_go() -> None:
    """The session is over: nothing reused from here on, and the queue let go of without waiting for it.

    Closing the last reference to an inotify queue waits for the kernel to retire its watches (a grace
    period: 10–20 ms on a busy machine), and so does the exit of a process that still holds one, whichever
    thread closes it. A short-lived child given a copy of the queue (``/bin/true``, its standard input) makes
    its own end the last reference: this process's close returns at once, and the wait is the child's,
    which a thread of this one reaps. Where no child can be started the queue is closed in that thread.
    A later use starts a watcher of its own, as after a fork. Called once kimicode's children are ended
    (orphans.end_orphans would otherwise end the child and wait for it)."""
    global _WATCHER
    current, _WATCHER = _WATCHER, None
    if current is None or current.fd < 0 or current.pid != os.getpid():
        return
    with current.lock:
        for watched in current.sets:
            watched.fresh = False
        fd, current.fd, current.usable = current.fd, -1, False
    holder = _holder(fd)
    if holder is not None:
        os.close(fd)  # (at once: the child, which exits within a millisecond, is to hold the last reference)
    threading.Thread(target=_close_or_reap, args=(fd, holder), name="inotify-close", daemon=True).start()


HOLDERS = ("/bin/true", "/usr/bin/true")  # a program that only exits


def _holder(fd: int) -> int | None:
    """A child holding a copy of ``fd`` until it exits (None: none could be started)."""
    if fd == 0:  # (a duplicate onto itself would keep close-on-exec: the child would hold nothing)
        return None
    for program in HOLDERS:
        try:
            return os.posix_spawn(program, [program], {}, file_actions=[(os.POSIX_SPAWN_DUP2, fd, 0)])
        except OSError:
            continue
    return None


def _close_or_reap(fd: int, holder: int | None) -> None:
    if holder is None:
        os.close(fd)
        return
    with contextlib.suppress(ChildProcessError):  # (reaped elsewhere: a later end of orphans)
        os.waitpid(holder, 0)


def _forget_in_child() -> None:
    """A forked child shares the parent's queue: it lets go of it unread and starts its own when needed."""
    global _WATCHER
    if _WATCHER is not None and _WATCHER.fd >= 0:
        for watched in _WATCHER.sets:
            watched.fresh = False
        os.close(_WATCHER.fd)
    _WATCHER = None


os.register_at_fork(after_in_child=_forget_in_child)


def covers(before: Deps, now: Deps, watched: set[str]) -> bool:
    """Whether every dependency of ``now`` was watched (``watched``: the paths watched before the value
    was computed) and among ``before``'s, so that its reports were heeded all along."""
    return all(path in watched and path in before and names <= before[path] for path, names in now.items())


class Watched:
    """A set of (folder, name) dependencies, fresh while nothing in it has been reported changed."""

    def __init__(self) -> None:
        self.deps: Deps = {}
        self.fresh = False

    def changed(self, folder: str, name: str) -> None:
        names = self.deps.get(folder)
        # A report without a name is about the folder itself (moved, gone, its permissions changed).
        if names is not None and (not name or name in names or any(
            n.startswith(PREFIX) and name.startswith(n[len(PREFIX) :]) for n in names
        )):
            self.fresh = False
