"""Git-worktree isolation for swarm sub-agents: each one edits its own checkout; a wave's end merges them back.

The wave starts with a snapshot of the workspace as it is (tracked files plus untracked, not ignored ones,
uncommitted changes included), built in a temporary index and stored with ``git commit-tree`` on a private
ref, so the user's branch, HEAD, index and stash are never touched. Each sub-agent gets a detached
``git worktree add`` of that snapshot under ``<git common dir>/kimicode-worktrees/``.

Merging back, in the order the sub-agents were started: the sub-agent's worktree and the workspace as it is
now are each committed on top of the snapshot, and ``git merge-tree`` merges the two in object space. A clean
merge is written into the workspace file by file (only the paths that changed); a conflicting one changes
nothing in the workspace and its worktree and commit are kept for the orchestrator to inspect. A sub-agent's
changes land all together or not at all, so the workspace never holds half of one sub-agent's edit.

Plain ``git`` subprocesses (no GitPython): they run in worker threads, off the event loop.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from kimicode.vcs.checkpoints import find_repo
from kimicode.vcs.git import run_git

_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


class WorktreeError(RuntimeError):
    """A git command the isolation needs failed; the message is one line."""


@dataclass
class MergeReport:
    """What happened to one sub-agent's changes at the end of its wave (paths relative to the workspace)."""

    merged: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    kept_worktree: Path | None = None  # where its changes stay when they could not be merged
    kept_commit: str = ""  # a commit of its changes on top of the wave's snapshot
    base_commit: str = ""
    error: str = ""

    def describe(self) -> str:
        """The lines the orchestrator reads under this sub-agent's result."""
        if self.error:
            where = f" They are kept in the worktree {self.kept_worktree}." if self.kept_worktree else ""
            return f"Its changes were not merged: {self.error}.{where}"
        if self.conflicts:
            return (
                f"Conflicts: {', '.join(self.conflicts)} (changed differently by an earlier sub-agent); none of "
                f"this sub-agent's changes were merged. They are kept in the worktree {self.kept_worktree} "
                f"(see them with `git diff {self.base_commit} {self.kept_commit}`); merge them by hand if "
                "they are still wanted."
            )
        if self.merged:
            return "Merged into the workspace: " + ", ".join(self.merged)
        return "Merged into the workspace: no file changes."


@dataclass
class _Checkout:
    agent_id: str
    path: Path  # the worktree's root
    workspace: Path  # the workspace's counterpart inside it


