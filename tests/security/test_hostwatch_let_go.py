"""The inotify queue let go of at the end of a session (hostwatch.let_go): nothing watched counts as unchanged
any more, the queue is closed (in a thread of its own), and a later use gets a watcher that works."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from kimicode.security import hostwatch

pytestmark = pytest.mark.skipif(not hostwatch.watcher().usable, reason="inotify is Linux's")


def _watched(watcher: hostwatch.Watcher, folder: Path) -> hostwatch.Watched:
    watched = hostwatch.Watched()
    watched.deps = {str(folder): {"a"}}
    watcher.sets.add(watched)
    assert watcher.watch([str(folder)])
    watched.fresh = True
    return watched


def test_after_let_go_nothing_is_reused_the_queue_is_closed_and_a_new_watcher_works(tmp_path: Path) -> None:
    old = hostwatch.watcher()
    watched = _watched(old, tmp_path)
    fd = old.fd
    hostwatch.let_go()
    assert not watched.fresh  # whatever it vouched for is worked out afresh
    for thread in threading.enumerate():
        if thread.name == "inotify-close":
            thread.join()
    try:  # (the number may be another file's by now)
        still_open = os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:inotify"
    except OSError:
        still_open = False
    assert not still_open
    new = hostwatch.watcher()
    assert new is not old and new.usable
    again = _watched(new, tmp_path)
    (tmp_path / "a").write_text("")  # reported by the new queue
    new.drain()
    assert not again.fresh
