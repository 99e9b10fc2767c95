"""Remote MCP servers that want a sign-in (401): one clear reason, over both HTTP transports."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from kimicode.mcp.manager import McpManager
from kimicode.mcp.server_config import McpServerConfig
from tests.mcp_servers.fixtures import stdio_config, unauthorized_server


@pytest.mark.parametrize("transport", ["http", "sse"])
def test_401_marks_the_server_as_needing_a_sign_in(tmp_path: Path, transport: str) -> None:
    with unauthorized_server() as (url, authorizations):
        locked = McpServerConfig(name="team-wiki", transport=transport, url=url, source="test")  # type: ignore[arg-type]

        async def scenario() -> None:
            manager = McpManager([locked, stdio_config("demo")], log_dir=tmp_path / "logs", start_timeout=20)
            manager.start()
            try:
                assert await manager.wait_ready(60)
                states = {status.name: status for status in manager.status()}
                assert states["demo"].state == "ready"
                assert states["team-wiki"].state == "failed"
                error = states["team-wiki"].error
                assert error.startswith("needs you to sign in (it answered 401 Unauthorized)"), error
                assert '"Authorization": "Bearer ${TEAM_WIKI_TOKEN}"' in error
                assert not any(tool.name.startswith("mcp__team-wiki__") for tool in manager.tools())
            finally:
                await manager.close()

        asyncio.run(scenario())
    assert authorizations == [""] * len(authorizations) and authorizations
