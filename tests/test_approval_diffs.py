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
    # the call ends with the same diff: what it wrote
    final = client.tool_updates(client.of_kind("tool_call")[0].tool_call_id)[-1]
    assert final.status == "completed"
    assert (final.content[0].old_text, final.content[0].new_text) == (preview.old_text, preview.new_text)


def test_repl_approval_shows_a_numbered_diff_with_three_lines_of_context(spawn, fake_llm: FakeLLM, workspace: Path) -> None:
    (workspace / "code.py").write_text("".join(f"line_{n} = {n}\n" for n in range(1, 21)))
    fake_llm.script(
        Reply(tool_calls=[ToolCall("strreplace", {"path": "code.py", "old_str": "line_10 = 10", "new_str": "line_10 = 'ten'"})]),
        Reply(content="edited"),
    )
    repl: Repl = spawn()
    repl.wait_prompt()
    repl.send_line("edit it")
    repl.expect("? ")
    shown = repl.expect("yes once")
    rows = [line.strip() for line in shown.splitlines()]
    assert "@@ -7,7 +7,7 @@" in rows
    assert "7   7   line_7 = 7" in rows and "13  13   line_13 = 13" in rows
    assert "10     - line_10 = 10" in rows and "10 + line_10 = 'ten'" in rows
    assert not any("line_6 =" in row or "line_14 =" in row for row in rows)
    repl.send("y")
    repl.expect("edited")
    assert "line_10 = 'ten'\n" in (workspace / "code.py").read_text()


def test_repl_long_diff_is_folded_until_asked(spawn, fake_llm: FakeLLM, workspace: Path) -> None:
    content = "".join(f"row {n}\n" for n in range(1, 101))
    fake_llm.script(Reply(tool_calls=[ToolCall("createfile", {"path": "long.txt", "content": content})]), Reply(content="made"))
    repl: Repl = spawn()
    repl.wait_prompt()
    repl.send_line("make it")
    repl.expect("? ")
    folded = repl.expect("[n] no")
    assert "more diff lines: [d] shows them" in folded
    assert "+ row 39" in folded and "+ row 100" not in folded
    repl.send("d")
    rest = repl.expect("row 100")
    assert "100 + row 100" in " ".join(rest.split())
    repl.expect("[n] no")
    repl.send("y")
    repl.expect("made")
    assert (workspace / "long.txt").read_text() == content
