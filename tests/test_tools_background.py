"""Background tasks against real processes: bash background, task_output, task_stop, moving a command there,
and the sandbox's port bridge with real bubblewrap."""

from __future__ import annotations

import asyncio
import os
import socket
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from kimicode.security.sandbox import detect_sandbox
from kimicode.tools.background import TaskManager
from kimicode.tools.base import ToolContext, ToolResult
from kimicode.tools.bash import BashTool
from kimicode.tools.task_output import TaskOutputTool
from kimicode.tools.task_stop import TaskStopTool
from tests.replpty import processes_with, wait_until
from tests.sandboxing import needs_bwrap

BASH = BashTool(background=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "index.html").write_text("<h1>served from the workspace</h1>\n")
    return ws


def context(workspace: Path, tmp_path: Path, sandboxed: bool = False) -> ToolContext:
    sandbox = detect_sandbox("workspace-write", False, workspace, tmp_path / "kimihome") if sandboxed else None
    return ToolContext(workspace=workspace, sandbox=sandbox, tasks=TaskManager(tmp_path / "session"))


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def fetch(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=5) as response:
        return response.read().decode()


def open_gate(fifo: Path) -> bool:
    """Open and close ``fifo`` for writing, which ends a reader's wait; False while nobody reads it."""
    try:
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    except OSError:  # ENXIO: no reader yet
        return False
    return True


def running_as(name: str) -> bool:
    """A process runs whose argv[0] is ``name`` (a command that got as far as its ``exec -a name``)."""
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "cmdline").read_bytes().split(b"\0")[0] == name.encode():
                return True
        except OSError:
            continue
    return False


@pytest.fixture
def marker() -> Iterator[str]:
    tag = f"kimicode-bg-{uuid.uuid4().hex[:8]}"
    yield tag
    assert wait_until(lambda: not processes_with(tag), 5), f"processes tagged {tag} outlived the test"


def test_background_returns_a_task_id_and_the_output_follows(workspace: Path, tmp_path: Path, marker: str) -> None:
    async def scenario() -> tuple[ToolResult, ToolResult, ToolResult, ToolResult]:
        ctx = context(workspace, tmp_path)
        command = f"echo first; sleep 1.5; echo second; exec -a {marker} sleep 30"
        started = await BASH.run({"command": command, "background": True}, ctx)
        waited = await TaskOutputTool().run({"task_id": "1", "wait_seconds": 2}, ctx)
        again = await TaskOutputTool().run({"task_id": "1"}, ctx)
        stopped = await TaskStopTool().run({"task_id": "1"}, ctx)
        await ctx.tasks.close()  # type: ignore[union-attr]
        return started, waited, again, stopped

    started, waited, again, stopped = run(scenario())
    assert started.text.startswith("task 1 started in the background.") and "first" in started.text
    assert "second" in waited.text and "first" not in waited.text  # only what is new
    assert "(no new output)" in again.text and "task 1 running for" in again.text
    assert "task 1 stopped after" in stopped.text
    assert (tmp_path / "session" / "task-1.log").read_text() == "first\nsecond\n"


def test_wait_seconds_returns_when_the_task_ends_with_its_exit_code(workspace: Path, tmp_path: Path) -> None:
    async def scenario() -> tuple[ToolResult, float]:
        ctx = context(workspace, tmp_path)
        await BASH.run({"command": "sleep 1.5; echo built; exit 3", "background": True}, ctx)
        started = time.monotonic()
        result = await TaskOutputTool().run({"task_id": "1", "wait_seconds": 20}, ctx)
        return result, time.monotonic() - started

    result, waited = run(scenario())
    assert waited < 10  # it ended long before the 20 s
    assert "built" in result.text and "task 1 ended after" in result.text and "exit code: 3" in result.text


def test_stop_ends_everything_the_task_started(workspace: Path, tmp_path: Path, marker: str) -> None:
    async def scenario() -> None:
        ctx = context(workspace, tmp_path)
        await BASH.run({"command": f"(exec -a {marker}-child sleep 60) & exec -a {marker} sleep 60", "background": True}, ctx)
        assert wait_until(lambda: len(processes_with(marker)) == 2, 5)
        await TaskStopTool().run({"task_id": "1"}, ctx)
        assert ctx.tasks.get("1").state == "stopped"  # type: ignore[union-attr]

    run(scenario())


def test_close_ends_every_task_of_the_session(workspace: Path, tmp_path: Path, marker: str) -> None:
    async def scenario() -> None:
        ctx = context(workspace, tmp_path)
        for n in range(3):
            await BASH.run({"command": f"exec -a {marker}-{n} sleep 60", "background": True}, ctx)
        assert wait_until(lambda: len(processes_with(marker)) == 3, 5)
        await ctx.tasks.close()  # type: ignore[union-attr]
        refused = await BASH.run({"command": "true", "background": True}, ctx)
        assert refused.is_error and "the session is ending" in refused.text

    run(scenario())


