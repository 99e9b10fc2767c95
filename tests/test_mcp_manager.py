"""McpManager against real MCP servers over stdio and streamable HTTP."""

from __future__ import annotations

import asyncio
import warnings
from pathlib import Path

from kimicode.mcp.manager import McpManager
from kimicode.mcp.server_config import McpServerConfig
from kimicode.mcp.tools import mcp_tool_name
from kimicode.tools.base import Tool, ToolContext
from tests.mcp_servers.fixtures import http_server, live_processes_with, stdio_config


def _tool(manager: McpManager, name: str) -> Tool:
    return next(t for t in manager.tools() if t.name == name)


def test_stdio_tools_listed_called_and_image_returned(tmp_path: Path) -> None:
    config = stdio_config("demo")
    marker = config.args[2]

    async def scenario() -> None:
        manager = McpManager([config], log_dir=tmp_path / "logs")
        manager.start()
        assert await manager.wait_ready(60)
        names = {t.name for t in manager.tools()}
        assert {"mcp__demo__echo", "mcp__demo__add", "mcp__demo__red_square", "mcp__demo__crash"} <= names
        echo = _tool(manager, "mcp__demo__echo")
        assert echo.read_only is True and _tool(manager, "mcp__demo__add").read_only is False
        assert echo.parameters["properties"]["text"]["type"] == "string"
        ctx = ToolContext(workspace=tmp_path)

        result = await echo.run({"text": "hello over stdio"}, ctx)
        assert result.text == "hello over stdio" and not result.is_error
        assert (await _tool(manager, "mcp__demo__add").run({"a": 2, "b": 40}, ctx)).text == "42"

        image_result = await _tool(manager, "mcp__demo__red_square").run({}, ctx)
        assert len(image_result.images) == 1
        image = image_result.images[0]
        assert image.mime == "image/png" and image.data.startswith(b"\x89PNG\r\n\x1a\n")
        assert (image.width, image.height) == (8, 8)

        [status] = manager.status()
        assert (status.name, status.state, status.tool_count, status.source) == ("demo", "ready", 5, "test")
        assert live_processes_with(marker)
        await manager.close()
        assert manager.status()[0].state == "stopped"

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        asyncio.run(scenario())
    assert live_processes_with(marker) == []


def test_http_server_tools_work(tmp_path: Path) -> None:
    with http_server() as url:
        config = McpServerConfig(name="web", transport="http", url=url, source="test")

        async def scenario() -> None:
            manager = McpManager([config], log_dir=tmp_path / "logs")
            manager.start()
            assert await manager.wait_ready(60)
            assert manager.status()[0].state == "ready", manager.status()[0].error
            ctx = ToolContext(workspace=tmp_path)
            result = await _tool(manager, "mcp__web__echo").run({"text": "over http"}, ctx)
            assert result.text == "over http"
            image_result = await _tool(manager, "mcp__web__red_square").run({}, ctx)
            assert image_result.images[0].data.startswith(b"\x89PNG")
            await manager.close()

        asyncio.run(scenario())


def test_missing_command_fails_clearly_and_others_still_work(tmp_path: Path) -> None:
    broken = McpServerConfig(name="ghost", command="kimicode-no-such-mcp-server", source="test")
    good = stdio_config("demo")

    async def scenario() -> None:
        manager = McpManager([broken, good], log_dir=tmp_path / "logs")
        manager.start()
        assert await manager.wait_ready(60)
        states = {s.name: s for s in manager.status()}
        assert states["ghost"].state == "failed"
        assert "kimicode-no-such-mcp-server" in states["ghost"].error
        assert "not found" in states["ghost"].error
        assert "kimicode-no-such-mcp-server" in states["ghost"].log_path.read_text()
        assert states["demo"].state == "ready"
        assert all(t.name.startswith("mcp__demo__") for t in manager.tools())

        refused = await manager.call_tool("ghost", "echo", {"text": "x"})
        assert refused.is_error and "'ghost'" in refused.text
        ok = await _tool(manager, "mcp__demo__echo").run({"text": "still here"}, ToolContext(workspace=tmp_path))
        assert ok.text == "still here"
        await manager.close()

    asyncio.run(scenario())


