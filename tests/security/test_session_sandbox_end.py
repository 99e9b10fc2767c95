"""The end of a session's sandboxes (sandbox_session.kill_all, close_all), against real bubblewrap: every
idle one is sent SIGKILL at once, without waiting, and close_all then reaps them all, leaving no process
and no descriptor."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import kimicode.security.sandbox_session as session
from tests.sandboxing import needs_bwrap
from tests.security.test_session_sandbox_ahead import new_sandbox, open_fds, run


@needs_bwrap
def test_idle_sandboxes_are_all_killed_at_once_then_reaped_leaving_nothing(tmp_path: Path) -> None:
    sandbox, workspace = new_sandbox(tmp_path)
    before = open_fds()

    async def main() -> None:
        assert await run(sandbox, workspace, "true") is None  # the first: a bubblewrap of its own, one starts ahead
        await asyncio.gather(run(sandbox, workspace, "true"), run(sandbox, workspace, "true"))

    asyncio.run(main())
    pool = sandbox.sessions
    assert pool is not None and pool.idle
    idle = list(pool.idle)
    session.kill_all()
    for instance in idle:  # all sent SIGKILL, none waited for: each ends on its own, and none is reused
        assert instance.popen.wait(timeout=10) == -signal.SIGKILL
        assert not instance.alive
    assert all(instance.channel.fileno() != -1 for instance in idle)  # (closed by close_all)
    session.close_all()
    assert not pool.idle
    assert all(instance.channel.fileno() == -1 for instance in idle)
    assert open_fds() <= before  # (nothing new left open)
