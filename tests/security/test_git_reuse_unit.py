"""The reused git fingerprint (gitreuse.taken) is, after each kind of change, what a fresh one is; it is
reused only once nothing it depends on is reported changed, and never where it cannot be watched."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kimicode.security import hostwatch as W
from kimicode.vcs import gitreuse
from kimicode.vcs.gitwatch import Fingerprint, fingerprint


def _git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd, check=True,
                          capture_output=True, text=True)
    return done.stdout.strip()


@pytest.fixture(autouse=True)
def own_watcher(monkeypatch: pytest.MonkeyPatch) -> Iterator[W.Watcher]:
    """A watcher of the test's own: the watches earlier tests' folders took do not count against this one."""
    watcher = W.Watcher()
    monkeypatch.setattr(W, "_WATCHER", watcher)
    yield watcher
    if watcher.fd >= 0:
        os.close(watcher.fd)


def _repository(folder: Path) -> Path:
    folder.mkdir(exist_ok=True)
    _git(folder, "init", "-q", "-b", "main")
    (folder / "a.txt").write_text("one\n")
    _git(folder, "add", "-A")
    _git(folder, "commit", "-qm", "init")
    return folder


class Counted:
    """``taken`` with a count of the fingerprints it computed."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.computed = 0
        real = gitreuse.fingerprint

        def counting(workspace: Path) -> Fingerprint:
            self.computed += 1
            return real(workspace)

        monkeypatch.setattr(gitreuse, "fingerprint", counting)

    def take(self, workspace: Path) -> Fingerprint:
        return asyncio.run(gitreuse.taken(workspace))

    def warm(self, workspace: Path) -> Fingerprint:
        """Take it until it is reused (the fourth time at the latest); what it is then."""
        for _ in range(4):
            self.take(workspace)
        computed = self.computed
        value = self.take(workspace)
        assert self.computed == computed, "not reused after four takes"
        return value


def _hard_linked(path: str, change: Callable[[Path], None]) -> Callable[[Path], None]:
    """``change`` made to the file at ``path`` through a hard link outside its folder (made beforehand)."""
    def prepare(ws: Path) -> None:
        os.link(ws / path, ws / "linked")

    def made(ws: Path) -> None:
        change(ws / "linked")

    made.prepare = prepare  # type: ignore[attr-defined]
    return made


def _append(file: Path) -> None:
    with open(file, "a") as f:
        f.write("[core]\n\tfsmonitor = x\n")


def _linked_worktree(ws: Path) -> Path:
    main = _repository(ws.parent / "main")
    _git(main, "worktree", "add", "-q", str(ws / "linked"))
    return ws / "linked"


REPOSITORY_CHANGES: dict[str, Callable[[Path], None]] = {
    "config through a hard link": _hard_linked(".git/config", _append),
    "hook added": lambda ws: (ws / ".git/hooks/post-checkout").write_text("#!/bin/sh\n"),
    "hook through a hard link": _hard_linked(".git/hooks/pre-commit.sample", _append),
    "hook mode through a hard link": _hard_linked(".git/hooks/pre-commit.sample", lambda f: f.chmod(0o700)),
    ".git replaced by a link": lambda ws: ((ws / ".git").rename(ws / "real"), (ws / ".git").symlink_to("real")),
    ".git replaced by a gitdir file": lambda ws: ((ws / ".git").rename(ws / "g"), (ws / ".git").write_text("gitdir: g\n")),
    ".git moved away": lambda ws: (ws / ".git").rename(ws.parent / "gone"),
    ".gitmodules": lambda ws: (ws / ".gitmodules").write_text('[submodule "s"]\n\tpath = s\n'),
    "gitlink": lambda ws: (_repository(ws / "sub"), _git(ws, "add", "sub")),
    "info/attributes": lambda ws: ((ws / ".git/info").mkdir(exist_ok=True), (ws / ".git/info/attributes").write_text("*")),
    "config.worktree": lambda ws: (ws / ".git/config.worktree").write_text("[core]\n"),
    "commondir": lambda ws: (ws / ".git/commondir").write_text("..\n"),
    "hooks replaced by a link": lambda ws: (ws / ".git/hooks").rename(ws / "h") or (ws / ".git/hooks").symlink_to(ws / "h"),
    # A folder's mode is part of the fingerprint: changed in place, reported only to a watch of the folder itself.
    ".git folder's mode": lambda ws: (ws / ".git").chmod(0o700),
    "hooks folder's mode": lambda ws: (ws / ".git/hooks").chmod(0o700),
}


