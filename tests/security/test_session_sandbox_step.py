"""What a session sandbox's command reuses from the one before (sandbox_session.py): the encoded
environment, the sandbox itself. Against real bubblewrap: whatever is reused, a changed environment reaches
the next command, a NUL byte is still refused, and a killed command's sandbox serves no other.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

import kimicode.security.sandbox_session as session
from kimicode.security.childenv import command_env
from kimicode.security.sandbox import Sandbox, detect_sandbox
from kimicode.tools.base import ToolContext
from kimicode.tools.bash import BashTool
from tests.sandboxing import needs_bwrap
from tests.security.test_session_sandbox_ahead import new_sandbox


async def run(sandbox: Sandbox, cwd: Path, text: str, env: dict[str, str]) -> tuple[str, object] | None:
    started = await session.start_command(sandbox, ["bash", "-c", text], cwd, env)
    if started is None:
        return None
    command, fd = started
    out = b""
    while chunk := await asyncio.to_thread(os.read, fd, 65536):
        out += chunk
    os.close(fd)
    await command.ended
    command.finish()
    return out.decode(errors="replace"), command.instance


@needs_bwrap
def test_a_changed_environment_reaches_the_next_command_in_the_same_sandbox(tmp_path: Path) -> None:
    sandbox, workspace = new_sandbox(tmp_path)
    show = 'echo "${ONE-unset} ${TWO-unset}"'

    async def main() -> list[tuple[str, object] | None]:
        env = command_env() | {"ONE": "a"}
        assert await run(sandbox, workspace, "true", env) is None  # the first of its kind: its own bubblewrap
        results = [await run(sandbox, workspace, show, env)]
        results.append(await run(sandbox, workspace, show, env))  # the same environment again
        env["ONE"] = "b"  # the same dict, changed in place
        results.append(await run(sandbox, workspace, show, env))
        env["TWO"] = "c"  # a variable added
        results.append(await run(sandbox, workspace, show, env))
        results.append(await run(sandbox, workspace, show, {k: v for k, v in env.items() if k != "ONE"}))
        with pytest.raises(ValueError):  # a NUL byte after an environment that was encoded before
            await session.start_command(sandbox, ["true"], workspace, env | {"TWO": "c\0d"})
        results.append(await run(sandbox, workspace, show, env))
        return results

    results = asyncio.run(main())
    session.close_all()
    assert [r[0] if r else None for r in results] == ["a unset\n", "a unset\n", "b unset\n", "b c\n", "unset c\n", "b c\n"]
    assert len({r[1] if r else None for r in results}) == 1  # all in the one session sandbox


@needs_bwrap
def test_a_command_killed_at_its_timeout_takes_its_sandbox_and_leaves_the_loop_nothing_to_watch(
    tmp_path: Path,
) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    sandbox = detect_sandbox("workspace-write", False, workspace, tmp_path / "home")
    ctx = ToolContext(workspace=workspace, sandbox=sandbox)

    def session_readers() -> int:
        """Descriptors the loop watches for a session sandbox's command (its reply)."""
        keys = asyncio.get_running_loop()._selector.get_map().values()  # type: ignore[attr-defined]
        handles = [key.data[0] for key in keys if key.data[0] is not None]
        return sum(isinstance(getattr(h._callback, "__self__", None), session.SandboxedCommand) for h in handles)

    async def main() -> tuple[str, str, int]:
        await BashTool().run({"command": "true"}, ctx)  # the first of its kind: a bubblewrap of its own
        await BashTool().run({"command": "true"}, ctx)  # in the session sandbox
        assert sandbox.sessions is not None
        served = sandbox.sessions.idle[-1]
        slow = (await BashTool().run({"command": "echo started; sleep 600", "timeout": 1}, ctx)).text
        watched = session_readers()
        assert served not in sandbox.sessions.idle and not served.alive
        after = (await BashTool().run({"command": "echo next"}, ctx)).text
        return slow, after, watched

    slow, after, watched = asyncio.run(main())
    session.close_all()
    assert slow.startswith("started\n") and "timed out after 1s" in slow, slow
    assert "next\n[exit code: 0]" in after and watched == 0


@needs_bwrap
def test_an_environment_larger_than_the_channel_buffer_reaches_the_command_whole(tmp_path: Path) -> None:
    sandbox, workspace = new_sandbox(tmp_path)
    big = {f"BIG{n}": chr(ord("a") + n) * 100_000 for n in range(6)}  # 600 KB: sent in more than one part

    async def main() -> list[tuple[str, object] | None]:
        env = command_env() | big
        assert await run(sandbox, workspace, "true", env) is None  # the first of its kind: its own bubblewrap
        show = 'for n in 0 1 2 3 4 5; do v=BIG$n; w=${!v}; printf "%s:%s " "${#w}" "${w: -1}"; done'
        return [await run(sandbox, workspace, show, env), await run(sandbox, workspace, "echo ok", env)]

    first, second = asyncio.run(main())
    session.close_all()
    assert first is not None and first[0] == "100000:a 100000:b 100000:c 100000:d 100000:e 100000:f ", first
    assert second is not None and second[0] == "ok\n" and second[1] is first[1]



@needs_bwrap
def test_the_first_command_is_described_once_and_a_description_handed_over_is_never_used_later(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox, workspace = new_sandbox(tmp_path)
    ctx = ToolContext(workspace=workspace, sandbox=sandbox)
    specs: list[object] = []
    bwrap_spec = Sandbox.bwrap_spec
    monkeypatch.setattr(Sandbox, "bwrap_spec", lambda self, *a: specs.append(a) or bwrap_spec(self, *a))
    # (the description worked out once the start ahead is ready would be counted too, whenever it comes)
    monkeypatch.setattr(session, "_describe_ahead", lambda *a: None)
    secret = workspace / ".env"

    async def main() -> tuple[str, list[str], list[str]]:
        first = (await BashTool().run({"command": "echo first"}, ctx)).text  # a bubblewrap of its own
        described = len(specs)
        other = tmp_path / "other"
        other.mkdir()
        assert await session.start_command(sandbox, ["true"], other, command_env()) is None  # first of its kind
        handed = sandbox.wrap(["true"], other)  # in the same turn: what start_command worked out
        assert await session.start_command(sandbox, ["true"], workspace / "sub", command_env()) is None
        await asyncio.sleep(0)  # a turn of the loop later, the host has changed:
        secret.write_text("KEY=1\n")
        later = sandbox.wrap(["true"], workspace / "sub")
        assert described == 1, specs  # the first command: its description worked out once
        return first, handed, later

    first, handed, later = asyncio.run(main())
    session.close_all()
    assert first.startswith("first\n") and "[exit code: 0]" in first, first
    assert str(tmp_path / "other") in handed
    assert str(secret) in later  # hidden: described afresh, not the description from before it existed