class GitRepo:
    """Runs git in one repository's top level, with a fixed identity and no hooks."""

    def __init__(self, toplevel: Path) -> None:
        self.toplevel = toplevel

    def run(
        self, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, ok: tuple[int, ...] = (0,)
    ) -> subprocess.CompletedProcess[str]:
        return run_git(*args, cwd=cwd or self.toplevel, error=WorktreeError, env=env, ok=ok)

    def out(self, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
        return self.run(*args, env=env, cwd=cwd).stdout.strip()


class WaveWorktrees:
    """The worktrees of one spawn_agents wave: create one per sub-agent, then merge them back and clean up."""

    def __init__(self, workspace: Path, toplevel: Path, common_dir: Path, wave_id: str) -> None:
        self.workspace = workspace
        self.git = GitRepo(toplevel)
        self.root = common_dir / "kimicode-worktrees"
        self.wave_id = _UNSAFE_NAME.sub("-", wave_id)
        self.ref_prefix = f"refs/kimicode-swarm/{self.wave_id}"
        relative = os.path.relpath(workspace, toplevel)
        self.relative = "" if relative == "." else relative
        self.base = ""
        self.user_index: Path | None = None
        self._checkouts: dict[str, _Checkout] = {}

    @classmethod
    def open(cls, workspace: Path, wave_id: str) -> WaveWorktrees | None:
        """The isolation for a workspace inside a git work tree, or None when there is no repository."""
        workspace = Path(workspace).resolve()
        repo = find_repo(workspace, error=WorktreeError)
        if repo is None:
            return None
        common = GitRepo(repo.toplevel).out("rev-parse", "--path-format=absolute", "--git-common-dir")
        wave = cls(workspace, repo.toplevel, Path(common), wave_id)
        wave.user_index = repo.git_dir / "index"
        wave._snapshot()
        return wave

    # -- the snapshot and the sub-agents' checkouts --------------------------------------------------

    def _snapshot(self) -> None:
        tree = self._tree_of(self.git.toplevel, self.user_index)
        self.base = self.git.out("commit-tree", tree, "-m", f"kimicode swarm wave {self.wave_id}: snapshot")
        self.git.run("update-ref", f"{self.ref_prefix}/base", self.base)

    def _tree_of(self, root: Path, seed_index: Path | None) -> str:
        """The tree of a working tree as it is now, built in a throw-away index (never the real one)."""
        with tempfile.TemporaryDirectory(prefix="kimicode-index-") as scratch:
            index = Path(scratch) / "index"
            # Seeding from the real index spares rehashing unchanged files and keeps files that are
            # tracked although they match .gitignore.
            if seed_index is not None and seed_index.is_file():
                shutil.copy2(seed_index, index)  # with its mtime: git tells racily clean entries by it
            env = {"GIT_INDEX_FILE": str(index)}
            self.git.run("add", "-A", "--", ".", env=env, cwd=root)
            return self.git.out("write-tree", env=env, cwd=root)

    def add(self, agent_id: str) -> Path:
        """A fresh worktree of the snapshot for one sub-agent; returns its workspace directory."""
        path = self.root / f"{self.wave_id}-{_UNSAFE_NAME.sub('-', agent_id)}"
        self.root.mkdir(parents=True, exist_ok=True)
        self.git.run("worktree", "add", "--detach", "--quiet", str(path), self.base)
        workspace = path / self.relative if self.relative else path
        workspace.mkdir(parents=True, exist_ok=True)
        self._checkouts[agent_id] = _Checkout(agent_id, path, workspace)
        return workspace

    # -- merging back ---------------------------------------------------------------------------------

    def merge(self, agent_id: str) -> MergeReport:
        """Bring one sub-agent's changes into the workspace, or keep them aside if they conflict."""
        checkout = self._checkouts.get(agent_id)
        if checkout is None:
            return MergeReport()
        try:
            report = self._merge(checkout)
        except (WorktreeError, OSError) as exc:
            return MergeReport(error=str(exc), kept_worktree=checkout.path)
        if not report.conflicts:
            self._remove(checkout)
        return report

    def _merge(self, checkout: _Checkout) -> MergeReport:
        theirs_tree = self._tree_of(checkout.path, _worktree_index(self.git, checkout.path))
        base_tree = self.git.out("rev-parse", f"{self.base}^{{tree}}")
        if theirs_tree == base_tree:
            return MergeReport()
        theirs = self._commit(theirs_tree, f"kimicode swarm {checkout.agent_id}")
        ours_tree = self._tree_of(self.git.toplevel, self.user_index)
        conflicts: list[str]
        if ours_tree == base_tree:
            merged_tree, conflicts = theirs_tree, []
        else:
            ours = self._commit(ours_tree, "kimicode swarm: workspace before merge")
            merged_tree, conflicts = self._merge_trees(ours, theirs)
        if conflicts:
            ref = f"{self.ref_prefix}/{_UNSAFE_NAME.sub('-', checkout.agent_id)}"
            self.git.run("update-ref", ref, theirs)
            return MergeReport(
                conflicts=[self._display(p) for p in conflicts],
                kept_worktree=checkout.path,
                kept_commit=theirs,
                base_commit=self.base,
            )
        return MergeReport(merged=self._write_workspace(ours_tree, merged_tree))

    def _commit(self, tree: str, message: str) -> str:
        # Both sides of a merge sit on the snapshot, so it is their merge base.
        return self.git.out("commit-tree", tree, "-p", self.base, "-m", message)

    def _merge_trees(self, ours: str, theirs: str) -> tuple[str, list[str]]:
        result = self.git.run(
            "merge-tree", "--write-tree", "--name-only", "--no-messages", "-z", ours, theirs, ok=(0, 1)
        )
        parts = result.stdout.split("\0")
        conflicts = sorted({p for p in parts[1:] if p}) if result.returncode == 1 else []
        return parts[0].strip(), conflicts

    def _write_workspace(self, current_tree: str, target_tree: str) -> list[str]:
        """Make the files that differ between the two trees look as in ``target_tree``; returns them."""
        listing = self.git.out(
            "diff-tree", "-r", "-z", "--no-renames", "--name-status", current_tree, target_tree
        ).split("\0")
        to_checkout: list[str] = []
        to_delete: list[str] = []
        for status, path in zip(listing[0::2], listing[1::2], strict=False):  # (a trailing "")
            (to_delete if status == "D" else to_checkout).append(path)
        for path in to_delete:
            _delete(self.git.toplevel / path)
        if to_checkout:
            with tempfile.TemporaryDirectory(prefix="kimicode-index-") as scratch:
                env = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
                self.git.run("read-tree", target_tree, env=env)
                run_git(
                    "checkout-index", "-f", "-z", "--stdin",
                    cwd=self.git.toplevel, error=WorktreeError, env=env, stdin="\0".join(to_checkout),
                )
        return sorted(self._display(p) for p in [*to_checkout, *to_delete])

    def _display(self, toplevel_relative: str) -> str:
        return os.path.relpath(self.git.toplevel / toplevel_relative, self.workspace)

    # -- cleaning up ----------------------------------------------------------------------------------

    def _remove(self, checkout: _Checkout) -> None:
        self.git.run("worktree", "remove", "--force", str(checkout.path), ok=(0, 128))
        shutil.rmtree(checkout.path, ignore_errors=True)
        self._checkouts.pop(checkout.agent_id, None)

    def discard(self, agent_id: str) -> None:
        """Drop a sub-agent's worktree without merging (it was cancelled)."""
        checkout = self._checkouts.get(agent_id)
        if checkout is not None:
            self._remove(checkout)

    def close(self) -> None:
        """After the wave: prune worktree records; the snapshot ref goes unless a kept commit needs it."""
        self.git.run("worktree", "prune", ok=(0, 128))
        if not self._checkouts:
            self.git.run("update-ref", "-d", f"{self.ref_prefix}/base", ok=(0, 1, 128))
        try:
            self.root.rmdir()  # only when no kept worktree is left in it
        except OSError:
            pass


def _worktree_index(git: GitRepo, worktree: Path) -> Path | None:
    try:
        return Path(git.out("rev-parse", "--path-format=absolute", "--git-path", "index", cwd=worktree))
    except WorktreeError:
        return None


def _delete(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
