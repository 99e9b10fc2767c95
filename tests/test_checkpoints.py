"""Git checkpoints and file backups: undo puts the workspace back and leaves the user's git state alone."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from kimicode.vcs.checkpoints import Checkpoints, FileBackups, make_undo_provider


def git(repo: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True, env=env).stdout


def user_git_state(repo: Path) -> dict[str, str]:
    return {
        "head": git(repo, "rev-parse", "HEAD"),
        "branch": git(repo, "symbolic-ref", "HEAD"),
        "branch_tip": git(repo, "rev-parse", "refs/heads/main"),
        "staged": git(repo, "diff", "--cached"),
        "index": git(repo, "ls-files", "-s"),
        "stash": git(repo, "stash", "list"),
        "refs": git(repo, "for-each-ref", "--format=%(refname)", "refs/heads", "refs/tags", "refs/stash"),
    }


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / "tracked.txt").write_text("one\ntwo\n")
    (root / "staged.txt").write_text("base\n")
    (root / "doomed.txt").write_text("I will be deleted\n")
    (root / ".gitignore").write_text("build/\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial")
    git(root, "stash", "list")
    # The user's work in progress: a dirty tracked file, a staged change, an untracked file, an ignored one.
    (root / "tracked.txt").write_text("one\ntwo\nuser edit\n")
    (root / "staged.txt").write_text("staged by the user\n")
    git(root, "add", "staged.txt")
    (root / "staged.txt").write_text("staged by the user\nand then edited\n")
    (root / "notes.txt").write_text("untracked notes\n")
    (root / "build").mkdir()
    (root / "build" / "out.bin").write_bytes(b"\0\1ignored")
    return root


def test_undo_restores_exact_state_and_leaves_user_git_alone(repo: Path) -> None:
    before_state = user_git_state(repo)
    before_files = {p: (repo / p).read_bytes() for p in ("tracked.txt", "staged.txt", "notes.txt", "doomed.txt")}

    checkpoints = Checkpoints(repo, "20261129-000000-abcdef")
    commit = checkpoints.snapshot("before turn 1")
    assert commit and checkpoints.count() == 1
    assert checkpoints.snapshot("same state") == commit  # nothing changed: no new checkpoint

    # The turn: edit a tracked file, edit the untracked one, create files (one in a new folder), delete one.
    (repo / "tracked.txt").write_text("rewritten by the agent\n")
    (repo / "notes.txt").write_text("agent notes\n")
    (repo / "new.py").write_text("print('new')\n")
    (repo / "pkg" / "sub").mkdir(parents=True)
    (repo / "pkg" / "sub" / "mod.py").write_text("x = 1\n")
    (repo / "doomed.txt").unlink()
    (repo / "build" / "out.bin").write_bytes(b"rebuilt")  # ignored: not part of any checkpoint

    diff = checkpoints.diff()
    assert "+rewritten by the agent" in diff
    assert "-user edit" in diff
    assert "new file mode" in diff and "+print('new')" in diff
    assert "deleted file mode" in diff and "-I will be deleted" in diff
    assert "build/out.bin" not in diff

    report = checkpoints.undo()
    assert sorted(report.restored) == ["doomed.txt", "notes.txt", "tracked.txt"]
    assert sorted(report.deleted) == ["new.py", "pkg/sub/mod.py"]
    assert report.label == "before turn 1"
    for name, content in before_files.items():
        assert (repo / name).read_bytes() == content, name
    assert not (repo / "new.py").exists()
    assert not (repo / "pkg").exists()
    assert (repo / "build" / "out.bin").read_bytes() == b"rebuilt"
    assert user_git_state(repo) == before_state
    assert checkpoints.count() == 0
    assert checkpoints.diff() == ""  # back where the session started

    # The checkpoints live on private refs only.
    private = git(repo, "for-each-ref", "--format=%(refname)", "refs/kimicode-base", "refs/kimicode")
    assert private.split() == ["refs/kimicode-base/20261129-000000-abcdef"]


def test_undo_skips_turns_that_changed_nothing(repo: Path) -> None:
    checkpoints = Checkpoints(repo, "s2")
    checkpoints.begin_turn("turn 1")
    (repo / "tracked.txt").write_text("turn 1 edit\n")
    checkpoints.begin_turn("turn 2")  # turn 2 only reads
    report = checkpoints.undo()
    assert report.restored == ["tracked.txt"] and report.label == "turn 1"
    assert (repo / "tracked.txt").read_text() == "one\ntwo\nuser edit\n"
    assert checkpoints.undo().nothing_to_undo


def test_two_turns_undo_one_at_a_time(repo: Path) -> None:
    checkpoints = Checkpoints(repo, "s3")
    checkpoints.begin_turn("turn 1")
    (repo / "a.txt").write_text("from turn 1\n")
    checkpoints.begin_turn("turn 2")
    (repo / "a.txt").write_text("from turn 2\n")
    assert checkpoints.undo().restored == ["a.txt"]
    assert (repo / "a.txt").read_text() == "from turn 1\n"
    assert checkpoints.undo().deleted == ["a.txt"]
    assert not (repo / "a.txt").exists()


def test_workspace_in_a_subfolder_only_touches_that_subfolder(repo: Path) -> None:
    workspace = repo / "app"
    workspace.mkdir()
    (workspace / "main.py").write_text("v1\n")
    provider = make_undo_provider(workspace, repo / "home-unused", "s4")
    assert isinstance(provider, Checkpoints)
    provider.begin_turn()
    (workspace / "main.py").write_text("v2\n")
    (repo / "tracked.txt").write_text("edited outside the workspace\n")
    report = provider.undo()
    assert report.restored == ["main.py"]
    assert (workspace / "main.py").read_text() == "v1\n"
    assert (repo / "tracked.txt").read_text() == "edited outside the workspace\n"


def test_file_backups_outside_git(tmp_path: Path) -> None:
    workspace, home = tmp_path / "plain", tmp_path / "home"
    workspace.mkdir()
    (workspace / "app.py").write_text("print('v1')\n")
    (workspace / "gone.txt").write_text("keep me\n")
    provider = make_undo_provider(workspace, home, "s5")
    assert isinstance(provider, FileBackups)

    provider.begin_turn("turn 1")
    provider.before_write(workspace / "app.py")
    (workspace / "app.py").write_text("print('v2')\n")
    provider.before_write(workspace / "app.py")  # a second write in the same turn keeps the first copy
    (workspace / "app.py").write_text("print('v3')\n")
    provider.before_write(workspace / "lib" / "new.py")
    (workspace / "lib").mkdir()
    (workspace / "lib" / "new.py").write_text("x = 1\n")
    provider.before_write(workspace / "gone.txt")
    (workspace / "gone.txt").unlink()

    diff = provider.diff()
    assert "-print('v1')" in diff and "+print('v3')" in diff
    assert "+++ b/lib/new.py" in diff and "+x = 1" in diff
    assert "-keep me" in diff

    provider.begin_turn("turn 2")  # a turn without writes is not an undo step

    # A new process resuming the session sees the same backups.
    resumed = FileBackups(home, "s5", workspace=workspace)
    report = resumed.undo()
    assert sorted(report.restored) == ["app.py", "gone.txt"]
    assert report.deleted == ["lib/new.py"]
    assert (workspace / "app.py").read_text() == "print('v1')\n"
    assert (workspace / "gone.txt").read_text() == "keep me\n"
    assert not (workspace / "lib").exists()
    assert resumed.undo().nothing_to_undo
    assert resumed.diff() == ""


def test_an_inherited_index_file_is_neither_read_nor_written(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # kimicode started from a git hook (or by a user who exported GIT_INDEX_FILE) must still snapshot the
    # work tree against the repository's own index and leave the other index file alone.
    foreign = tmp_path / "foreign-index"
    foreign.write_bytes(b"not an index")
    before = user_git_state(repo)
    monkeypatch.setenv("GIT_INDEX_FILE", str(foreign))
    checkpoints = Checkpoints(repo, "inherited")
    checkpoints.snapshot("before turn")
    (repo / "tracked.txt").write_text("changed by the turn\n")
    (repo / "fresh.txt").write_text("new\n")
    report = checkpoints.undo()
    assert sorted(report.restored) == ["tracked.txt"] and report.deleted == ["fresh.txt"]
    assert (repo / "tracked.txt").read_text() == "one\ntwo\nuser edit\n"
    assert foreign.read_bytes() == b"not an index"
    monkeypatch.delenv("GIT_INDEX_FILE")
    assert user_git_state(repo) == before


def test_the_repl_provider_decides_on_first_use(repo: Path, tmp_path: Path) -> None:
    from kimicode.vcs.checkpoints import DeferredUndo

    provider = DeferredUndo(repo, tmp_path / "home", "deferred")
    provider.begin_turn("first turn")
    (repo / "tracked.txt").write_text("changed\n")
    assert provider.undo().restored == ["tracked.txt"]
    assert isinstance(provider.resolve(), Checkpoints)
