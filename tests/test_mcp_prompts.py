"""A server's prompts as slash commands and its resources as @SERVER:URI mentions, in `kimicode -p`, against
a real stdio server (tests/mcp_servers/prompt_server.py)."""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

import pytest

from kimicode.mcp.server_config import McpServerConfig
from kimicode.mcp.store import save_servers
from tests.clirun import run_cli, write_home_config
from tests.fake_llm import FakeLLM, Reply
from tests.mcp_servers.prompt_server import LOGO, NOTES, PIXEL

PROMPT_SERVER = Path(__file__).parent / "mcp_servers" / "prompt_server.py"


def prompt_config(*extra: str) -> McpServerConfig:
    return McpServerConfig(name="srv", command=sys.executable, args=[str(PROMPT_SERVER), *extra], source="t")


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    home, project = tmp_path / "home", tmp_path / "proj"
    project.mkdir()
    write_home_config(home, "mcp_startup_wait = 60\n")
    save_servers(home, [prompt_config()])
    return home, project


def first_user_content(fake_llm: FakeLLM) -> list[dict[str, object]]:
    content = fake_llm.chat_requests[0].messages[-1]["content"]
    return [{"type": "text", "text": content}] if isinstance(content, str) else content


def test_a_prompt_runs_as_a_slash_command(fake_llm: FakeLLM, dirs: tuple[Path, Path]) -> None:
    home, project = dirs
    fake_llm.script(Reply(content="reviewed"))
    proc = run_cli(["-p", "/mcp__srv__review file=app.py security"], home=home, cwd=project,
                   base_url=fake_llm.base_url, timeout=90)
    assert proc.returncode == 0, proc.stderr
    raw = fake_llm.chat_requests[0].raw
    assert json.dumps("Please review app.py with a focus on security.")[1:-1].encode() in raw
    parts = first_user_content(fake_llm)
    assert parts[-1] == {"type": "text", "text": "Please review app.py with a focus on security."}
    urls = [p["image_url"]["url"] for p in parts if p.get("type") == "image_url"]  # type: ignore[index]
    assert urls == ["data:image/png;base64," + base64.b64encode(PIXEL).decode()]


def test_a_missing_argument_is_one_line_and_nothing_is_sent(fake_llm: FakeLLM, dirs: tuple[Path, Path]) -> None:
    home, project = dirs
    proc = run_cli(["-p", "/mcp__srv__review"], home=home, cwd=project, base_url=fake_llm.base_url, timeout=90)
    assert proc.returncode == 2, proc.stderr
    assert "/mcp__srv__review needs the argument file (usage: /mcp__srv__review FILE [FOCUS])" in proc.stderr
    assert "Traceback" not in proc.stderr and fake_llm.chat_requests == []


def test_resource_mentions_attach_text_and_save_blobs(fake_llm: FakeLLM, dirs: tuple[Path, Path]) -> None:
    home, project = dirs
    fake_llm.script(Reply(content="noted"))
    proc = run_cli(["-p", "what do @srv:file:///notes.txt and @srv:file:///logo.png say?"], home=home, cwd=project,
                   base_url=fake_llm.base_url, timeout=90)
    assert proc.returncode == 0, proc.stderr
    text = str(first_user_content(fake_llm)[-1]["text"])
    assert f'<resource server="srv" uri="file:///notes.txt">\n{NOTES}\n</resource>' in text
    saved = [p for p in (home / "sessions").rglob("*logo.png")]
    assert len(saved) == 1 and saved[0].read_bytes() == LOGO
    assert f"saved to {saved[0]}" in text


@pytest.mark.parametrize(("mention", "line"), [
    ("@srv:file:///missing.txt", "@srv:file:///missing.txt could not be read: MCP server 'srv' refused"),
    ("@nosuch:file:///notes.txt", "@nosuch:file:///notes.txt: no MCP server is named 'nosuch' (servers: srv)"),
])
def test_an_unreadable_resource_is_one_line_and_nothing_is_sent(
    fake_llm: FakeLLM, dirs: tuple[Path, Path], mention: str, line: str
) -> None:
    home, project = dirs
    proc = run_cli(["-p", f"read {mention}"], home=home, cwd=project, base_url=fake_llm.base_url, timeout=90)
    assert proc.returncode == 2, proc.stderr
    assert line in proc.stderr
    assert "Traceback" not in proc.stderr and fake_llm.chat_requests == []


def test_arguments_by_position_and_name() -> None:
    from kimicode.mcp.prompts import PromptArg, PromptArgError, RemotePrompt, parse_arguments

    review = RemotePrompt("srv", "review", "", (PromptArg("file", True), PromptArg("focus", False)))
    assert parse_arguments(review, "a.py") == {"file": "a.py"}
    assert parse_arguments(review, "a.py error handling") == {"file": "a.py", "focus": "error handling"}
    assert parse_arguments(review, "focus=speed a.py") == {"focus": "speed", "file": "a.py"}
    assert parse_arguments(review, "'my file.py'") == {"file": "my file.py"}
    with pytest.raises(PromptArgError, match="has no argument 'colour'"):
        parse_arguments(review, "colour=red a.py")
    with pytest.raises(PromptArgError, match="needs the argument file"):
        parse_arguments(review, "focus=speed")


def test_an_editor_is_offered_the_prompts_and_runs_one(fake_llm: FakeLLM, dirs: tuple[Path, Path]) -> None:
    import asyncio

    from acp import text_block

    from tests.acpclient import EditorClient, running_agent

    home, project = dirs
    fake_llm.script(Reply(content="reviewed"))
    client = EditorClient()

    async def scenario() -> None:
        async with running_agent(client, home, project, fake_llm.base_url) as (conn, _):
            session = await conn.new_session(cwd=str(project), mcp_servers=[])
            await conn.prompt(session_id=session.session_id, prompt=[text_block("/mcp__srv__review main.py")])
            await conn.prompt(session_id=session.session_id, prompt=[text_block("/mcp__srv__review")])

    asyncio.run(asyncio.wait_for(scenario(), 120))
    offered = {c.name: c for c in client.of_kind("available_commands_update")[-1].available_commands}
    review = offered["mcp__srv__review"]
    assert review.description == "Review one file (MCP server srv)" and "compact" in offered
    assert review.input is not None and review.input.root.hint == "FILE [FOCUS]"
    assert len(fake_llm.chat_requests) == 1  # the second one lacked its argument
    assert b"Please review main.py." in fake_llm.chat_requests[0].raw
    assert "/mcp__srv__review needs the argument file" in client.agent_text()


def test_a_failing_prompt_list_is_one_warning_and_the_server_stays(fake_llm: FakeLLM, dirs: tuple[Path, Path]) -> None:
    home, project = dirs
    save_servers(home, [prompt_config("--broken-prompts")])
    fake_llm.script(Reply(content="noted"))
    proc = run_cli(["-p", "what does @srv:file:///notes.txt say?"], home=home, cwd=project,
                   base_url=fake_llm.base_url, timeout=90)
    assert proc.returncode == 0, proc.stderr
    warning = "MCP server 'srv' could not list its prompts (it works without them): "
    assert proc.stderr.count(warning) == 1 and "prompts are broken today" in proc.stderr
    assert NOTES in str(first_user_content(fake_llm)[-1]["text"])  # its resources still work
