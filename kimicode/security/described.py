"""The session sandbox's description for a command, worked out once and reused while nothing it depends on changed.

Describing the sandbox (sandbox.py: which secrets to hide, which paths to protect or keep visible, what
each resolves to, and the identity of every path bound) looks at a few hundred names on the host and
costs about a millisecond per command, more than running the command in a warm sandbox. Its result is a
function of the sandbox's settings, a few environment variables and the entries of the host folders it
looked at. ``dependencies`` lists those (folder, name) pairs — every name resolved on the way to each
path, links followed — and the files whose contents it reads (a ``.git`` file, the ``commondir`` it leads
to: watched themselves, as a folder's watch reports names, not writes in place), and hostwatch.py has the
kernel report any change to them.

A description is reused only when it was itself computed while every one of its dependencies was already
watched and no change to them was reported from before it started until after it ended: the first
command of a kind only computes it (a lone command pays for no watching), the second first watches what
the first one depended on (traced again, as it resolves now) and computes it under that watch, and from
the third on it is reused until a change is reported (then the next one or two compute it again). A
change made before a command starts is reported before it starts (the kernel queues the report as part of
the change), so a ``.env``, a key or a ``.git`` made, renamed, replaced by a link or moved gets the same
sandbox it would get from a fresh description — in particular a fresh sandbox where the description
differs. Where inotify is not available, each
command is described afresh, as before.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Hashable
from pathlib import Path
from typing import TYPE_CHECKING

from kimicode.security import hostfiles as H
from kimicode.security import hostwatch as W
from kimicode.security.bwrap_argv import BwrapSpec
from kimicode.security.paths import HOME_SECRETS, is_env_file

if TYPE_CHECKING:
    from kimicode.security.sandbox import Sandbox

Key = tuple[BwrapSpec, tuple[tuple[int, int], ...]]
MAX_KINDS = 16  # descriptions kept per sandbox (by working folder, network and settings)
DISABLE_VARIABLE = "KIMICODE_SANDBOX_DESCRIBE_EACH"  # "1": describe the sandbox afresh for every command
_LOCK = threading.Lock()


def _new_lock_in_child() -> None:
    global _LOCK
    _LOCK = threading.Lock()  # a fork while another thread held it would leave the child's copy held


os.register_at_fork(after_in_child=_new_lock_in_child)


def identity(spec: BwrapSpec) -> tuple[tuple[int, int], ...]:
    """(device, inode) of every path the sandbox binds or hides: a path replaced on the host changes it."""
    found = []
    for path in _spec_paths(spec):
        try:
            info = os.stat(path)
            found.append((info.st_dev, info.st_ino))
        except OSError:
            found.append((-1, -1))
    return tuple(found)


def _spec_paths(spec: BwrapSpec) -> list[Path]:
    return [spec.cwd, spec.temp_dir, *spec.writable, *spec.immovable, *spec.protected, *spec.visible,
            *spec.sockets, *spec.hidden_dirs, *spec.hidden_files]


class Described:
    """One kind of command's description and what it depends on."""

    def __init__(self, key: Key, watched: W.Watched | None) -> None:
        self.key = key
        self.watched = watched


def _settings(sandbox: Sandbox, cwd: Path, allow_network: bool) -> Hashable:
    """What the description depends on besides the host's files."""
    env = os.environ
    return (cwd, allow_network, sandbox.mode, sandbox.network, sandbox.read_only_everything, sandbox.workspace,
            sandbox.home, sandbox.extra_writable, sandbox.sockets, sandbox.git_dir, sandbox.program,
            sandbox.userns, sandbox.disable_userns, os.getuid(), os.getgid(), env.get("HOME"), env.get("PATH"),
            env.get("XDG_RUNTIME_DIR"), env.get("SSH_AUTH_SOCK"))


def _fresh(sandbox: Sandbox, cwd: Path, allow_network: bool) -> Key:
    spec = sandbox.spec_for(cwd, allow_network=allow_network)
    return spec, identity(spec)


