"""Which repository a git command of kimicode's acts on, found by kimicode (not by git's discovery).

The nearest ``.git`` at or above the folder: a directory, or a ``gitdir:`` pointer file (linked worktrees,
submodules). A command the model ran can rewrite any of it, so a layout that only an attack produces is
refused with one message: a ``.git`` link or pointer leading outside the work tree (except a linked
worktree whose git directory points back at it, and a submodule under an enclosing repository's
``.git/modules``), and a ``commondir`` that is not a folder around the git directory (git makes it ``../..``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REFUSED_HEADLINE = "kimicode runs no git here"


class GitRefused(RuntimeError):
    """The repository's layout or control files are not ones kimicode runs git on; the message is one line."""


@dataclass(frozen=True)
class Layout:
    toplevel: Path  # the folder holding .git (the work tree)
    git_dir: Path  # resolved
    common_dir: Path  # resolved; git_dir itself unless a linked worktree


def within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def refuse(toplevel: Path, what: str) -> GitRefused:
    return GitRefused(f"{REFUSED_HEADLINE}: {what} (in {toplevel}); check it, then start kimicode again")


def find_dotgit(start: Path) -> Path | None:
    """The nearest ``.git`` entry (any kind) at or above ``start``."""
    start = Path(os.path.abspath(start))
    for folder in (start, *start.parents):
        candidate = folder / ".git"
        if os.path.lexists(candidate):
            return candidate
    return None


def find_layout(start: Path) -> Layout | None:
    """The repository holding ``start`` (None when there is none); raises GitRefused for a hostile layout."""
    dotgit = find_dotgit(start)
    if dotgit is None:
        return None
    toplevel = dotgit.parent.resolve()
    if dotgit.is_symlink():
        git_dir = dotgit.resolve()
        if not within(git_dir, toplevel):
            raise refuse(toplevel, f".git is a link to {git_dir}, outside the work tree")
    elif dotgit.is_file():
        git_dir = _pointer_target(dotgit, toplevel)
    else:
        git_dir = dotgit.resolve()
    if not git_dir.is_dir():
        raise refuse(toplevel, f"the git directory {git_dir} is missing")
    try:
        common_dir = common_dir_of(git_dir)
    except OSError as exc:
        raise refuse(toplevel, f"{git_dir / 'commondir'} cannot be read ({exc.strerror})") from None
    if not within(git_dir, common_dir):
        raise refuse(toplevel, f"{git_dir / 'commondir'} points at {common_dir}, not a folder around the git directory")
    return Layout(toplevel, git_dir, common_dir)


def common_dir_of(git_dir: Path) -> Path:
    """Where git reads the shared config, objects and refs of ``git_dir``: its ``commondir``, else itself."""
    commondir_file = git_dir / "commondir"
    if not commondir_file.exists():
        return git_dir.resolve()
    return (git_dir / commondir_file.read_text(encoding="utf-8", errors="replace").strip()).resolve()


def _pointer_target(dotgit: Path, toplevel: Path) -> Path:
    try:
        text = dotgit.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise refuse(toplevel, f".git cannot be read ({exc.strerror})") from None
    first = text.splitlines()[0] if text else ""
    if not first.startswith("gitdir:"):
        raise refuse(toplevel, ".git is a file but not a `gitdir:` pointer")
    target = (toplevel / first[len("gitdir:") :].strip()).resolve()
    if within(target, toplevel) or _is_linked_worktree(target, dotgit) or _is_submodule(target, toplevel):
        return target
    raise refuse(toplevel, f".git points at {target}, outside the work tree and not a worktree or submodule of it")


def _is_linked_worktree(target: Path, dotgit: Path) -> bool:
    """``<common>/worktrees/<name>`` of a repository, whose ``gitdir`` file names this very ``.git``."""
    common = target.parent.parent
    if target.parent.name != "worktrees" or not (common / "objects").is_dir() or not (common / "HEAD").exists():
        return False
    try:
        back = (target / "gitdir").read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return False
    pointed = target / back  # an absolute path, or relative to the worktree's git directory (newer git)
    return Path(os.path.abspath(pointed)) == Path(os.path.abspath(dotgit)) or pointed.resolve() == dotgit.resolve()


def _is_submodule(target: Path, toplevel: Path) -> bool:
    """Under ``<enclosing repository>/.git/modules/``."""
    for folder in toplevel.parents:
        modules = folder / ".git" / "modules"
        if within(target, modules.resolve()) and target != modules.resolve():
            return True
    return False
