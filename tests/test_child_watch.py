"""Commands' exits are learned without a thread per command (tools/child_watch.py), and still reported
right: exit codes, deaths by signal, timeouts; where no pidfd can be had, a thread waits as before."""

from __future__ import annotations

import asyncio
import errno
import os
import sys
import threading
from pathlib import Path

import pytest

from kimicode.tools.base import ToolContext
from kimicode.tools.bash import BashTool
from kimicode.tools.child_watch import watch_children

pytestmark = pytest.mark.skipif(sys.version_info >= (3, 12), reason="Python 3.12 watches pidfds itself")

WAITER_THREAD = "asyncio-waitpid"  # the name asyncio's ThreadedChildWatcher gives its threads


@pytest.fixture
def waiter_threads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the child-waiting threads started while the test runs."""
    started: list[str] = []
    start = threading.Thread.start

    def counted(thread: threading.Thread) -> None:
        if thread.name.startswith(WAITER_THREAD):
            started.append(thread.name)
        start(thread)

    monkeypatch.setattr(threading.Thread, "start", counted)
    return started


def commands(ctx: ToolContext, *texts: str, timeout: int = 120) -> list[str]:
    async def all_of_them() -> list[str]:
        return [(await BashTool().run({"command": t, "timeout": timeout}, ctx)).text for t in texts]

    return asyncio.run(all_of_them())


def test_commands_start_no_waiting_thread(tmp_path: Path, waiter_threads: list[str]) -> None:
    texts = commands(ToolContext(workspace=tmp_path), "echo one", "exit 3", "kill -TERM $$", "echo two >&2; exit 0")
    assert texts == ["one\n[exit code: 0]", "[exit code: 3]", "[exit code: 143 (killed by SIGTERM)]", "two\n[exit code: 0]"]
    assert waiter_threads == []


def test_a_killed_command_is_still_reaped(tmp_path: Path, waiter_threads: list[str]) -> None:
    (text,) = commands(ToolContext(workspace=tmp_path), "echo before; exec sleep 30", timeout=1)
    assert text.startswith("before\n") and "timed out after 1s" in text
    assert waiter_threads == []


def test_without_pidfds_a_thread_waits_as_before(
    tmp_path: Path, waiter_threads: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    watch_children()

    def refused(pid: int, flags: int = 0) -> int:
        raise OSError(errno.ENOSYS, "pidfd_open not available")

    monkeypatch.setattr(os, "pidfd_open", refused)
    texts = commands(ToolContext(workspace=tmp_path), "echo fallback; exit 7")
    assert texts == ["fallback\n[exit code: 7]"]
    assert waiter_threads != []