@pytest.mark.parametrize("name", list(REPOSITORY_CHANGES))
def test_reuse_is_a_fresh_fingerprint_after_a_change_in_a_repository(
    monkeypatch: pytest.MonkeyPatch, workspace: Path, name: str
) -> None:
    _repository(workspace)
    change = REPOSITORY_CHANGES[name]
    getattr(change, "prepare", lambda ws: None)(workspace)
    counted = Counted(monkeypatch)
    before = counted.warm(workspace)
    change(workspace)
    after = counted.take(workspace)
    assert after == fingerprint(workspace) != before
    assert counted.warm(workspace) == fingerprint(workspace)  # reused again, as it now is


PLAIN_CHANGES: dict[str, Callable[[Path], None]] = {
    "git init": lambda ws: _git(ws, "init", "-q"),
    "git init above": lambda ws: _git(ws.parent, "init", "-q"),
    "placeholder filled": lambda ws: (ws / ".git" / "hooks").mkdir(),
    "placeholder made a gitdir file": lambda ws: ((ws / ".git").rmdir(), (ws / ".git").write_text("gitdir: x\n")),
}


@pytest.mark.parametrize("name", list(PLAIN_CHANGES))
def test_reuse_is_a_fresh_fingerprint_after_a_change_in_a_plain_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str
) -> None:
    workspace = tmp_path / "outer" / "ws"
    workspace.mkdir(parents=True)
    (workspace / ".git").mkdir()  # the sandbox's placeholder: looked past while empty
    counted = Counted(monkeypatch)
    before = counted.warm(workspace)
    PLAIN_CHANGES[name](workspace)
    assert counted.take(workspace) == fingerprint(workspace) != before


def test_a_repointed_commondir_of_a_linked_worktree(monkeypatch: pytest.MonkeyPatch, workspace: Path) -> None:
    linked = _linked_worktree(workspace)
    counted = Counted(monkeypatch)
    before = counted.warm(linked)
    git_dir = Path(_git(linked, "rev-parse", "--absolute-git-dir"))
    (git_dir / "commondir").write_text("../../..\n")
    assert counted.take(linked) == fingerprint(linked) != before


def test_ordinary_work_keeps_the_same_fingerprint(monkeypatch: pytest.MonkeyPatch, workspace: Path) -> None:
    _repository(workspace)
    counted = Counted(monkeypatch)
    before = counted.warm(workspace)
    (workspace / "a.txt").write_text("two\n")
    _git(workspace, "commit", "-qam", "two")
    assert counted.take(workspace) == fingerprint(workspace) == before


def test_no_reuse_with_modules(monkeypatch: pytest.MonkeyPatch, workspace: Path) -> None:
    _repository(workspace)
    (workspace / ".git" / "modules").mkdir()
    counted = Counted(monkeypatch)
    for _ in range(6):
        counted.take(workspace)
    assert counted.computed == 6


def test_no_reuse_without_inotify(monkeypatch: pytest.MonkeyPatch, workspace: Path) -> None:
    _repository(workspace)
    monkeypatch.setattr(W.watcher(), "usable", False)
    counted = Counted(monkeypatch)
    for _ in range(6):
        counted.take(workspace)
    assert counted.computed == 6


