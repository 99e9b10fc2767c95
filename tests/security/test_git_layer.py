"""The hardened git layer on its own: each config key that can run a program, planted in a repository, then
kimicode's checkpoint, /diff, /undo and submit's change set run; no planted program may run.

(The attacks through the CLI are in test_git_attacks.py; there the change detection also stops kimicode's
git, so these tests check the layer without it.)
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from pathlib import Path

import pytest

from kimicode.tools.submit import git_change_set
from kimicode.vcs.checkpoints import CheckpointError, Checkpoints
from kimicode.vcs.githarden import EXECUTING_KEYS
from kimicode.vcs.layout import REFUSED_HEADLINE


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    _git(root, "init", "-q", "-b", "main")
    (root / "a.txt").write_text("one\n")
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "init")
    return root


def _hook_dir(repo: Path, marker: Path) -> Path:
    hooks = repo / "planted-hooks"
    hooks.mkdir()
    for name in ("reference-transaction", "post-checkout", "pre-auto-gc", "post-index-change"):
        (hooks / name).write_text(f"#!/bin/sh\ntouch {marker}\n")
        (hooks / name).chmod(0o755)
    return hooks


def _plant(repo: Path, marker: Path, kind: str) -> None:
    run = f"touch {marker}; cat"
    config: dict[str, str] = {}
    if kind == "fsmonitor":
        config = {"core.fsmonitor": f"touch {marker}; false"}
    elif kind == "hooks":
        config = {"core.hooksPath": str(_hook_dir(repo, marker))}
    elif kind == "filters":
        (repo / ".gitattributes").write_text("* filter=x diff=x merge=x\n")
        config = {"filter.x.clean": run, "filter.x.smudge": run, "filter.x.process": f"touch {marker}",
                  "filter.x.required": "true"}
    elif kind == "diff-drivers":
        (repo / ".gitattributes").write_text("* diff=x\n")
        config = {"diff.x.textconv": run, "diff.x.command": f"touch {marker}", "diff.external": f"touch {marker}"}
    elif kind == "signatures":
        gpg = repo / "planted-gpg"
        gpg.write_text(f"#!/bin/sh\ntouch {marker}\nexit 1\n")
        gpg.chmod(0o755)
        config = {"log.showSignature": "true", "commit.gpgSign": "true", "gpg.program": str(gpg)}
    elif kind == "include":
        (repo / "more.cfg").write_text(f'[core]\n\tfsmonitor = "touch {marker}; false"\n')
        config = {"include.path": str(repo / "more.cfg")}
    elif kind == "pager":
        config = {"core.pager": f"touch {marker}; cat", "pager.diff": f"touch {marker}; cat",
                  "pager.status": f"touch {marker}; cat"}
    for key, value in config.items():
        _git(repo, "config", key, value)


KINDS = ["fsmonitor", "hooks", "filters", "diff-drivers", "signatures", "include", "pager"]


@pytest.mark.parametrize("kind", KINDS)
def test_checkpoint_diff_undo_and_change_set_run_no_planted_program(repo: Path, tmp_path: Path, kind: str) -> None:
    marker = tmp_path / "MARKER"
    _plant(repo, marker, kind)
    checkpoints = Checkpoints(repo, "20261206-000000-aaaaaa")
    checkpoints.snapshot("before")
    (repo / "a.txt").write_text("two\n")
    (repo / "new.txt").write_text("new\n")
    assert "+two" in checkpoints.diff()
    assert asyncio.run(git_change_set(repo)) is not None
    report = checkpoints.undo()
    assert "a.txt" in report.restored and (repo / "a.txt").read_text() == "one\n"
    assert not marker.exists(), f"a planted {kind} ran"
    # The control: the user's own git runs it (the plant is live).
    (repo / "a.txt").write_text("three\n")
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "x"], cwd=repo,
                   capture_output=True)
    subprocess.run(["git", "log", "-p", "-1"], cwd=repo, capture_output=True)
    assert marker.exists() or kind == "pager", f"the planted {kind} is not live: this test proves nothing"


def test_a_nested_repository_with_its_own_filter_is_not_entered(repo: Path, tmp_path: Path) -> None:
    marker = tmp_path / "MARKER"
    sub = repo / "sub"
    sub.mkdir()
    _git(sub, "init", "-q")
    (sub / "f").write_text("a\n")
    (sub / ".gitattributes").write_text("f filter=ev\n")
    _git(sub, "add", "-A")
    _git(sub, "commit", "-qm", "s")
    _git(sub, "config", "filter.ev.clean", f"touch {marker}; cat")
    _git(repo, "add", "sub")
    checkpoints = Checkpoints(repo, "20261206-000000-bbbbbb")
    (sub / "f").touch()
    checkpoints.snapshot("before")
    (sub / "f").touch()
    assert asyncio.run(git_change_set(repo)) is not None
    checkpoints.snapshot("again")
    assert not marker.exists()
    subprocess.run(["git", "status"], cwd=repo, capture_output=True)
    assert marker.exists(), "the nested repository's filter is not live: this test proves nothing"


def test_commondir_outside_the_git_directory_is_refused_with_one_line(repo: Path, tmp_path: Path) -> None:
    checkpoints = Checkpoints(repo, "20261206-000000-cccccc")
    (repo / ".git" / "commondir").write_text("../evil\n")
    with pytest.raises(CheckpointError) as caught:
        checkpoints.snapshot("before")
    message = str(caught.value)
    assert message.startswith(REFUSED_HEADLINE) and "commondir" in message and "\n" not in message


def test_a_gitdir_pointer_outside_the_work_tree_is_refused(repo: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.git"
    (repo / ".git").rename(elsewhere)
    (repo / ".git").write_text(f"gitdir: {elsewhere}\n")
    listed = asyncio.run(git_change_set(repo))
    assert listed is not None and REFUSED_HEADLINE in listed and "outside the work tree" in listed
    with pytest.raises(CheckpointError, match=REFUSED_HEADLINE):
        Checkpoints(repo, "20261206-000000-dddddd", repo=None)


def test_a_linked_worktree_is_a_repository_kimicode_works_in(repo: Path, tmp_path: Path) -> None:
    _git(repo, "worktree", "add", "-q", "--detach", str(tmp_path / "wt"))
    checkpoints = Checkpoints(tmp_path / "wt", "20261206-000000-eeeeee")
    checkpoints.snapshot("x")
    (tmp_path / "wt" / "a.txt").write_text("changed\n")
    assert "+changed" in checkpoints.diff()


def test_every_forced_key_is_on_the_command_line() -> None:
    from kimicode.vcs.githarden import global_options

    options = global_options(transport=False)
    for key, value, why in EXECUTING_KEYS:
        assert why
        if value is not None:
            assert f"{key}={value}" in options


def test_a_driver_added_to_an_included_file_after_a_listing_is_emptied_too(repo: Path, tmp_path: Path) -> None:
    marker = tmp_path / "MARKER"
    included = repo / "more.cfg"
    included.write_text("# nothing yet\n")
    _git(repo, "config", "include.path", str(included))
    (repo / ".gitattributes").write_text("* filter=late\n")
    old = time.time() - 3600
    for path in (included, repo / ".git" / "config", repo / ".git" / "HEAD"):
        os.utime(path, (old, old))  # old enough for the listing to be kept
    checkpoints = Checkpoints(repo, "20261206-000000-ffffff")
    checkpoints.snapshot("listed and kept")
    included.write_text(f'[filter "late"]\n\tclean = "touch {marker}; cat"\n')
    os.utime(included, (old, old + 1))  # old again: only its changed stat tells
    (repo / "a.txt").write_text("changed\n")
    checkpoints.snapshot("after")
    assert not marker.exists()
    subprocess.run(["git", "add", "a.txt"], cwd=repo, capture_output=True)
    assert marker.exists(), "the late filter is not live: this test proves nothing"


def test_a_planted_core_worktree_moves_nothing(repo: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "a.txt").write_text("the user's other file\n")
    checkpoints = Checkpoints(repo, "20261206-000000-gggggg")
    checkpoints.snapshot("before")
    _git(repo, "config", "core.worktree", str(elsewhere))
    (repo / "a.txt").write_text("two\n")
    report = checkpoints.undo()
    assert report.restored == ["a.txt"] and (repo / "a.txt").read_text() == "one\n"
    assert (elsewhere / "a.txt").read_text() == "the user's other file\n"


def test_a_swarm_merge_runs_no_planted_merge_driver(repo: Path, tmp_path: Path) -> None:
    from kimicode.vcs.worktrees import WaveWorktrees

    marker = tmp_path / "MARKER"
    (repo / "a.txt").write_text("1\n2\n3\n4\n5\n6\n")
    (repo / ".gitattributes").write_text("* merge=x\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "lines")
    _git(repo, "config", "merge.x.driver", f"touch {marker}; false")
    wave = WaveWorktrees.open(repo, "w1")
    assert wave is not None
    theirs = wave.add("sub")
    (theirs / "a.txt").write_text("1\n2\n3\n4\n5\nsix\n")
    (repo / "a.txt").write_text("one\n2\n3\n4\n5\n6\n")  # both sides change the file: a content merge
    report = wave.merge("sub")
    assert not marker.exists(), "the swarm's merge ran the repository's merge driver"
    assert report.conflicts == ["a.txt"] or (repo / "a.txt").read_text() == "one\n2\n3\n4\n5\nsix\n"


def test_a_planted_partial_clone_fetches_nothing(repo: Path, tmp_path: Path) -> None:
    """A missing object and a promisor remote: git would fetch it, running the remote's upload-pack."""
    marker = tmp_path / "MARKER"
    blob = _git(repo, "rev-parse", "HEAD:a.txt").strip()
    (repo / ".git" / "objects" / blob[:2] / blob[2:]).unlink()
    for key, value in {"core.repositoryformatversion": "1", "extensions.partialClone": "origin",
                       "remote.origin.url": str(tmp_path), "remote.origin.promisor": "true",
                       "remote.origin.uploadpack": f"touch {marker}; false"}.items():
        _git(repo, "config", key, value)
    (repo / "a.txt").write_text("two\n")
    assert asyncio.run(git_change_set(repo)) is not None
    assert not marker.exists(), "submit's change set fetched through the planted remote"
    subprocess.run(["git", "diff", "--stat", "HEAD"], cwd=repo, capture_output=True)
    assert marker.exists(), "the planted remote is not live: this test proves nothing"
