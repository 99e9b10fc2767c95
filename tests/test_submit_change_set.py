"""What `submit` lists as the change set, compared with what the user's own git prints for the same tree."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from kimicode.tools.submit import git_change_set


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


def _listed(where: Path) -> str | None:
    return asyncio.run(git_change_set(where))


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    _git(root, "init", "-q", "-b", "main")
    (root / "a.txt").write_text("one\ntwo\n")
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "init")
    return root


def test_changes_are_git_status_then_diff_stat(repo: Path) -> None:
    (repo / "a.txt").write_text("one\nthree\nfour\n")
    (repo / "new file.txt").write_text("x\n")
    (repo / "sub").mkdir()
    listed = _listed(repo / "sub")
    status = _git(repo, "status", "--porcelain").rstrip()
    stat = _git(repo, "diff", "--stat", "HEAD").rstrip()
    assert listed == f"Changes (git status --porcelain):\n{status}\n\ngit diff --stat HEAD:\n{stat}"
    assert "a.txt" in status and "new file.txt" in status and "a.txt" in stat


def test_a_clean_tree_says_so(repo: Path) -> None:
    assert _listed(repo) == "Changes: none (the git work tree is clean)."


def test_a_repository_without_commits_lists_the_status_alone(tmp_path: Path) -> None:
    _git(tmp_path, "init", "-q")
    (tmp_path / "b.txt").write_text("b\n")
    assert _listed(tmp_path) == "Changes (git status --porcelain):\n?? b.txt"


def test_no_repository_and_an_empty_git_folder_list_nothing(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    assert _listed(plain) is None
    (plain / ".git").mkdir()  # what the sandbox leaves as a mount point: no repository, as for git
    assert _listed(plain) is None


def test_from_inside_the_git_directory_the_work_tree_is_listed(repo: Path) -> None:
    (repo / "a.txt").write_text("changed\n")
    inside = repo / ".git" / "info"
    inside.mkdir(exist_ok=True)
    assert _listed(inside) == _listed(repo)
    assert _listed(repo) != "Changes: none (the git work tree is clean)."


def test_new_files_alone_are_the_status_alone(repo: Path) -> None:
    (repo / "new.txt").write_text("x\n")
    assert _git(repo, "diff", "--stat", "HEAD") == ""
    assert _listed(repo) == "Changes (git status --porcelain):\n?? new.txt"
