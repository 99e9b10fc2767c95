"""A reused sandbox description (described.py) is always the one a fresh description would give.

Each change below is made after the description was reused (no fresh one computed), then the next
description must equal a fresh one, field by field and in the identity of every path it binds. No
bubblewrap runs here: the description is the same whether or not the sandbox then starts.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import kimicode.security.described as described
from kimicode.security.bwrap_argv import BwrapSpec
from kimicode.security.sandbox import Sandbox


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Sandbox, Path, list[int]]]:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=workspace, check=True)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    sandbox = Sandbox(mode="workspace-write", backend="bwrap", network=False, workspace=workspace,
                      home=tmp_path / "kimihome", program="bwrap")
    fresh_calls: list[int] = []
    real_spec_for = Sandbox.spec_for

    def counted(self: Sandbox, cwd: Path, *, allow_network: bool = False) -> BwrapSpec:
        fresh_calls.append(1)
        return real_spec_for(self, cwd, allow_network=allow_network)

    monkeypatch.setattr(Sandbox, "spec_for", counted)
    yield sandbox, workspace, fresh_calls


def reused_then_changed(world: tuple[Sandbox, Path, list[int]], change: Callable[[], object],
                        cwd: Path | None = None) -> None:
    sandbox, workspace, fresh_calls = world
    cwd = cwd or workspace
    for _ in range(3):
        described.describe(sandbox, cwd)
    count = len(fresh_calls)
    before = described.describe(sandbox, cwd)
    assert len(fresh_calls) == count, "the description was not reused: this test would show nothing"
    change()
    after = described.describe(sandbox, cwd)
    fresh = described._fresh(sandbox, cwd, False)
    assert after == fresh
    assert after != before  # each change here makes a difference to the sandbox


def same_times(folder: Path, change: Callable[[], object]) -> Callable[[], object]:
    """The change, with the folder's access and modification times put back to the nanosecond."""
    def run() -> None:
        info = os.stat(folder)
        change()
        os.utime(folder, ns=(info.st_atime_ns, info.st_mtime_ns))
    return run


def test_an_env_file_made_with_the_folder_times_put_back(world: tuple[Sandbox, Path, list[int]]) -> None:
    ws = world[1]
    reused_then_changed(world, same_times(ws, lambda: (ws / ".env").write_text("K=1\n")))


def test_an_env_file_renamed_into_place_and_one_that_is_a_link(world: tuple[Sandbox, Path, list[int]]) -> None:
    ws = world[1]
    (ws / "plain").write_text("K=1\n")
    reused_then_changed(world, lambda: os.rename(ws / "plain", ws / ".env.production"))
    (ws / "notes").mkdir()
    (ws / "notes" / "key").write_text("K=2\n")
    reused_then_changed(world, lambda: os.symlink("notes/key", ws / ".env.local"))


def test_secrets_of_the_user_and_of_kimicode_that_appear(world: tuple[Sandbox, Path, list[int]]) -> None:
    home = Path(os.environ["HOME"])
    reused_then_changed(world, lambda: (home / ".ssh").mkdir())
    reused_then_changed(world, lambda: (home / ".config" / "gcloud").mkdir(parents=True))
    kimihome = world[0].home

    def configure() -> None:
        kimihome.mkdir()
        (kimihome / "config.toml").write_text("api_key = 'k'\n")

    reused_then_changed(world, configure)


def test_git_replaced_by_a_link_and_a_git_file_pointed_elsewhere(world: tuple[Sandbox, Path, list[int]]) -> None:
    ws = world[1]

    def to_link() -> None:
        os.rename(ws / ".git", ws / "real-git")
        os.symlink("real-git", ws / ".git")

    reused_then_changed(world, same_times(ws, to_link))

    def to_file() -> None:
        os.unlink(ws / ".git")
        (ws / ".git").write_text("gitdir: real-git\n")

    reused_then_changed(world, to_file)
    shutil.copytree(ws / "real-git", ws / "other-git")
    reused_then_changed(world, lambda: (ws / ".git").write_text("gitdir: other-git\n"))  # in place
    (ws / "common").mkdir()
    reused_then_changed(world, lambda: (ws / "other-git" / "commondir").write_text("../common\n"))


