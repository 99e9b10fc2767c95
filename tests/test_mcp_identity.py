"""What kimicode tells MCP servers about itself, and which of their tools it offers (real servers)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import kimicode
from kimicode.mcp.manager import McpManager
from kimicode.mcp.server_config import McpServerConfig
from kimicode.tools.base import ToolContext
from tests.mcp_servers.demo_server import TASK_SUPPORT
from tests.mcp_servers.fixtures import http_server, stdio_config


async def _client_info_seen_by(config: McpServerConfig, log_dir: Path) -> dict[str, str]:
    manager = McpManager([config], log_dir=log_dir)
    manager.start()
    try:
        assert await manager.wait_ready(60)
        status = manager.status()[0]
        assert status.state == "ready", status.error
        tool = next(t for t in manager.tools() if t.name == f"mcp__{config.name}__client_info")
        result = await tool.run({}, ToolContext(workspace=log_dir))
        assert not result.is_error, result.text
        info: dict[str, str] = json.loads(result.text)
        return info
    finally:
        await manager.close()


def test_client_identifies_as_kimicode_over_stdio_and_http(tmp_path: Path) -> None:
    expected = {"name": "kimicode", "version": kimicode.__version__}
    stdio = stdio_config("local", "--whoami-tool")
    assert asyncio.run(_client_info_seen_by(stdio, tmp_path / "a")) == expected
    with http_server("streamable-http", "--whoami-tool") as url:
        remote = McpServerConfig(name="web", transport="http", url=url, source="test")
        assert asyncio.run(_client_info_seen_by(remote, tmp_path / "b")) == expected


def test_task_required_tools_are_held_back_and_optional_ones_offered(tmp_path: Path) -> None:
    assert TASK_SUPPORT == {"research": "required", "lookup": "optional"}

    async def scenario() -> None:
        manager = McpManager([stdio_config("jobs", "--task-tools")], log_dir=tmp_path / "logs")
        manager.start()
        try:
            assert await manager.wait_ready(60)
            names = {t.name for t in manager.tools()}
            assert "mcp__jobs__research" not in names
            assert {"mcp__jobs__lookup", "mcp__jobs__echo"} <= names
            lookup = next(t for t in manager.tools() if t.name == "mcp__jobs__lookup")
            result = await lookup.run({"word": "tea"}, ToolContext(workspace=tmp_path))
            assert result.text == "looked up tea" and not result.is_error  # an optional one runs as a plain call
            [status] = manager.status()
            assert status.tool_count == len(names) and status.held_back == ["research"]
        finally:
            await manager.close()

    asyncio.run(scenario())