def describe(sandbox: Sandbox, cwd: Path, *, allow_network: bool = False) -> Key:
    """The sandbox for a command in ``cwd`` and the identity of what it binds, as a fresh description gives it."""
    watcher = W.watcher()
    if not watcher.usable or os.environ.get(DISABLE_VARIABLE, "") == "1":
        return _fresh(sandbox, cwd, allow_network)
    settings = _settings(sandbox, cwd, allow_network)
    if sandbox.descriptions is None:
        sandbox.descriptions = {}
    kinds: dict[Hashable, Described] = sandbox.descriptions
    with _LOCK:
        watcher.drain()
        watching_before = set(watcher.by_folder)
        known = kinds.get(settings)
        if known is None:  # a lone command (a one-shot run) pays for no watching
            kinds[settings] = known = Described(_fresh(sandbox, cwd, allow_network), None)
            return known.key
        if known.watched is not None and known.watched.fresh:
            return known.key
        # Computed under watch of what the last description depended on: reusable if nothing of it
        # changed meanwhile and it depends on nothing more.
        watched = W.Watched()
        before = known.watched.deps if known.watched is not None else None
        if before is None:  # the second of a kind: the first one's dependencies, as they resolve now
            before = dependencies(sandbox, cwd, known.key[0])
            if not watcher.watch_deps(before):
                before = None
            watcher.drain()
            watching_before = set(watcher.by_folder)
        watched.deps, watched.fresh = dict(before or {}), before is not None
        watcher.sets.add(watched)
        key = _fresh(sandbox, cwd, allow_network)
        deps = dependencies(sandbox, cwd, key[0])
        watching = watcher.watch_deps(deps)
        watcher.drain()
        watched.fresh = watched.fresh and watching and W.covers(before or {}, deps, watching_before)
        watched.deps = deps
        if len(kinds) >= MAX_KINDS and settings not in kinds:
            kinds.pop(next(iter(kinds)))
        kinds[settings] = Described(key, watched)
        return key


def dependencies(sandbox: Sandbox, cwd: Path, spec: BwrapSpec) -> W.Deps:
    """Every (folder, name) of the host that sandbox.py's description of ``spec`` looked at."""
    from kimicode.security.sandbox import PROTECTED, SECRET_HOME_FILES, SOCKETS

    deps: W.Deps = {}
    sock = os.environ.get("SSH_AUTH_SOCK")
    paths = [sandbox.workspace, cwd, *sandbox.extra_writable, *sandbox.sockets, *SOCKETS, *([sock] if sock else [])]
    paths += [Path.home() / name for name in HOME_SECRETS] + [sandbox.home / name for name in SECRET_HOME_FILES]
    paths += [Path(sys.prefix), Path(__file__).resolve().parent.parent, *_spec_paths(spec)]
    paths += H.private_path_dirs(os.environ.get("PATH", ""))  # kept visible where they exist
    paths += [sandbox.git_dir.parent] if sandbox.git_dir else []
    read: list[Path] = []  # files whose contents it reads: watched themselves (written in place)
    for root in spec.writable:
        paths += [root / rel for rel in PROTECTED] + [root / ".github"]
        paths += [folder / ".git" for folder in root.parents]  # a repository above the root
        led_to = _git_file_paths(root / ".git")
        paths += led_to
        read += [root / ".git", led_to[1]] if led_to else []  # (the .git file and the commondir it leads to)
    seen: W.Seen = {}
    memo: dict[str, str | None] = {}
    for path in paths:
        W.trace(str(path), deps, seen, memo)
    for file in read:
        real = W.trace(str(file), deps, seen, memo)
        if real is not None and os.path.isfile(real):
            deps.setdefault(real, set()).add(W.SELF)
    for folder in {sandbox.workspace, *sandbox.extra_writable}:  # listed for .env files
        real = W.trace(str(folder), deps, seen, memo)
        if real is None:
            continue
        W.listing(real, ".env", deps)
        try:
            with os.scandir(real) as entries:
                names = [entry.path for entry in entries if is_env_file(entry.name)]
        except OSError:
            continue
        for name in names:
            W.trace(name, deps, seen, memo)
    return deps


def _git_file_paths(dot_git: Path) -> list[Path]:
    """The paths a ``.git`` file (``gitdir: ...``) makes the description look at: its git dir, the
    ``commondir`` file there and the folder that one names."""
    try:
        if not dot_git.is_file():  # (nothing else is opened: a FIFO would block)
            return []
        with open(dot_git, encoding="utf-8", errors="replace") as f:
            first = f.readline().rstrip("\n")
    except (OSError, ValueError):
        return []
    if not first.startswith("gitdir:"):
        return []
    git_dir = dot_git.parent / first[len("gitdir:") :].strip()
    found = [git_dir, git_dir / "commondir"]
    try:
        common = (git_dir / "commondir").read_text(encoding="utf-8", errors="replace").strip()
    except (OSError, ValueError):
        common = ""
    return found + ([git_dir / common] if common else [])
