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


def _join_close() -> None:
    for thread in threading.enumerate():
        if thread.name == "inotify-close":
            thread.join()


def test_the_queue_is_handed_to_a_child_that_holds_the_last_reference_and_is_reaped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Closing the last reference waits for the kernel (and so does the exit of a process holding one): a
    short-lived child gets a copy on its standard input, and is reaped once it has ended."""
    seen = tmp_path / "stdin"
    holder = tmp_path / "holder"
    holder.write_text(f"#!/bin/sh\nreadlink /proc/self/fd/0 > {seen}\n")
    holder.chmod(0o755)
    monkeypatch.setattr(hostwatch, "HOLDERS", ("/nonexistent/true", str(holder)))
    old = hostwatch.watcher()
    _watched(old, tmp_path)
    fd = old.fd
    before = _children()
    hostwatch.let_go()
    _join_close()
    assert seen.read_text().strip() == "anon_inode:inotify"
    try:
        still_open = os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:inotify"
    except OSError:
        still_open = False
    assert not still_open
    assert _children() <= before  # the child reaped, not left a zombie


def _children() -> set[str]:
    """This thread's children, zombies included (the child is started from it)."""
    return set(Path(f"/proc/self/task/{threading.get_native_id()}/children").read_text().split())


def test_without_a_program_to_hold_it_the_queue_is_closed_all_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hostwatch, "HOLDERS", ("/nonexistent/true",))
    old = hostwatch.watcher()
    _watched(old, tmp_path)
    fd = old.fd
    hostwatch.let_go()
    _join_close()
    try:
        still_open = os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:inotify"
    except OSError:
        still_open = False
    assert not still_open
    assert hostwatch.watcher().usable
