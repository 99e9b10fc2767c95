"""What the sandbox needs to know about this machine's files: real paths, the private folders, what a private
folder would hide that the system needs, where a ``.git`` file leads."""

from __future__ import annotations

import functools
import os
import stat
from pathlib import Path

from kimicode.security.bwrap_argv import PRIVATE_DIRS


def real(path: Path) -> Path | None:
    try:
        return Path(os.path.realpath(path))
    except (OSError, ValueError):
        return None


def existing(path: Path) -> Path | None:
    """The resolved path of ``path`` when it exists (the common case, a missing path, costs one stat)."""
    if not os.path.lexists(path):
        return None
    resolved = real(path)
    return resolved if resolved is not None and os.path.exists(resolved) else None


def within(path: Path, root: Path) -> bool:
    # By the strings: pathlib's ``parents`` is slow enough to show in the cost of every command.
    inside, top = str(path), str(root)
    return inside == top or inside.startswith(top if top.endswith("/") else top + "/")


@functools.lru_cache(maxsize=1)
def private_dirs() -> tuple[Path, ...]:
    """The folders of PRIVATE_DIRS that are folders here (``/var/run`` is mostly a link to ``/run``)."""
    return tuple(Path(p) for p in PRIVATE_DIRS if os.path.isdir(p) and not os.path.islink(p))


def under_private(path: Path) -> bool:
    return any(within(path, root) for root in private_dirs())


@functools.lru_cache(maxsize=4)
def private_path_dirs(path_env: str) -> tuple[Path, ...]:
    """The folders of a PATH value that lie in a private folder (not one of those itself), as real paths."""
    found: list[Path] = []
    for entry in path_env.split(os.pathsep):
        resolved = real(Path(entry)) if entry.startswith("/") else None
        if resolved is not None and resolved not in private_dirs() and under_private(resolved):
            found.append(resolved)
    return tuple(found)


@functools.lru_cache(maxsize=1)
def hidden_system_files() -> tuple[Path, ...]:
    """System files a private folder would hide: /etc/resolv.conf is often a link into /run (systemd-resolved)."""
    resolved = existing(Path("/etc/resolv.conf"))
    return (resolved,) if resolved is not None and os.path.isfile(resolved) and under_private(resolved) else ()


@functools.lru_cache(maxsize=1)
def links_out() -> tuple[tuple[Path, str], ...]:
    """The links directly in /run (and a real /var/run folder) that lead out of the private folders, to no socket."""
    links: list[tuple[Path, str]] = []
    for folder in private_dirs():
        if folder == Path("/tmp"):
            continue  # anyone's links: nothing the system needs
        try:
            entries = [Path(e.path) for e in os.scandir(folder) if e.is_symlink()]
        except OSError:
            continue
        for link in entries:
            resolved = existing(link)
            try:
                if resolved is not None and not under_private(resolved) and not stat.S_ISSOCK(os.stat(resolved).st_mode):
                    links.append((link, os.readlink(link)))
            except OSError:
                continue
    return tuple(links)


def git_file_targets(dot_git: Path) -> list[Path]:
    """Where a ``.git`` file (``gitdir: ...``, a linked worktree's) leads: its git dir and that one's common dir."""
    try:
        if not dot_git.is_file():
            return []
        first = dot_git.read_text(encoding="utf-8", errors="replace").splitlines()[0]
    except (OSError, IndexError):
        return []
    if not first.startswith("gitdir:"):
        return []
    targets: list[Path] = []
    git_dir = existing(dot_git.parent / first[len("gitdir:") :].strip())
    if git_dir is not None and os.path.isdir(git_dir):
        targets.append(git_dir)
        try:
            common = (git_dir / "commondir").read_text(encoding="utf-8", errors="replace").strip()
        except OSError:
            common = ""
        resolved = existing(git_dir / common) if common else None
        if resolved is not None and os.path.isdir(resolved):
            targets.append(resolved)
    return targets
