"""What an edit waiting for approval shows is what it will write: the REPL's numbered diff with context,
folded when long, and ACP's whole-file diff content."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from acp import text_block

from tests.acpclient import EditorClient, running_agent
from tests.fake_llm import FakeLLM, Reply, ToolCall
from tests.replpty import Repl

pytestmark = pytest.mark.quick_retries


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "proj"
    ws.mkdir()
    return ws


def test_acp_approval_diff_is_the_whole_file_as_it_will_be_written(
    fake_llm: FakeLLM, home: Path, workspace: Path
) -> None:
    target = workspace / "win.txt"
    target.write_bytes(b"alpha\r\nbeta\r\ngamma\r\n")
    fake_llm.script(
        Reply(tool_calls=[ToolCall("strreplace", {"path": "win.txt", "old_str": "beta", "new_str": "BETA"})]),
        Reply(content="done"),
    )
    client = EditorClient()
    client.answers = ["allow_once"]

    async def scenario() -> None:
        async with running_agent(client, home, workspace, fake_llm.base_url) as (conn, _):
            session = await conn.new_session(cwd=str(workspace), mcp_servers=[])
            await conn.prompt(session_id=session.session_id, prompt=[text_block("edit")])

    asyncio.run(asyncio.wait_for(scenario(), 120))
    written = target.read_bytes().decode()
    assert written == "alpha\r\nBETA\r\ngamma\r\n"
    preview = client.permission_requests[0][0].content[0]
    assert preview.type == "diff" and preview.path == str(target)
    assert preview.old_text == "alpha\r\nbeta\r\ngamma\r\n" and preview.new_text == written