def test_a_command_at_its_timeout_moves_to_the_background(workspace: Path, tmp_path: Path, marker: str) -> None:
    async def scenario() -> tuple[ToolResult, ToolResult]:
        ctx = context(workspace, tmp_path)
        moved = await BASH.run({"command": f"echo warming up; sleep 1.5; echo ready; exec -a {marker} sleep 30", "timeout": 1}, ctx)
        later = await TaskOutputTool().run({"task_id": "1", "wait_seconds": 2}, ctx)
        await ctx.tasks.close()  # type: ignore[union-attr]
        return moved, later

    moved, later = run(scenario())
    assert not moved.is_error
    assert moved.text.startswith("warming up\n[still running after 1s: it goes on in the background as task 1.")
    assert "ready" in later.text and "warming up" not in later.text


def test_without_background_tasks_a_timeout_still_kills(workspace: Path, tmp_path: Path, marker: str) -> None:
    result = run(BashTool().run({"command": f"exec -a {marker} sleep 30", "timeout": 1}, context(workspace, tmp_path)))
    assert result.is_error and "timed out after 1s; process group killed" in result.text


def test_the_user_moves_a_running_command_to_the_background(workspace: Path, tmp_path: Path, marker: str) -> None:
    gate = tmp_path / "gate"  # the command writes nothing until the test has opened and closed this FIFO
    os.mkfifo(gate)

    async def scenario() -> ToolResult:
        ctx = context(workspace, tmp_path)
        command = f"cat {gate} >/dev/null; echo started; exec -a {marker} sleep 30"
        call = asyncio.ensure_future(BASH.run({"command": command}, ctx))
        for _ in range(250):  # (on a loaded machine the command runs before its supervisor registers it)
            if ctx.tasks.has_foreground:  # type: ignore[union-attr]
                break
            await asyncio.sleep(0.02)
        assert ctx.tasks.has_foreground  # type: ignore[union-attr]
        # Ctrl-B lands before the loop has read what the command already wrote (a busy machine): the result
        # must still hold it. From here to the detach the loop is blocked, so "started" stays in the pipe, unread.
        assert wait_until(lambda: open_gate(gate), 10), "the command never opened the gate"
        assert wait_until(lambda: running_as(marker), 10)  # past its echo: "started" is in the pipe
        assert ctx.tasks.detach_foreground() == 1  # type: ignore[union-attr]
        result = await call
        assert ctx.tasks.get("1").running and processes_with(marker)  # type: ignore[union-attr]
        await ctx.tasks.close()  # type: ignore[union-attr]
        return result

    result = run(scenario())
    assert result.text.startswith("started\n[the user moved it: it goes on in the background as task 1.")


def test_an_unknown_task_is_named_with_the_known_ones(workspace: Path, tmp_path: Path) -> None:
    async def scenario() -> ToolResult:
        ctx = context(workspace, tmp_path)
        await BASH.run({"command": "true", "background": True}, ctx)
        return await TaskOutputTool().run({"task_id": "7"}, ctx)

    result = run(scenario())
    assert result.is_error and "no background task '7'" in result.text and "tasks of this session: 1" in result.text


@needs_bwrap
def test_a_sandboxed_server_is_reachable_from_the_host_through_the_bridge(workspace: Path, tmp_path: Path, marker: str) -> None:
    port = free_port()

    async def scenario() -> tuple[ToolResult, str, ToolResult]:
        ctx = context(workspace, tmp_path, sandboxed=True)
        await BASH.run({"command": f"exec -a {marker} python3 -m http.server {port}", "background": True}, ctx)
        # The start result waits a second for the port; a loaded machine may take longer to listen.
        deadline = time.monotonic() + 20
        status = await TaskOutputTool().run({"task_id": "1"}, ctx)
        while "listening on" not in status.text and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            status = await TaskOutputTool().run({"task_id": "1"}, ctx)
        page = await asyncio.to_thread(fetch, port)
        # the task itself still has no network: only its own ports are bridged, inwards
        probe = await BASH.run({"command": "python3 -c \"import urllib.request as u; u.urlopen('http://example.com', timeout=3)\""}, ctx)
        await TaskStopTool().run({"task_id": "1"}, ctx)
        return status, page, probe

    status, page, probe = run(scenario())
    assert f"listening on 127.0.0.1:{port} (bridged from the sandbox)" in status.text
    assert page == "<h1>served from the workspace</h1>\n"
    assert "exit code: 1" in probe.text
    with pytest.raises(OSError):  # the bridge closed with the task
        fetch(port)


@needs_bwrap
def test_a_port_taken_on_the_host_is_reported_not_bridged(workspace: Path, tmp_path: Path, marker: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        async def scenario() -> ToolResult:
            ctx = context(workspace, tmp_path, sandboxed=True)
            result = await BASH.run({"command": f"exec -a {marker} python3 -m http.server {port}", "background": True}, ctx)
            await ctx.tasks.close()  # type: ignore[union-attr]
            return result

        result = run(scenario())
    assert f"port {port} not reachable from this machine: already in use on this machine" in result.text