def test_links_on_the_way_to_the_workspace_repointed(world: tuple[Sandbox, Path, list[int]], tmp_path: Path) -> None:
    sandbox = world[0]
    for name in ("one", "two"):
        (tmp_path / "m" / name / "ws").mkdir(parents=True)
    os.symlink("one", tmp_path / "m" / "n")
    os.symlink(tmp_path / "m" / "n", tmp_path / "via")  # via -> m/n -> m/one: a link in the middle of a link
    sandbox.workspace = tmp_path / "via" / "ws"

    def repoint() -> None:
        os.unlink(tmp_path / "m" / "n")
        os.symlink("two", tmp_path / "m" / "n")

    reused_then_changed(world, repoint, cwd=sandbox.workspace)


def test_a_forked_child_does_not_take_the_reports_its_parent_needs(world: tuple[Sandbox, Path, list[int]]) -> None:
    ws = world[1]

    def change_then_fork() -> None:
        (ws / ".env").write_text("K=1\n")  # reported to the queue the child would share
        pid = os.fork()
        if pid == 0:  # the child describes too (a batch worker forked from a warm process)
            described.describe(world[0], ws)
            os._exit(0)
        assert os.waitpid(pid, 0)[1] == 0

    reused_then_changed(world, change_then_fork)


def test_what_lies_on_a_file_system_that_may_change_unreported_is_described_afresh_each_time(
    world: tuple[Sandbox, Path, list[int]],
) -> None:
    sandbox, workspace, fresh_calls = world
    # /proc stands in for NFS, SMB or FUSE: a file system not known to report every change here.
    sandbox.sockets = (Path("/proc/self/status"),)
    for _ in range(5):
        described.describe(sandbox, workspace)
    assert len(fresh_calls) == 5


def test_a_folder_of_path_in_tmp_that_appears_or_goes_away(world: tuple[Sandbox, Path, list[int]], tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    # Folders of PATH in /tmp are kept visible in the sandbox's private /tmp where they exist.
    monkeypatch.setenv("PATH", f"{tmp_path / 'tools' / 'bin'}:{os.environ['PATH']}")
    reused_then_changed(world, lambda: (tmp_path / "tools" / "bin").mkdir(parents=True))
    reused_then_changed(world, lambda: os.rename(tmp_path / "tools", tmp_path / "tools-old"))


def test_a_folder_replaced_by_a_new_one_then_filled_is_watched_where_it_now_is(
    world: tuple[Sandbox, Path, list[int]],
) -> None:
    sandbox, workspace, fresh_calls = world
    home = Path(os.environ["HOME"])
    (home / ".config").mkdir()
    for _ in range(3):
        described.describe(sandbox, workspace)
    os.rename(home / ".config", home / ".config-old")  # the folder watched moves away; a new one takes its name
    (home / ".config").mkdir()
    for _ in range(3):
        described.describe(sandbox, workspace)
    count = len(fresh_calls)
    described.describe(sandbox, workspace)
    assert len(fresh_calls) == count, "the description was not reused: this test would show nothing"
    (home / ".config" / "gcloud").mkdir()  # a secret folder, in the new one
    after = described.describe(sandbox, workspace)
    assert after == described._fresh(sandbox, workspace, False)
    assert home / ".config" / "gcloud" in after[0].hidden_dirs


def test_the_second_description_of_a_kind_is_computed_under_watch_and_reused_by_the_third(
    world: tuple[Sandbox, Path, list[int]],
) -> None:
    """The second command of a kind watches what the first one's description depended on before it works
    it out again, so the third reuses it; a change made after that second one is still seen."""
    sandbox, workspace, fresh_calls = world
    home = Path(os.environ["HOME"])
    first = described.describe(sandbox, workspace)
    (workspace / ".env").write_text("K=1\n")  # before the second: not yet watched, and seen by it
    second = described.describe(sandbox, workspace)
    assert second == described._fresh(sandbox, workspace, False) and second != first
    count = len(fresh_calls)
    assert described.describe(sandbox, workspace) == second
    assert len(fresh_calls) == count, "the third description was worked out again"
    (home / ".ssh").mkdir()  # after the second: reported, so the next one is worked out afresh
    after = described.describe(sandbox, workspace)
    assert after == described._fresh(sandbox, workspace, False) and after != second
