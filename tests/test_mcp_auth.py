"""Remote MCP servers that want a sign-in (401): one clear reason, over both HTTP transports."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from kimicode.mcp.manager import McpManager
from kimicode.mcp.server_config import McpServerConfig
from tests.mcp_servers.fixtures import stdio_config, unauthorized_server


@pytest.mark.parametrize("with_home", [True, False], ids=["oauth", "no-token-store"])
@pytest.mark.parametrize("transport", ["http", "sse"])
def test_401_marks_the_server_as_needing_a_sign_in(tmp_path: Path, transport: str, with_home: bool) -> None:
    with unauthorized_server() as (url, authorizations):
        locked = McpServerConfig(name="team-wiki", transport=transport, url=url, source="test")  # type: ignore[arg-type]

        async def scenario() -> None:
            home = tmp_path if with_home else None  # with a home, the OAuth provider meets the 401
            manager = McpManager([locked, stdio_config("demo")], log_dir=tmp_path / "logs", start_timeout=20, home=home)
            manager.start()
            try:
                assert await manager.wait_ready(60)
                states = {status.name: status for status in manager.status()}
                assert states["demo"].state == "ready"
                assert states["team-wiki"].state == "failed"
                error = states["team-wiki"].error
                assert error == "needs you to sign in: run `kimicode mcp login team-wiki`", error
                assert states["team-wiki"].needs_sign_in
                assert not any(tool.name.startswith("mcp__team-wiki__") for tool in manager.tools())
            finally:
                await manager.close()

        asyncio.run(scenario())
    assert authorizations == [""] * len(authorizations) and authorizations