def test_crash_mid_call_marks_server_failed_and_others_carry_on(tmp_path: Path) -> None:
    crashing = stdio_config("fragile")
    steady = stdio_config("steady")

    async def scenario() -> None:
        manager = McpManager([crashing, steady], log_dir=tmp_path / "logs", call_timeout=60)
        manager.start()
        assert await manager.wait_ready(60)
        ctx = ToolContext(workspace=tmp_path)
        result = await _tool(manager, "mcp__fragile__crash").run({}, ctx)
        assert result.is_error
        assert "'fragile'" in result.text and "crash" in result.text
        states = {s.name: s for s in manager.status()}
        assert states["fragile"].state == "failed"
        # The server's own stderr is kept in its log.
        assert "crashing on purpose" in states["fragile"].log_path.read_text()
        assert not any(t.name.startswith("mcp__fragile__") for t in manager.tools())

        again = await manager.call_tool("fragile", "echo", {"text": "x"})
        assert again.is_error and "not available" in again.text
        ok = await _tool(manager, "mcp__steady__echo").run({"text": "fine"}, ctx)
        assert ok.text == "fine" and not ok.is_error
        await manager.close()

    asyncio.run(scenario())
    assert live_processes_with(crashing.args[2]) == []
    assert live_processes_with(steady.args[2]) == []


def test_garbage_on_stdout_marks_server_failed(tmp_path: Path) -> None:
    noisy = stdio_config("noisy", "--garbage")

    async def scenario() -> None:
        manager = McpManager([noisy], log_dir=tmp_path / "logs")
        manager.start()
        assert await manager.wait_ready(60)
        [status] = manager.status()
        assert status.state == "failed"
        assert "not MCP" in status.error
        assert manager.tools() == []
        await manager.close()

    asyncio.run(scenario())


def test_start_returns_while_slow_server_is_still_starting(tmp_path: Path) -> None:
    slow = stdio_config("sleepy", "--start-delay", "3")
    fast = stdio_config("quick")

    async def scenario() -> None:
        manager = McpManager([slow, fast], log_dir=tmp_path / "logs")
        manager.start()
        # Nothing has been awaited yet: every server is still starting and no tools exist.
        assert {s.state for s in manager.status()} == {"starting"}
        assert manager.tools() == []
        # The quick one becomes usable while the slow one is still starting.
        while {s.name: s.state for s in manager.status()}["quick"] == "starting":
            await asyncio.sleep(0.05)
        states = {s.name: s.state for s in manager.status()}
        assert states == {"quick": "ready", "sleepy": "starting"}
        assert {t.name for t in manager.tools()} >= {"mcp__quick__echo"}
        assert await manager.wait_ready(60)
        assert {s.state for s in manager.status()} == {"ready"}
        await manager.close()

    asyncio.run(scenario())


def test_start_timeout_marks_server_failed(tmp_path: Path) -> None:
    slow = stdio_config("sleepy", "--start-delay", "30")

    async def scenario() -> None:
        manager = McpManager([slow], log_dir=tmp_path / "logs", start_timeout=1.0)
        manager.start()
        assert await manager.wait_ready(30)
        [status] = manager.status()
        assert status.state == "failed" and "start" in status.error
        await manager.close()

    asyncio.run(scenario())
    assert live_processes_with(slow.args[2]) == []


def test_tool_names_are_sanitised_and_bounded() -> None:
    assert mcp_tool_name("my server", "do.thing") == "mcp__my_server__do_thing"
    long_name = mcp_tool_name("s" * 40, "t" * 40)
    assert len(long_name) == 64 and long_name.startswith("mcp__sss")
    assert long_name != mcp_tool_name("s" * 40, "t" * 41)


def test_sse_server_tools_work(tmp_path: Path) -> None:
    with http_server("sse") as url:
        config = McpServerConfig(name="events", transport="sse", url=url, source="test")

        async def scenario() -> None:
            manager = McpManager([config], log_dir=tmp_path / "logs")
            manager.start()
            assert await manager.wait_ready(60)
            assert manager.status()[0].state == "ready", manager.status()[0].error
            result = await _tool(manager, "mcp__events__add").run({"a": 1, "b": 2}, ToolContext(workspace=tmp_path))
            assert result.text == "3"
            await manager.close()

        asyncio.run(scenario())


def test_unreachable_http_server_fails_without_hurting_others(tmp_path: Path) -> None:
    from tests.mcp_servers.fixtures import free_port

    dead = McpServerConfig(name="gone", transport="http", url=f"http://127.0.0.1:{free_port()}/mcp", source="t")
    good = stdio_config("demo")

    async def scenario() -> None:
        manager = McpManager([dead, good], log_dir=tmp_path / "logs", start_timeout=20)
        manager.start()
        assert await manager.wait_ready(60)
        states = {s.name: s for s in manager.status()}
        assert states["gone"].state == "failed" and dead.url in states["gone"].error
        assert states["demo"].state == "ready"
        await manager.close()

    asyncio.run(scenario())
