"""A folder's own permissions and its watch (hostwatch.py): reported where they decide what the watching
process's lookups find and that process (or a command it runs) may change them.

A folder's watch asks for its names only; for its own changes in place only where they matter: not for
root (its capabilities let it look up through any folder whatever the permissions), but for a user's
folder watched by that user, and for every folder where root runs without those capabilities. Each case
runs in a process of its own, as root or as uid 1000 (``setpriv``), through the real inotify queue.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kimicode.security import hostwatch
from tests.security.test_sandbox_escape import USER_UID, as_user, base  # noqa: F401 - base: a fixture

pytestmark = [
    pytest.mark.skipif(not hostwatch.watcher().usable, reason="inotify is Linux's"),
    pytest.mark.skipif(os.geteuid() != 0, reason="switches users: runs as root (CI, containers)"),
]

REPO = Path(__file__).resolve().parents[2]
# Watches a folder for the name "x" in it, has the folder's mode changed (by itself or by root, after it
# says "watching"), and says whether the watch still vouches for the folder.
SCRIPT = """
import os, sys
from kimicode.security import hostwatch as W
folder = sys.argv[1]
watcher = W.watcher()
watched = W.Watched()
watched.deps = {folder: {"x"}}
watcher.sets.add(watched)
assert watcher.watch([folder])
watched.fresh = True
if sys.argv[2] == "self":
    os.chmod(folder, 0o700)
else:
    print("watching", flush=True)
    sys.stdin.readline()
watcher.drain()
print("fresh" if watched.fresh else "changed")
"""


def watch_and_chmod(prefix: list[str], folder: Path, by: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([*prefix, sys.executable, "-c", SCRIPT, str(folder), by], env=env, cwd="/",
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdin is not None and proc.stdout is not None
    if by == "root":
        assert proc.stdout.readline() == "watching\n", proc.stderr.read() if proc.stderr else ""
        folder.chmod(0o711)
        proc.stdin.write("\n")
        proc.stdin.flush()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    return out.strip()


def test_a_users_own_folder_changed_by_that_user_is_reported(base: Path) -> None:  # noqa: F811
    folder = base / "mine"
    folder.mkdir()
    os.chown(folder, USER_UID, USER_UID)
    assert watch_and_chmod(as_user("user"), folder, "self") == "changed"


def test_for_root_without_the_capabilities_that_pass_any_permission_its_folders_changes_are_reported(
    base: Path,  # noqa: F811
) -> None:
    folder = base / "roots"
    folder.mkdir()
    drop = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-dac_override,-dac_read_search"]
    assert watch_and_chmod(drop, folder, "self") == "changed"


def test_for_root_a_folders_own_mode_is_not_asked_for(base: Path) -> None:  # noqa: F811
    """(Root looks up through a folder whatever its permissions: the watch asks for its names only, which
    spares the kernel marking every entry of a large folder.)"""
    folder = base / "plain"
    folder.mkdir()
    assert watch_and_chmod([], folder, "self") == "fresh"


def test_a_folder_the_user_does_not_own_changed_by_its_owner_is_not_asked_for(base: Path) -> None:  # noqa: F811
    """(Neither the user nor a command of theirs can change its permissions.)"""
    folder = base / "roots"
    folder.mkdir()
    assert watch_and_chmod(as_user("user"), folder, "root") == "fresh"
