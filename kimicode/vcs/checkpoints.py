"""Git checkpoints of the working tree, kept entirely out of the user's way.

A snapshot is a commit of the whole working tree (tracked files plus untracked, not ignored ones), built
in a private index file inside ``.git/`` and stored on ``refs/kimicode/<session-id>``; the commit chain
on that ref is the undo stack. The user's HEAD, branch, index and stash are never read-modified-written.

Each git command is one process run through GitPython's command layer (``kimicode/vcs/git.py``), a few
milliseconds each (see benchmarks/checkpoints.py). ``DeferredUndo`` decides git or backups on the first
turn, so GitPython's import stays off the REPL's start-up path.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from kimicode.vcs.backups import FileBackups
from kimicode.vcs.git import check_repository, git_available, git_output, run_git
from kimicode.vcs.layout import GitRefused
from kimicode.vcs.undo import UndoProvider, UndoReport

__all__ = ["CheckpointError", "Checkpoints", "DeferredUndo", "FileBackups", "UndoProvider", "UndoReport", "make_undo_provider"]


class CheckpointError(RuntimeError):
    """A git command the checkpoints need failed; the message is one line."""


@dataclass(frozen=True)
class _Repo:
    toplevel: Path
    git_dir: Path


def find_repo(workspace: Path, error: type[Exception] = CheckpointError) -> _Repo | None:
    """The git work tree holding ``workspace``, or None (not a repo, bare, or no git installed); raises
    ``error`` for a repository kimicode runs no git on (layout.py, gitwatch.py)."""
    if not git_available():
        return None
    try:
        check_repository(workspace)
    except GitRefused as exc:
        raise error(str(exc)) from None
    out = git_output("rev-parse", "--show-toplevel", "--absolute-git-dir", cwd=workspace)
    lines = (out or "").splitlines()
    if len(lines) != 2 or not lines[0]:
        return None
    return _Repo(Path(lines[0]), Path(lines[1]))


class Checkpoints:
    """The undo stack of one session in a git work tree."""

    def __init__(self, workspace: Path, session_id: str, repo: _Repo | None = None) -> None:
        self.workspace = Path(workspace).resolve()
        found = repo or find_repo(self.workspace)
        if found is None:
            raise CheckpointError(f"{self.workspace} is not inside a git work tree; use FileBackups instead")
        self.repo = found
        self.session_id = session_id
        self.ref = f"refs/kimicode/{session_id}"
        self.base_ref = f"refs/kimicode-base/{session_id}"
        private = self.repo.git_dir / "kimicode"
        self._snapshot_index = private / f"index-{session_id}"
        self._restore_index = private / f"restore-index-{session_id}"
        relative = os.path.relpath(self.workspace, self.repo.toplevel)
        self._pathspec = "." if relative == "." else relative

    # -- the UndoProvider protocol -------------------------------------------------------------------

    def begin_turn(self, label: str = "") -> None:
        # Always a checkpoint of its own, even when nothing changed since the last one: it carries this
        # turn's label (what /undo names) and is the point a rewind to this turn's message goes back to.
        self.snapshot(label or "before turn", new=True)

    def mark(self) -> dict[str, str]:
        """Where the last ``begin_turn`` left the working tree, as a session record can keep it."""
        top = self._top()
        return {"git": top[0]} if top is not None else {}

    def restore_commit(self, commit: str) -> UndoReport:
        """Put the working tree back as checkpoint ``commit`` holds it (a rewind)."""
        tree = self._git("rev-parse", "--verify", "--quiet", f"{commit}^{{tree}}").strip()
        if not tree:
            raise CheckpointError(f"checkpoint {commit[:12]} is no longer in the repository")
        report = self._restore(self._write_tree(), tree)
        report.label = self._git("log", "-1", "--format=%s", commit).strip()
        return report

    def before_write(self, path: Path) -> None:
        """Nothing to do: the snapshot taken at the start of the turn already holds every file."""

    def undo(self) -> UndoReport:
        top = self._top()
        current = self._write_tree()
        # Checkpoints identical to the present changed nothing: skip them so undo always reverts the
        # last turn that did change files.
        while top is not None and top[1] == current:
            top = self._pop(top)
        if top is None:
            return UndoReport()
        commit, tree, _parent = top
        report = self._restore(current, tree)
        report.label = self._git("log", "-1", "--format=%s", commit).strip()
        self._pop(top)
        return report

    def diff(self) -> str:
        base = self._git("for-each-ref", "--format=%(objectname)", self.base_ref).strip()
        if not base:
            return ""
        return self._git(
            "diff", "--no-color", "--no-ext-diff", "--no-textconv", base, self._write_tree(), "--", self._pathspec,
            errors="replace",
        )

    # -- snapshots -----------------------------------------------------------------------------------

    def snapshot(self, label: str, new: bool = False) -> str | None:
        """Record the working tree; returns the checkpoint commit (the existing one if nothing changed,
        unless ``new``)."""
        tree = self._write_tree()
        top = self._top()
        if top is not None and top[1] == tree and not new:
            return top[0]
        parents = ["-p", top[0]] if top is not None else []
        commit = self._git("commit-tree", tree, *parents, "-m", label or "checkpoint").strip()
        self._git("update-ref", "-m", "kimicode checkpoint", self.ref, commit, *([top[0]] if top else []))
        if not self._git("for-each-ref", "--format=%(objectname)", self.base_ref).strip():
            self._git("update-ref", self.base_ref, commit)
        return commit

    def count(self) -> int:
        """How many checkpoints are on the undo stack."""
        if self._top() is None:
            return 0
        return int(self._git("rev-list", "--count", self.ref).strip())

    def _write_tree(self) -> str:
        """The tree of the working tree as it is now, built in the private index."""
        try:  # before the private index is touched: .git may no longer be the folder it was
            check_repository(self.repo.toplevel, git_dir=self.repo.git_dir)
        except GitRefused as exc:
            raise CheckpointError(str(exc)) from None
        self._seed_index(self._snapshot_index)
        env = {"GIT_INDEX_FILE": str(self._snapshot_index)}
        self._git("add", "-A", "--", self._pathspec, env=env)
        return self._git("write-tree", env=env).strip()

    def _seed_index(self, index: Path) -> None:
        # Start from the user's index: its stat cache spares rehashing unchanged files, and it keeps
        # files that are tracked although they match .gitignore.
        index.parent.mkdir(parents=True, exist_ok=True)
        user_index = self.repo.git_dir / "index"
        if user_index.is_file():
            shutil.copy2(user_index, index)  # with its mtime: git tells racily clean entries by it
        else:
            index.unlink(missing_ok=True)

    def _top(self) -> tuple[str, str, str] | None:
        """(commit, tree, first parent or "") of the newest checkpoint, or None."""
        out = self._git("for-each-ref", "--format=%(objectname) %(tree) %(parent)", self.ref).split()
        if not out:
            return None
        return out[0], out[1], out[2] if len(out) > 2 else ""

    def _pop(self, top: tuple[str, str, str]) -> tuple[str, str, str] | None:
        commit, _tree, parent = top
        if parent:
            self._git("update-ref", self.ref, parent, commit)
            return self._top()
        self._git("update-ref", "-d", self.ref, commit)
        return None

    # -- restoring -----------------------------------------------------------------------------------

    def _restore(self, current_tree: str, target_tree: str) -> UndoReport:
        changes = self._git(
            "diff-tree", "-r", "-z", "--no-renames", "--name-status", current_tree, target_tree,
            "--", self._pathspec,
        ).split("\0")
        to_checkout: list[str] = []
        to_delete: list[str] = []
        for status, path in zip(changes[0::2], changes[1::2], strict=False):  # (a trailing "")
            (to_delete if status == "D" else to_checkout).append(path)
        # Deletions first: a file may have to make way for a directory of the same name.
        for path in to_delete:
            self._delete(self.repo.toplevel / path)
        if to_checkout:
            env = {"GIT_INDEX_FILE": str(self._restore_index)}
            try:
                self._git("read-tree", target_tree, env=env)
                self._git("checkout-index", "-f", "-z", "--stdin", env=env, stdin="\0".join(to_checkout))
            finally:
                self._restore_index.unlink(missing_ok=True)
        return UndoReport(
            restored=[self._display(p) for p in to_checkout], deleted=[self._display(p) for p in to_delete]
        )

    def _delete(self, path: Path) -> None:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
        # Directories the turn created around a new file go with it.
        parent = path.parent
        while parent != self.workspace and parent != self.repo.toplevel and self.workspace in parent.parents:
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent

    def _display(self, toplevel_relative: str) -> str:
        return os.path.relpath(self.repo.toplevel / toplevel_relative, self.workspace)

    def _git(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        stdin: str | None = None,
        # Diffs of non-UTF-8 files ask for "replace" instead of the byte-exact default.
        errors: str = "surrogateescape",
    ) -> str:
        return run_git(
            *args, cwd=self.repo.toplevel, error=CheckpointError, env=env, stdin=stdin, errors=errors
        ).stdout


def make_undo_provider(workspace: Path, kimicode_home: Path, session_id: str) -> UndoProvider:
    """Git checkpoints inside a git work tree, file backups everywhere else."""
    repo = find_repo(Path(workspace))
    if repo is not None:
        return Checkpoints(Path(workspace), session_id, repo=repo)
    return FileBackups(Path(kimicode_home), session_id, workspace=Path(workspace))


class DeferredUndo:
    """An undo provider that picks git checkpoints or file backups when it is first used.

    The REPL makes its provider at start-up; deciding there would import GitPython on the path to the first
    prompt. The first turn decides instead (``begin_turn`` runs in a worker thread).
    """

    def __init__(self, workspace: Path, kimicode_home: Path, session_id: str) -> None:
        self._args = (Path(workspace), Path(kimicode_home), session_id)
        self._provider: UndoProvider | None = None

    def resolve(self) -> UndoProvider:
        if self._provider is None:
            self._provider = make_undo_provider(*self._args)
        return self._provider

    def begin_turn(self, label: str = "") -> None:
        self.resolve().begin_turn(label)

    def before_write(self, path: Path) -> None:
        self.resolve().before_write(path)

    def undo(self) -> UndoReport:
        return self.resolve().undo()

    def mark(self) -> dict[str, str]:
        return self.resolve().mark()

    def diff(self) -> str:
        return self.resolve().diff()
