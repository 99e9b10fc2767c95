"""ACP: the user's custom commands are listed in available_commands_update and a prompt naming one is sent
as its expanded template; one that cannot be used is said in one line and nothing is sent."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from acp import text_block

from tests.acpclient import EditorClient, running_agent
from tests.fake_llm import FakeLLM, Reply

pytestmark = pytest.mark.quick_retries


def test_custom_commands_are_offered_and_expand(fake_llm: FakeLLM, home: Path, tmp_path: Path) -> None:
    ws = tmp_path / "proj"
    (ws / ".claude" / "commands" / "git").mkdir(parents=True)
    (ws / ".claude" / "commands" / "git" / "summary.md").write_text(
        "---\ndescription: Summarise a branch\nargument-hint: BRANCH\n---\nSummarise branch $1.\n"
    )
    (ws / ".claude" / "commands" / "status.md").write_text("!`git status`")
    fake_llm.script(Reply(content="Summarised"))
    client = EditorClient()

    async def scenario() -> None:
        async with running_agent(client, home, ws, fake_llm.base_url) as (conn, _):
            session = await conn.new_session(cwd=str(ws), mcp_servers=[])
            await conn.prompt(session_id=session.session_id, prompt=[text_block("/git:summary main")])
            await conn.prompt(session_id=session.session_id, prompt=[text_block("/status")])

    asyncio.run(asyncio.wait_for(scenario(), 120))
    offered = {c.name: c for c in client.of_kind("available_commands_update")[0].available_commands}
    assert "compact" in offered and "git:summary" in offered
    assert offered["git:summary"].description == "Summarise a branch (project .claude/commands)"
    assert offered["git:summary"].input is not None and offered["git:summary"].input.root.hint == "BRANCH"
    assert len(fake_llm.chat_requests) == 1  # /status was refused: the folder is not trusted
    assert fake_llm.chat_requests[0].messages[-1]["content"] in ("Summarise branch main.", [
        {"type": "text", "text": "Summarise branch main."}])
    assert "/status runs shell commands" in client.agent_text() and "not trusted" in client.agent_text()
