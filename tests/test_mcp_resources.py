"""Resources in MCP tool results, from a real server: a link keeps its name, title, type, size and
description; a binary resource is saved in the session's folder (never outside it) for the model to view."""

from __future__ import annotations

import asyncio
from pathlib import Path

from kimicode.mcp.manager import McpManager
from tests.mcp_servers.interactive_server import CHART
from tests.test_mcp_progress import interactive_config


def test_links_keep_their_facts_and_blobs_are_saved_for_the_model(tmp_path: Path) -> None:
    saved_in = tmp_path / "sessions" / "ws" / "mcp-resources"

    async def scenario() -> str:
        manager = McpManager([interactive_config()], log_dir=tmp_path / "logs")
        manager.blob_dir = saved_in
        manager.start()
        try:
            assert await manager.wait_ready(60)
            result = await manager.call_tool("desk", "report", {})
            assert not result.is_error, result.text
            return result.text
        finally:
            await manager.close()

    link, blob = asyncio.run(scenario()).splitlines()
    assert link == (
        '[resource link: file:///reports/q3.csv — name "q3.csv", title "Q3 sales", type text/csv, 2048 bytes: '
        "Sales by region]"
    )
    [path] = saved_in.iterdir()  # in the folder, whatever "../../" the URI had
    assert path.read_bytes() == CHART and path.name.endswith("-chart.png")
    assert blob == f"[binary resource file:///reports/../../etc/chart (image/png, {len(CHART)} bytes) saved to {path}; view it there]"
