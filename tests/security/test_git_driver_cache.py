"""The cached list of a repository's filter/diff/merge drivers: kept for a repository whose config files were
just written (a new batch checkout or worktree), yet a rewrite git could see is never hidden behind it, not
even one that leaves every stat field as it was.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from kimicode.vcs import gitdrivers
from kimicode.vcs.checkpoints import Checkpoints
from kimicode.vcs.githarden import DRIVER_QUERY


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
    gitdrivers._cache.clear()
    return root


class _Listing:
    """git's own listing of the repository's drivers, counted."""

    def __init__(self, repo: Path) -> None:
        self.repo, self.calls = repo, 0

    def __call__(self) -> str:
        self.calls += 1
        done = subprocess.run(["git", "config", "-z", "--get-regexp", DRIVER_QUERY], cwd=self.repo,
                              capture_output=True, text=True)
        return done.stdout


def _overrides(repo: Path, listing: _Listing) -> dict[str, str]:
    git_dir = repo / ".git"
    return gitdrivers.driver_overrides(git_dir, git_dir, {}, listing)


def test_a_just_written_config_is_listed_once_not_on_every_git_call(repo: Path) -> None:
    listing = _Listing(repo)
    first = _overrides(repo, listing)
    again = _overrides(repo, listing)
    assert listing.calls == 1, "a config written a moment ago was listed again for the second git call"
    assert first == again


def test_a_rewrite_keeping_size_and_times_is_noticed(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    included = repo / "more.cfg"
    later = f'[filter "late"]\n\tclean = "touch {tmp_path / "MARKER"}; cat"\n'
    included.write_text("#" * (len(later) - 1) + "\n")
    _git(repo, "config", "include.path", str(included))
    real_stat = os.stat

    def same_stat_for_the_include(path: os.PathLike[str] | str) -> os.stat_result:
        st = real_stat(path)
        if Path(path) != included:
            return st
        # What a rewrite within the file system's timestamp granularity looks like: nothing moved.
        return os.stat_result((st.st_mode, 1, st.st_dev, 1, 0, 0, st.st_size, 0, 0, 0))

    monkeypatch.setattr(gitdrivers, "_stat", same_stat_for_the_include)
    listing = _Listing(repo)
    assert _overrides(repo, listing)["GIT_CONFIG_COUNT"] == "0"
    included.write_text(later)
    after = _overrides(repo, listing)
    assert listing.calls == 2
    assert after["GIT_CONFIG_KEY_0"] == "filter.late.clean" and after["GIT_CONFIG_VALUE_0"] == ""


def test_a_driver_written_into_a_fresh_config_between_checkpoints_runs_nothing(repo: Path, tmp_path: Path) -> None:
    marker = tmp_path / "MARKER"
    (repo / ".gitattributes").write_text("* filter=late\n")
    checkpoints = Checkpoints(repo, "20261206-000000-aaaaaa")
    checkpoints.snapshot("listed and kept")
    _git(repo, "config", "filter.late.clean", f"touch {marker}; cat")
    (repo / "a.txt").write_text("changed\n")
    checkpoints.snapshot("after")
    assert not marker.exists(), "kimicode's git ran a filter written into the config a moment earlier"
    subprocess.run(["git", "add", "a.txt"], cwd=repo, capture_output=True)
    assert marker.exists(), "the late filter is not live: this test proves nothing"


def _worktrees(repo: Path, *names: str) -> list[tuple[Path, Path]]:
    """(work tree, git directory) of new linked worktrees of ``repo``, each on its own new branch."""
    made = []
    for name in names:
        path = repo.parent / name
        _git(repo, "worktree", "add", "-q", "-b", name, str(path))
        made.append((path, repo / ".git" / "worktrees" / name))
    return made


def test_worktrees_of_one_repository_share_one_listing(repo: Path) -> None:
    listing = _Listing(repo)
    common = repo / ".git"
    for _path, git_dir in _worktrees(repo, "w1", "w2", "w3"):
        assert gitdrivers.driver_overrides(git_dir, common, {}, listing) == {"GIT_CONFIG_COUNT": "0"}
    assert listing.calls == 1, "each new worktree of the same repository listed the same config again"


def test_a_driver_only_one_worktree_includes_is_emptied_in_that_worktree(repo: Path, tmp_path: Path) -> None:
    marker = tmp_path / "MARKER"
    (repo / ".gitattributes").write_text("* filter=late\n")
    _git(repo, "add", ".gitattributes")
    _git(repo, "commit", "-qm", "attributes")
    (first, _), (second, _) = _worktrees(repo, "w1", "w2")
    only_second = tmp_path / "second.cfg"
    only_second.write_text(f'[filter "late"]\n\tclean = "touch {marker}; cat"\n')
    _git(repo, "config", "includeIf.onbranch:w2.path", str(only_second))
    for path in (first, second):
        (path / "a.txt").write_text("changed\n")
        Checkpoints(path, "20261206-000000-bbbbbb").snapshot("after")
    assert not marker.exists(), "kimicode's git ran a filter that only the second worktree's config includes"
    subprocess.run(["git", "add", "a.txt"], cwd=second, capture_output=True)
    assert marker.exists(), "the included filter is not live there: this test proves nothing"


@pytest.mark.parametrize("source", ["include", "environment"])
def test_worktrees_list_apart_when_config_may_differ_between_them(
    repo: Path, tmp_path: Path, source: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    extra = tmp_path / "extra.cfg"
    extra.write_text("# nothing conditional, yet\n")
    if source == "include":
        _git(repo, "config", "include.path", str(extra))
    else:  # git reads GIT_CONFIG_COUNT/KEY/VALUE too, conditional includes included
        for name, value in (("GIT_CONFIG_COUNT", "1"), ("GIT_CONFIG_KEY_0", "includeIf.onbranch:w2.path"),
                            ("GIT_CONFIG_VALUE_0", str(extra))):
            monkeypatch.setenv(name, value)
    listing = _Listing(repo)
    for _path, git_dir in _worktrees(repo, "w1", "w2"):
        gitdrivers.driver_overrides(git_dir, repo / ".git", {}, listing)
    assert listing.calls == 2
