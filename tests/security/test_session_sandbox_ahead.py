"""The session sandbox started ahead, while the first command of a kind runs in a bubblewrap of its own, and
the supervisor's own start (sandbox_session.py, supervisor.py), against real bubblewrap.

A sandbox started ahead is the one the next command's own start would make (same key, same bubblewrap
arguments), serves no other kind of command, counts against MAX_LIVE while it starts, and leaves no
process and no descriptor behind when it fails, is cancelled or is never used.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

import kimicode.security.sandbox_launch as launch
import kimicode.security.sandbox_session as session
from kimicode.security.bwrap_argv import bwrap_argv
from kimicode.security.childenv import command_env
from kimicode.security.described import describe
from kimicode.security.sandbox import Sandbox, detect_sandbox
from kimicode.tools.base import ToolContext
from kimicode.tools.bash import BashTool
from tests.sandboxing import needs_bwrap
from tests.security.test_sandbox_escape import Box, as_user, base, box  # noqa: F401 - fixtures
from tests.security.test_session_sandbox import STEPS_DRIVER

SUPERVISOR = Path(launch.__file__).with_name("supervisor.py")


def new_sandbox(tmp_path: Path) -> tuple[Sandbox, Path]:
    workspace = tmp_path / "ws"
    (workspace / "sub").mkdir(parents=True)
    sandbox = detect_sandbox("workspace-write", False, workspace, tmp_path / "home")
    return sandbox, workspace


async def run(sandbox: Sandbox, cwd: Path, text: str) -> tuple[str, launch.Instance] | None:
    """``text`` in a session sandbox: (its output, the sandbox that ran it); None where it got none."""
    started = await session.start_command(sandbox, ["bash", "-c", text], cwd, command_env())
    if started is None:
        return None
    command, fd = started
    out = b""
    while chunk := await asyncio.to_thread(os.read, fd, 65536):
        out += chunk
    os.close(fd)
    await command.wait()
    command.finish()
    return out.decode(errors="replace"), command.instance


def open_fds() -> set[str]:
    """This process's sockets and pipes (what a start holds: its channel; not the sandbox's own
    placeholders, which the first description opens). Garbage is collected first: a socket an earlier test
    in this process left for the collector must not be counted now and found closed later."""
    gc.collect()
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            link = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if link.startswith(("socket:", "pipe:")):
            found.add(f"{fd} {link}")
    return found


class Launched(list[launch.Instance]):
    """Every sandbox launched (its bubblewrap running), in order; ``one`` is set at the first."""

    def __init__(self) -> None:
        super().__init__()
        self.one = asyncio.Event()


def noted_starts(monkeypatch: pytest.MonkeyPatch) -> Launched:
    launched = Launched()
    ready: Callable[[launch.Instance], Awaitable[launch.Instance | None]] = session.ready

    async def noted(instance: launch.Instance) -> launch.Instance | None:
        launched.append(instance)
        launched.one.set()
        return await ready(instance)

    monkeypatch.setattr(session, "ready", noted)
    return launched


@needs_bwrap
def test_the_sandbox_started_ahead_is_the_one_the_second_command_would_start_and_serves_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox, workspace = new_sandbox(tmp_path)
    launched = noted_starts(monkeypatch)

    async def main() -> None:
        assert await run(sandbox, workspace, "true") is None  # the first of its kind: a bubblewrap of its own
        pool = sandbox.sessions
        assert pool is not None and len(pool.ahead) == 1 and pool.starting == 1  # counted while it starts
        second = await run(sandbox, workspace, "echo two; readlink /proc/1/exe")
        assert second is not None and second[0].startswith("two\n"), second
        assert [second[1]] == launched  # served by the one started ahead, no other started
        key = describe(sandbox, workspace)
        assert second[1].key == key and pool.idle == [second[1]] and pool.starting == 0 and not pool.ahead
        argv = second[1].popen.args
        assert isinstance(argv, list) and argv[: len(bwrap_argv(key[0]))] == bwrap_argv(key[0])

    asyncio.run(main())
    session.close_all()
    assert launched[0].popen.returncode is not None


@needs_bwrap
def test_a_sandbox_started_ahead_never_serves_another_kind_of_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox, workspace = new_sandbox(tmp_path)
    launched = noted_starts(monkeypatch)

    async def main() -> None:
        assert await run(sandbox, workspace, "true") is None
        (workspace / ".env").write_text("SECRET-AHEAD-7\n")  # a secret appears on the host meanwhile
        assert await run(sandbox, workspace, "cat .env") is None  # a new kind: a bubblewrap of its own
        assert await run(sandbox, workspace / "sub", "true") is None  # another working folder, too
        shown = await run(sandbox, workspace, "cat .env; echo read")
        assert shown is not None and shown[0].endswith("read\n") and "SECRET" not in shown[0], shown
        assert shown[1] is launched[1] and shown[1].key != launched[0].key
        pool = sandbox.sessions
        assert pool is not None
        if pool.ahead:  # (the first, for the other kind, may still be starting on a loaded machine)
            await asyncio.wait(set(pool.ahead.values()))
        stale = [i for i in pool.idle if i.key == launched[0].key]
        assert stale == [launched[0]]  # still idle, never handed out

    asyncio.run(main())
    session.close_all()
    assert all(instance.popen.returncode is not None for instance in launched)


@needs_bwrap
def test_no_start_ahead_beyond_max_live(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sandbox, workspace = new_sandbox(tmp_path)
    launched = noted_starts(monkeypatch)
    monkeypatch.setattr(session, "MAX_LIVE", 1)

    async def main() -> None:
        assert await run(sandbox, workspace, "true") is None
        assert await run(sandbox, workspace / "sub", "true") is None  # a second kind while one starts
        pool = sandbox.sessions
        assert pool is not None and pool.live() == 1 and len(pool.ahead) == 1
        await asyncio.wait(set(pool.ahead.values()))
        assert len(launched) == 1 and pool.live() == 1

    asyncio.run(main())
    session.close_all()


@needs_bwrap
def test_a_lone_command_leaves_its_start_ahead_no_process_and_no_descriptor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox, workspace = new_sandbox(tmp_path)
    launched = noted_starts(monkeypatch)
    monkeypatch.setattr(launch, "BOOTSTRAP", "import os\nos.read(0, 1)\nos.pause()")  # never ready
    before = open_fds()

    async def main() -> None:
        assert await run(sandbox, workspace, "true") is None
        await launched.one.wait()  # its bubblewrap runs; the supervisor will never be ready

    asyncio.run(main())  # the run ends while the sandbox still starts: the start is cancelled
    assert launched[0].popen.returncode is not None and launched[0].channel.fileno() == -1
    assert not launch.STARTING
    assert open_fds() <= before  # (nothing new left open)
    assert sandbox.sessions is not None and sandbox.sessions.starting == 0 and not sandbox.sessions.ahead


@needs_bwrap
def test_a_start_ahead_that_fails_leaves_nothing_and_the_next_command_its_own_bubblewrap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox, workspace = new_sandbox(tmp_path)
    launched = noted_starts(monkeypatch)
    monkeypatch.setattr(launch, "BOOTSTRAP", "raise SystemExit(3)")  # as a python that cannot run there
    before = open_fds()

    async def main() -> None:
        assert await run(sandbox, workspace, "true") is None
        assert await run(sandbox, workspace, "true") is None  # waited for the start, which failed
        assert await run(sandbox, workspace, "true") is None

    asyncio.run(main())
    pool = sandbox.sessions
    assert pool is not None and pool.failed and not pool.idle and pool.live() == 0
    assert len(launched) == 1 and launched[0].popen.returncode is not None
    assert open_fds() <= before  # (nothing new left open)


def test_the_supervisor_imports_only_the_c_modules_it_needs_and_is_not_dumpable() -> None:
    probe = (
        "import sys\nbefore = set(sys.modules)\nns = {'__name__': 'probe'}\n"
        f"exec(compile(open({str(SUPERVISOR)!r}).read(), 'supervisor', 'exec'), ns)\n"
        "assert ns['undumpable']()\nimported = ' '.join(sorted(set(sys.modules) - before))\n"
        "import ctypes\nprint(ctypes.CDLL(None).prctl(3, 0, 0, 0, 0))\nprint(imported)\n"  # PR_GET_DUMPABLE
    )
    out = subprocess.run([sys.executable, "-I", "-S", "-c", probe], capture_output=True, text=True, check=True)
    dumpable, imported = out.stdout.splitlines()
    assert dumpable == "0"
    # Not their Python wrappers: enum, selectors, threading and subprocess cost the start more than python.
    heavy = {"socket", "signal", "subprocess", "struct", "enum", "selectors", "threading", "ctypes"}
    assert heavy.isdisjoint(imported.split()), imported


@needs_bwrap
def test_an_ipcrm_a_command_puts_on_path_is_not_what_clears_ipc(box: Box) -> None:  # noqa: F811 - fixture
    planted = box.workspace / "bin"
    plant = (
        f"mkdir -p bin && printf '#!/bin/sh\\ntouch {box.workspace}/ipcrm-ran\\n' > bin/ipcrm && "
        "chmod +x bin/ipcrm && ipcmk -M 4096 >/dev/null && ipcmk -Q >/dev/null && echo planted"
    )
    env = box.env() | {"PATH": f"{planted}:{os.environ['PATH']}"}
    todo = [("sandbox", plant), ("sandbox", "ipcs -m -q | grep -c '^0x'; echo looked")]
    proc = subprocess.run(
        [*as_user(box.user), sys.executable, "-c", STEPS_DRIVER, str(box.workspace), str(box.home), json.dumps(todo)],
        cwd=box.workspace, env=env, capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stderr
    first, second = json.loads(proc.stdout.splitlines()[-1])
    assert "planted" in str(first["out"]), first
    assert "0\nlooked" in str(second["out"]), second  # cleared by the system's ipcrm
    assert not (box.workspace / "ipcrm-ran").exists()
    assert first["sandbox"] == second["sandbox"] is not None


@needs_bwrap
def test_a_secret_made_after_the_start_ahead_and_its_description_is_hidden_from_the_next_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox, workspace = new_sandbox(tmp_path)
    launched = noted_starts(monkeypatch)
    ctx = ToolContext(workspace=workspace, sandbox=sandbox)

    async def main() -> tuple[str, str]:
        await BashTool().run({"command": "true"}, ctx)
        pool = sandbox.sessions
        assert pool is not None
        if pool.ahead:  # started, and the next description worked out (unless done already)
            await asyncio.wait(set(pool.ahead.values()))
        assert pool.idle == launched
        (workspace / ".env").write_text("SECRET-AFTER-9\n")
        secret = (await BashTool().run({"command": "cat .env; echo read"}, ctx)).text
        (workspace / ".env").unlink()
        return secret, (await BashTool().run({"command": "echo again"}, ctx)).text

    secret, again = asyncio.run(main())
    session.close_all()
    assert "read" in secret and "SECRET-AFTER-9" not in secret, secret
    assert "again\n[exit code: 0]" in again, again


@needs_bwrap
def test_a_start_ahead_left_in_a_loop_that_ended_does_not_stop_the_next_loops_commands(tmp_path: Path) -> None:
    sandbox, workspace = new_sandbox(tmp_path)
    first = asyncio.new_event_loop()
    assert first.run_until_complete(run(sandbox, workspace, "true")) is None  # a start ahead, left pending
    first.close()
    pool = sandbox.sessions
    assert pool is not None and pool.ahead and pool.starting == 1
    # (the bound only ends a hang: waiting on the other loop's task would never return)
    second = asyncio.run(asyncio.wait_for(run(sandbox, workspace, "echo next"), 10 * launch.START_TIMEOUT_S))
    assert second is not None and second[0] == "next\n", second
    assert not pool.ahead and pool.starting == 0 and pool.live() == 1  # the sandbox that served it
    session.close_all()
