"""A file write's fsync runs off the event loop: while one agent's write waits on the disk, the other agents
of the process (a swarm's sub-agents share one loop) keep going."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

import pytest

from kimicode.tools.base import ToolContext
from kimicode.tools.filewrite import save_text


def test_the_loop_runs_while_a_write_waits_on_the_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    released = threading.Event()
    real_fsync = os.fsync

    def slow_disk(fd: int) -> None:
        # Returns only once a coroutine on the loop has run: on the loop's own thread this would never return.
        if not released.wait(timeout=30):
            raise OSError("the loop did not run while the file was being synced")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", slow_disk)

    async def scenario() -> None:
        write = asyncio.ensure_future(save_text(ToolContext(workspace=tmp_path), tmp_path / "a.txt", "hello\n"))
        await asyncio.sleep(0)  # the write has started
        released.set()  # another agent's step, on the same loop
        await write

    asyncio.run(scenario())
    assert (tmp_path / "a.txt").read_text() == "hello\n"
