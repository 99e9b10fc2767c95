"""MCP elicitation and roots with a real server (tests/mcp_servers/interactive_server.py): a headless run
declines in one line (or, with -y, takes the defaults), the REPL asks field by field, an editor is asked
accept/decline; the roots a server is told are the workspace and the --add-dir folders."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

from kimicode.mcp.store import save_servers
from tests.clirun import run_cli, write_home_config
from tests.fake_llm import FakeLLM, Reply, ToolCall
from tests.test_mcp_progress import interactive_config


def headless(fake_llm: FakeLLM, tmp_path: Path, calls: list[ToolCall], *flags: str, server_flags: tuple[str, ...] = ()):
    home, project = tmp_path / "home", tmp_path / "proj"
    project.mkdir(parents=True, exist_ok=True)
    write_home_config(home, "mcp_startup_wait = 30\n")
    save_servers(home, [interactive_config(*server_flags)])
    fake_llm.script(Reply(tool_calls=calls), Reply(content="ok"))
    proc = run_cli(["-p", *flags, "go"], home=home, cwd=project, base_url=fake_llm.base_url, timeout=90)
    assert proc.returncode == 0, proc.stderr
    return proc, [m["content"] for m in fake_llm.chat_requests[-1].tool_results()], project


def desk_lines(stderr: str) -> list[str]:
    return [line.removeprefix("kimicode: ") for line in stderr.splitlines() if "MCP server 'desk'" in line]


def test_headless_declines_a_question_in_one_line(fake_llm: FakeLLM, tmp_path: Path) -> None:
    proc, results, _ = headless(fake_llm, tmp_path, [ToolCall("mcp__desk__ask_name", {})])
    assert results == ["declined"]
    assert desk_lines(proc.stderr) == [
        "MCP server 'desk' asked \"Who is ordering tea?\": declined, nobody can answer here (it needs your answers)"
    ]


def test_headless_with_y_takes_the_defaults_and_roots_are_the_workspace_and_added_folders(
    fake_llm: FakeLLM, tmp_path: Path
) -> None:
    extra = tmp_path / "shared libs"
    extra.mkdir()
    calls = [ToolCall("mcp__desk__ask_name", {}), ToolCall("mcp__desk__roots", {})]
    proc, results, project = headless(fake_llm, tmp_path, calls, "-y", "--add-dir", str(extra), server_flags=("--defaults",))
    assert results[0] == "accepted: Ada wants 2 cups"
    assert desk_lines(proc.stderr) == ["MCP server 'desk' asked \"Who is ordering tea?\": answered with its defaults (-y)"]
    roots = json.loads(results[1])
    assert [root["uri"] for root in roots] == [project.resolve().as_uri(), extra.resolve().as_uri()]
    assert roots[1]["name"] == "shared libs"


def test_defaults_are_taken_only_with_y_and_only_when_every_required_field_has_one() -> None:
    from kimicode.mcp.elicit import Field, Question, unattended_asker

    said: list[str] = []
    full = Question("desk", "Tea?", [Field("name", "string", default="Ada", required=True), Field("note", "string")])
    partial = Question("desk", "Tea?", [Field("name", "string", default="Ada"), Field("cups", "integer", required=True)])
    assert asyncio.run(unattended_asker(said.append, True)(full)).content == {"name": "Ada"}
    assert asyncio.run(unattended_asker(said.append, True)(partial)).action == "decline"
    assert asyncio.run(unattended_asker(said.append, False)(full)).action == "decline"
    assert [line.rsplit("(", 1)[1] for line in said] == [
        "-y)", "it needs your answers)", "run with -y to answer with the defaults)"
    ]


def test_the_repl_asks_field_by_field(spawn, fake_llm: FakeLLM, home: Path) -> None:
    save_servers(home, [interactive_config()])
    fake_llm.script(Reply(tool_calls=[ToolCall("mcp__desk__ask_name", {})]), Reply(content="tea is ordered"))
    repl = spawn("-y")
    repl.wait_prompt()
    for _ in range(60):  # the server starts in the background; ask until it is up
        start = len(repl.transcript)
        repl.send_line("/mcp")
        repl.wait_prompt()
        if re.search(r"desk\s+stdio\s+ready", repl.transcript[start:]):
            break
    repl.send_line("order tea")
    repl.expect("MCP server 'desk' asks: Who is ordering tea?")
    repl.expect("[y] answer")
    repl.send_line("y")
    repl.expect("Your name")
    repl.send_line("Grace")
    repl.expect("How many cups")
    repl.send_line("lots")
    repl.expect("expected a whole number")
    repl.send_line("3")
    repl.expect("tea is ordered")
    assert fake_llm.chat_requests[-1].tool_results()[-1]["content"] == "accepted: Grace wants 3 cups"


def test_an_editor_is_asked_accept_or_decline_and_never_for_typed_answers(
    fake_llm: FakeLLM, home: Path, tmp_path: Path
) -> None:
    import sys

    from acp import text_block
    from acp.schema import McpServerStdio

    from tests.acpclient import EditorClient, running_agent
    from tests.test_acp import run
    from tests.test_mcp_progress import INTERACTIVE_SERVER

    ws = tmp_path / "proj"
    ws.mkdir()
    servers = [  # "tea": every field has a default; "desk": the answers must be typed
        McpServerStdio(name="tea", command=sys.executable, args=[str(INTERACTIVE_SERVER), "--defaults"], env=[]),
        McpServerStdio(name="desk", command=sys.executable, args=[str(INTERACTIVE_SERVER)], env=[]),
    ]
    fake_llm.script(
        Reply(tool_calls=[ToolCall("mcp__tea__ask_name", {})]),
        Reply(tool_calls=[ToolCall("mcp__desk__ask_name", {})]),
        Reply(content="ok"),
    )
    client = EditorClient()
    client.answers = ["accept"]

    async def scenario() -> None:
        async with running_agent(client, home, ws, fake_llm.base_url) as (conn, _):
            session = await conn.new_session(cwd=str(ws), mcp_servers=servers)
            await conn.prompt(session_id=session.session_id, prompt=[text_block("order")])

    run(scenario())
    results = [request.tool_results()[-1]["content"] for request in fake_llm.chat_requests[1:]]
    assert results == ["accepted: Ada wants 2 cups", "declined"]
    [(tool_call, options)] = client.permission_requests  # only the question an editor's dialog can answer
    assert tool_call.title == "MCP server 'tea' asks: Who is ordering tea?"
    first_call = client.of_kind("tool_call")[0]
    assert tool_call.tool_call_id == first_call.tool_call_id  # attached to the call it came during
    assert 'Name (Your name): "Ada"' in tool_call.content[0].content.text
    assert [option.option_id for option in options] == ["accept", "decline"]
    assert "its answers must be typed" in client.agent_text()
