"""MCP progress: every tools/call carries a progress token, and a server's progress reaches stream-json."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from kimicode.mcp.server_config import McpServerConfig
from kimicode.mcp.store import save_servers
from tests.clirun import run_cli, write_home_config
from tests.fake_llm import FakeLLM, Reply, ToolCall

INTERACTIVE_SERVER = Path(__file__).parent / "mcp_servers" / "interactive_server.py"


def interactive_config(*extra: str) -> McpServerConfig:
    return McpServerConfig(name="desk", command=sys.executable, args=[str(INTERACTIVE_SERVER), *extra], source="t")


def test_progress_notifications_become_stream_json_progress_lines(fake_llm: FakeLLM, tmp_path: Path) -> None:
    home, project = tmp_path / "home", tmp_path / "proj"
    project.mkdir()
    write_home_config(home, "mcp_startup_wait = 30\n")
    save_servers(home, [interactive_config()])
    fake_llm.script(Reply(tool_calls=[ToolCall("mcp__desk__countdown", {"steps": 3}, id="call_cd")]), Reply(content="ok"))
    proc = run_cli(
        ["-p", "-y", "--output-format", "stream-json", "count"],
        home=home, cwd=project, base_url=fake_llm.base_url, timeout=90,
    )
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    kinds = [line["type"] for line in lines]
    progress = [line for line in lines if line["type"] == "progress"]
    assert [(p["tool_call_id"], p["progress"], p["total"], p["message"]) for p in progress] == [
        ("call_cd", 1, 3, "step 1 of 3"),
        ("call_cd", 2, 3, "step 2 of 3"),
        ("call_cd", 3, 3, "step 3 of 3"),
    ]
    assert kinds.index("tool_use") < kinds.index("progress") and kinds.index("tool_result") > max(
        i for i, kind in enumerate(kinds) if kind == "progress"
    )
    assert fake_llm.chat_requests[1].tool_results()[-1]["content"] == "counted 3"


def test_progress_shows_under_the_running_tool_line_in_the_repl(
    spawn, fake_llm: FakeLLM, home: Path, tmp_path: Path
) -> None:
    release = tmp_path / "release"  # the server holds its last step until this file exists
    save_servers(home, [interactive_config("--hold", str(release))])
    fake_llm.script(Reply(tool_calls=[ToolCall("mcp__desk__countdown", {"steps": 3})]), Reply(content="all counted"))
    repl = spawn("-y")
    repl.wait_prompt()
    for _ in range(60):  # the server starts in the background; ask until it is up
        start = len(repl.transcript)
        repl.send_line("/mcp")
        repl.wait_prompt()
        if re.search(r"desk\s+stdio\s+ready", repl.transcript[start:]):
            break
    repl.send_line("count to three")
    repl.expect("desk:countdown")
    repl.expect("⋯ 1/3 step 1 of 3")
    repl.expect("⋯ 2/3 step 2 of 3")  # shown while the call is still running: step 3 waits for us
    assert "counted 3" not in repl.transcript
    release.touch()
    repl.expect("⋯ 3/3 step 3 of 3")
    repl.expect("counted 3")
    repl.expect("all counted")


def test_progress_reaches_the_editor_as_tool_call_updates(fake_llm: FakeLLM, home: Path, tmp_path: Path) -> None:
    from acp import text_block
    from acp.schema import McpServerStdio

    from tests.acpclient import EditorClient, running_agent
    from tests.test_acp import run

    ws = tmp_path / "proj"
    ws.mkdir()
    server = McpServerStdio(name="desk", command=sys.executable, args=[str(INTERACTIVE_SERVER)], env=[])
    fake_llm.script(Reply(tool_calls=[ToolCall("mcp__desk__countdown", {"steps": 2})]), Reply(content="ok"))
    client = EditorClient()

    async def scenario() -> None:
        async with running_agent(client, home, ws, fake_llm.base_url, "-y") as (conn, _):
            session = await conn.new_session(cwd=str(ws), mcp_servers=[server])
            await conn.prompt(session_id=session.session_id, prompt=[text_block("count")])

    run(scenario())
    [call] = client.of_kind("tool_call")
    texts = [
        block.content.text
        for update in client.tool_updates(call.tool_call_id)
        for block in (update.content or [])
        if getattr(block, "type", "") == "content" and block.content.type == "text"
    ]
    assert texts[:2] == ["progress: 1/2 step 1 of 2", "progress: 2/2 step 2 of 2"]
    assert texts[-1] == "counted 2" and client.tool_updates(call.tool_call_id)[-1].status == "completed"
