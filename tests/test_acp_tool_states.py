"""End-to-end: the states an editor sees a tool call in, through `kimicode acp` as a subprocess driven by
the ACP SDK's client side, against the scripted model server: pending until it runs, in progress while it
runs, announced before the editor is asked for its files, and replayed by session/load as it ended."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from acp import text_block

from tests.acpclient import EditorClient, running_agent
from tests.fake_llm import FakeLLM, Reply, ToolCall
from tests.test_acp import run, wait_until

pytestmark = pytest.mark.quick_retries


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    ws = tmp_path / "proj"
    ws.mkdir()
    return ws


def statuses(client: EditorClient, call_id: str) -> list[str]:
    """The call's states in the order the editor was told, repeats folded."""
    seen: list[str] = []
    for update in client.tool_updates(call_id):
        if update.status is not None and (not seen or seen[-1] != update.status):
            seen.append(update.status)
    return seen


async def cancelled_sleep(client: EditorClient, home: Path, ws: Path, base_url: str) -> str:
    """A turn whose `sleep` (allowed without asking) is cancelled once the editor shows it running."""
    async with running_agent(client, home, ws, base_url, "--sandbox", "off") as (conn, _):
        session = await conn.new_session(cwd=str(ws), mcp_servers=[])
        turn = asyncio.create_task(conn.prompt(session_id=session.session_id, prompt=[text_block("wait")]))
        await wait_until(lambda: any(u.status == "in_progress" for u in client.of_kind("tool_call_update")))
        await conn.cancel(session_id=session.session_id)
        assert (await turn).stop_reason == "cancelled"
        return session.session_id


def test_a_call_run_without_asking_is_in_progress_while_it_runs(fake_llm: FakeLLM, home: Path, ws: Path) -> None:
    fake_llm.script(Reply(tool_calls=[ToolCall("bash", {"command": "sleep 60"})]))
    client = EditorClient()
    run(cancelled_sleep(client, home, ws, fake_llm.base_url))
    assert client.permission_requests == []  # nobody was asked: the policy allows `sleep`
    call = client.of_kind("tool_call")[0]
    assert call.status == "pending"
    assert statuses(client, call.tool_call_id) == ["pending", "in_progress", "failed"]


def test_the_call_is_announced_before_the_editor_is_asked_for_its_files(fake_llm: FakeLLM, home: Path, ws: Path) -> None:
    (ws / "notes.txt").write_text("on disk\n")
    fake_llm.script(
        Reply(
            tool_calls=[
                ToolCall("view", {"path": "notes.txt"}),
                ToolCall("createfile", {"path": "new.txt", "content": "x\n"}),
            ]
        ),
        Reply(content="done"),
    )
    client = EditorClient(fs=True)

    async def scenario() -> None:
        async with running_agent(client, home, ws, fake_llm.base_url, "-y") as (conn, _):
            session = await conn.new_session(cwd=str(ws), mcp_servers=[])
            await conn.prompt(session_id=session.session_id, prompt=[text_block("read and write")])

    run(scenario())
    order = [
        f"tool_call {item.title}" if kind == "update" and item.session_update == "tool_call" else f"{kind} {Path(item).name}"
        for kind, item in client.received
        if kind != "update" or item.session_update == "tool_call"
    ]
    assert order.index("tool_call Read notes.txt") < order.index("fs/read_text_file notes.txt")
    assert order.index("tool_call Write new.txt") < order.index("fs/write_text_file new.txt")
    for call in client.of_kind("tool_call"):
        assert statuses(client, call.tool_call_id) == ["pending", "in_progress", "completed"]


def test_load_replays_a_call_in_the_state_it_ended_in(fake_llm: FakeLLM, home: Path, ws: Path) -> None:
    fake_llm.script(Reply(tool_calls=[ToolCall("bash", {"command": "sleep 60"})]))
    live = EditorClient()
    session_id = run(cancelled_sleep(live, home, ws, fake_llm.base_url))
    later = EditorClient()

    async def load() -> None:
        async with running_agent(later, home, ws, fake_llm.base_url) as (conn, _):
            await conn.load_session(cwd=str(ws), session_id=session_id, mcp_servers=[])

    run(load())
    call = live.of_kind("tool_call")[0].tool_call_id
    assert later.of_kind("tool_call")[0].tool_call_id == call
    assert statuses(live, call)[-1] == "failed"
    assert statuses(later, call)[-1] == statuses(live, call)[-1]


def test_the_failed_calls_are_read_from_a_damaged_log(tmp_path: Path) -> None:
    from kimicode.frontends.acp.outcomes import RECORD_CALL_FAILED, failed_calls

    log = tmp_path / "s.jsonl"
    log.write_text(
        '{"type":"session","id":"s"}\n'
        '{"type":"message","message":{"role":"tool","tool_call_id":"a","content":"call_failed"}}\n'
        f'{{"type":"{RECORD_CALL_FAILED}","call":"a"}}\n'
        f'{{"type":"{RECORD_CALL_FAILED}","call":7}}\n'
        f'{{"type":"{RECORD_CALL_FAILED}","call":"b"'  # cut off when the process was killed
    )
    assert failed_calls(log) == {"a"}
    assert failed_calls(tmp_path / "missing.jsonl") == set()