def test_beyond_its_share_of_watches_it_computes_and_leaves_the_watcher_usable(
    monkeypatch: pytest.MonkeyPatch, workspace: Path
) -> None:
    _repository(workspace)
    monkeypatch.setattr(gitreuse, "MAX_WATCHES", len(W.watcher().by_folder) + 2)
    counted = Counted(monkeypatch)
    for _ in range(6):
        counted.take(workspace)
    assert counted.computed == 6
    assert W.watcher().usable  # the sandbox's description keeps its own reuse


def test_a_forked_child_computes_its_own(monkeypatch: pytest.MonkeyPatch, workspace: Path) -> None:
    _repository(workspace)
    counted = Counted(monkeypatch)
    counted.warm(workspace)
    pid = os.fork()
    if pid == 0:  # the child: the parent's reports are not its own to read
        computed = counted.computed
        fine = counted.take(workspace) == fingerprint(workspace) and counted.computed == computed + 1
        os._exit(0 if fine else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_watching_is_tried_again_once_it_could_not_be(monkeypatch: pytest.MonkeyPatch, workspace: Path) -> None:
    _repository(workspace)
    (workspace / ".git" / "modules").mkdir()
    monkeypatch.setattr(gitreuse, "RETRY_AFTER", 2)
    counted = Counted(monkeypatch)
    for _ in range(4):
        counted.take(workspace)
    (workspace / ".git" / "modules").rmdir()
    for _ in range(gitreuse.RETRY_AFTER):
        counted.take(workspace)
    assert counted.warm(workspace) == fingerprint(workspace)


def test_no_reuse_when_asked_for_none(monkeypatch: pytest.MonkeyPatch, workspace: Path) -> None:
    _repository(workspace)
    monkeypatch.setenv(gitreuse.DISABLE_VARIABLE, "1")
    counted = Counted(monkeypatch)
    for _ in range(6):
        counted.take(workspace)
    assert counted.computed == 6


def test_a_gitlink_written_into_the_index_in_place_with_its_times_put_back(
    monkeypatch: pytest.MonkeyPatch, workspace: Path, tmp_path: Path
) -> None:
    """Same size, same modification time, same inode: only the change time (which no one can set) moved."""
    _repository(workspace)
    blob = _git(workspace, "hash-object", "-w", "a.txt")
    commit = _git(workspace, "rev-parse", "HEAD")
    indexes = {}
    for mode, name in (("100644", blob), ("160000", commit)):
        path = tmp_path / f"index-{mode}"
        subprocess.run(["git", "update-index", "--add", "--cacheinfo", f"{mode},{name},sub"], cwd=workspace,
                       env={**os.environ, "GIT_INDEX_FILE": str(path)}, check=True)
        indexes[mode] = path.read_bytes()
    assert len(indexes["100644"]) == len(indexes["160000"])
    index = workspace / ".git" / "index"
    index.write_bytes(indexes["100644"])
    counted = Counted(monkeypatch)
    before = counted.warm(workspace)
    times = os.stat(index)
    with open(index, "r+b") as f:
        f.write(indexes["160000"])
    os.utime(index, ns=(times.st_atime_ns, times.st_mtime_ns))
    assert counted.take(workspace) == fingerprint(workspace) != before


@pytest.mark.parametrize("repository", [True, False], ids=["repository", "plain folder"])
def test_reused_from_the_third_take(monkeypatch: pytest.MonkeyPatch, workspace: Path, repository: bool) -> None:
    # The first take already starts the watch: a session's second command (takes three and four) reuses.
    if repository:
        _repository(workspace)
    else:
        workspace.mkdir(exist_ok=True)
    counted = Counted(monkeypatch)
    values = [counted.take(workspace) for _ in range(5)]
    assert counted.computed == 2
    assert values == [fingerprint(workspace)] * 5
    if repository:
        (workspace / ".git" / "hooks" / "pre-commit").write_text("#!/bin/sh\n")
    else:
        _repository(workspace)
    assert counted.take(workspace) == fingerprint(workspace) != values[0]  # a change is still seen at once
