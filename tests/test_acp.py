"""End-to-end: `kimicode acp` started as a subprocess, driven by the ACP SDK's client side (the editor's
half of the same library), against the scripted model server over real HTTP."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from acp import RequestError, image_block, resource_link_block, text_block
from acp.schema import McpServerStdio

from tests.acpclient import EditorClient, running_agent
from tests.clirun import cli_env
from tests.fake_llm import Fault, FakeLLM, Reply, ToolCall
from tests.mcp_servers.fixtures import DEMO_SERVER, live_processes_with
from tests.mcp_servers.demo_server import red_square_png

# KIMICODE_HOME with quick retries (conftest's home): a faulty reply fails in milliseconds.
pytestmark = pytest.mark.quick_retries

T = TypeVar("T")
SWE = {"bash", "view", "createfile", "strreplace", "insert", "submit"}


def run(coro: Awaitable[T]) -> T:
    return asyncio.run(asyncio.wait_for(coro, 120))  # type: ignore[arg-type]


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    ws = tmp_path / "proj"
    ws.mkdir()
    return ws


def gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"


async def wait_until(check: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(0.05)


# -- a turn, approvals -------------------------------------------------------------------------------


def test_a_turn_streams_and_asks_before_running_commands(fake_llm: FakeLLM, home: Path, ws: Path) -> None:
    fake_llm.script(
        Reply(reasoning="I should write it.", content="Writing the file.", tool_calls=[ToolCall("bash", {"command": "touch a.txt"})]),
        Reply(content="Wrote a.txt."),
        Reply(tool_calls=[ToolCall("bash", {"command": "touch b.txt"})]),
        Reply(content="Not written, as you wish."),
    )
    client = EditorClient()
    client.answers = ["allow_once", "reject"]

    async def scenario() -> tuple[str, str]:
        async with running_agent(client, home, ws, fake_llm.base_url) as (conn, _):
            session = await conn.new_session(cwd=str(ws), mcp_servers=[])
            first = await conn.prompt(session_id=session.session_id, prompt=[text_block("write a.txt")])
            second = await conn.prompt(session_id=session.session_id, prompt=[text_block("write b.txt")])
            return first.stop_reason, second.stop_reason

    assert run(scenario()) == ("end_turn", "end_turn")
    assert (ws / "a.txt").exists()
    assert not (ws / "b.txt").exists()
    # two questions, each about its command, with the three answers
    assert len(client.permission_requests) == 2
    tool_call, options = client.permission_requests[0]
    assert "touch a.txt" in tool_call.title and tool_call.kind == "execute"
    assert [o.kind for o in options] == ["allow_once", "allow_always", "reject_once"]
    # what the model was told about the refusal
    rejected = fake_llm.requests[3].tool_results()[-1]["content"]
    assert "did not approve" in rejected
    # the stream: thinking, text, the tool calls and their end
    assert "I should write it." in "".join(u.content.text for u in client.of_kind("agent_thought_chunk"))
    assert client.agent_text().startswith("Writing the file.Wrote a.txt.")
    starts = client.of_kind("tool_call")
    assert [s.title for s in starts] == ["`touch a.txt`", "`touch b.txt`"]
    assert client.tool_updates(starts[0].tool_call_id)[-1].status == "completed"
    assert client.tool_updates(starts[1].tool_call_id)[-1].status == "failed"
    assert client.of_kind("available_commands_update")[0].available_commands[0].name == "compact"


def test_allow_always_covers_the_same_command_for_the_session(fake_llm: FakeLLM, home: Path, ws: Path) -> None:
    fake_llm.script(
        Reply(tool_calls=[ToolCall("bash", {"command": "git init -q first"})]),
        Reply(tool_calls=[ToolCall("bash", {"command": "git init -q second"})]),
        Reply(tool_calls=[ToolCall("bash", {"command": "rm -rf first"})]),
        Reply(content="done"),
    )
    client = EditorClient()
    client.answers = ["allow_always", "reject"]

    async def scenario() -> None:
        async with running_agent(client, home, ws, fake_llm.base_url) as (conn, _):
            session = await conn.new_session(cwd=str(ws), mcp_servers=[])
            await conn.prompt(session_id=session.session_id, prompt=[text_block("make repositories")])

    run(scenario())
    # `git init` was allowed for the session (the REPL's "a"): the second one ran unasked
    assert (ws / "first" / ".git").is_dir() and (ws / "second" / ".git").is_dir()
    assert "bash(git init *)" in client.permission_requests[0][1][1].name
    assert len(client.permission_requests) == 2  # `rm` is another command: asked, and rejected
    assert "rm -rf first" in client.permission_requests[1][0].title


def test_cancel_ends_the_turn_and_kills_the_running_command(fake_llm: FakeLLM, home: Path, ws: Path) -> None:
    fake_llm.script(
        Reply(tool_calls=[ToolCall("bash", {"command": "echo $$ > pid; sleep 60"})]),
        Reply(content="still here"),
    )
    client = EditorClient()

    async def scenario() -> tuple[str, str, int]:
        async with running_agent(client, home, ws, fake_llm.base_url, "-y", "--sandbox", "off") as (conn, _):
            session = await conn.new_session(cwd=str(ws), mcp_servers=[])
            turn = asyncio.create_task(conn.prompt(session_id=session.session_id, prompt=[text_block("sleep")]))
            await wait_until(lambda: (ws / "pid").is_file() and (ws / "pid").read_text().strip() != "")
            pid = int((ws / "pid").read_text())
            assert not gone(pid)
            started = time.monotonic()
            await conn.cancel(session_id=session.session_id)
            stopped = await turn
            assert time.monotonic() - started < 10
            again = await conn.prompt(session_id=session.session_id, prompt=[text_block("are you there?")])
            return stopped.stop_reason, again.stop_reason, pid

    stopped, again, pid = run(scenario())
    assert stopped == "cancelled"
    assert gone(pid)
    assert again == "end_turn" and client.agent_text().endswith("still here")
    call = client.of_kind("tool_call")[0].tool_call_id
    assert client.tool_updates(call)[-1].status == "failed"
    # the next request kept a valid history: the interrupted call has its result
    assert "Interrupted" in fake_llm.requests[1].tool_results()[0]["content"]


def test_cancel_while_a_question_is_open(fake_llm: FakeLLM, home: Path, ws: Path) -> None:
    fake_llm.script(Reply(tool_calls=[ToolCall("bash", {"command": "touch never"})]))
    client = EditorClient()
    client.answers = ["wait"]

    async def scenario() -> str:
        async with running_agent(client, home, ws, fake_llm.base_url) as (conn, _):
            session = await conn.new_session(cwd=str(ws), mcp_servers=[])
            turn = asyncio.create_task(conn.prompt(session_id=session.session_id, prompt=[text_block("go")]))
            await asyncio.wait_for(client.permission_asked.wait(), 30)
            await conn.cancel(session_id=session.session_id)
            return (await turn).stop_reason

    assert run(scenario()) == "cancelled"
    assert not (ws / "never").exists()


# -- sessions ----------------------------------------------------------------------------------------


def test_load_replays_an_earlier_session_and_continues_it(fake_llm: FakeLLM, home: Path, ws: Path) -> None:
    (ws / "notes.txt").write_text("the answer is 42\n")
    fake_llm.script(
        Reply(content="Let me read it.", tool_calls=[ToolCall("view", {"path": "notes.txt"})]),
        Reply(content="It says 42."),
        Reply(content="Yes, 42 again."),
    )
    first = EditorClient()

    async def earlier() -> str:
        async with running_agent(first, home, ws, fake_llm.base_url) as (conn, _):
            session = await conn.new_session(cwd=str(ws), mcp_servers=[])
            await conn.prompt(session_id=session.session_id, prompt=[text_block("what do the notes say?")])
            return session.session_id

    session_id = run(earlier())
    later = EditorClient()

    async def load() -> tuple[list[str], int]:
        async with running_agent(later, home, ws, fake_llm.base_url) as (conn, _):
            listed = await conn.list_sessions(cwd=str(ws))
            await conn.load_session(cwd=str(ws), session_id=session_id, mcp_servers=[])
            replayed = len(later.updates)
            await conn.prompt(session_id=session_id, prompt=[text_block("and again?")])
            return [s.session_id for s in listed.sessions], replayed

    listed, replayed = run(load())
    assert session_id in listed
    history = [u for _, u in later.updates[:replayed]]
    kinds = [u.session_update for u in history]
    assert kinds[:2] == ["user_message_chunk", "agent_message_chunk"]
    assert history[0].content.text == "what do the notes say?"
    view = next(u for u in history if u.session_update == "tool_call")
    assert view.title == "Read notes.txt" and view.kind == "read"
    assert view.locations[0].path == str(ws / "notes.txt")
    result = next(u for u in history if u.session_update == "tool_call_update")
    assert "the answer is 42" in result.content[0].content.text
    assert history[-1].session_update == "agent_message_chunk" and history[-1].content.text == "It says 42."
    # the conversation went on from where it was
    messages = fake_llm.requests[2].messages
    assert [m["role"] for m in messages[1:]] == ["user", "assistant", "tool", "assistant", "user"]
    assert messages[-1]["content"] == "and again?"


def test_no_key_is_an_authentication_error_that_says_how_to_set_one(fake_llm: FakeLLM, home: Path, ws: Path) -> None:
    client = EditorClient()

    async def scenario() -> tuple[RequestError, RequestError]:
        async with running_agent(client, home, ws, fake_llm.base_url, env_extra={"KIMI_API_KEY": ""}) as (conn, _):
            with pytest.raises(RequestError) as created:
                await conn.new_session(cwd=str(ws), mcp_servers=[])
            with pytest.raises(RequestError) as authenticated:
                await conn.authenticate(method_id="kimi-api-key")
            return created.value, authenticated.value

    created, authenticated = run(scenario())
    assert created.code == -32000 and authenticated.code == -32000
    assert "KIMI_API_KEY" in str(created) and "config.toml" in str(created)


# -- modes -------------------------------------------------------------------------------------------


def test_plan_mode_refuses_writes_and_the_accepted_plan_leads_to_the_edit(fake_llm: FakeLLM, home: Path, ws: Path) -> None:
    (ws / "app.py").write_text("print('helo')\n")
    fix = ToolCall("strreplace", {"path": "app.py", "old_str": "helo", "new_str": "hello"})
    fake_llm.script(
        Reply(tool_calls=[fix]),  # in plan mode: refused, nobody asked
        Reply(tool_calls=[ToolCall("propose_plan", {"plan": "1. Fix the typo in app.py"})]),
        Reply(tool_calls=[fix]),  # accepted with edits allowed: runs without a question
        Reply(content="fixed"),
    )
    client = EditorClient()
    client.answers = ["start_auto_edit"]

    async def scenario() -> str:
        async with running_agent(client, home, ws, fake_llm.base_url) as (conn, _):
            session = await conn.new_session(cwd=str(ws), mcp_servers=[])
            await conn.set_session_mode(session_id=session.session_id, mode_id="plan")
            return (await conn.prompt(session_id=session.session_id, prompt=[text_block("fix the typo")])).stop_reason

    assert run(scenario()) == "end_turn"
    assert (ws / "app.py").read_text() == "print('hello')\n"
    planning, proposing, working, _ = fake_llm.chat_requests
    assert "propose_plan" in planning.tool_names() and "propose_plan" not in working.tool_names()
    assert "plan" in proposing.tool_results()[-1]["content"].lower()  # the refused edit told the model it plans
    [(question, options)] = client.permission_requests  # only the plan was asked about
    assert question.kind == "switch_mode" and "Fix the typo" in question.content[0].content.text
    assert [o.option_id for o in options] == ["start_ask", "start_auto_edit", "keep_planning"]
    assert [u.current_mode_id for u in client.of_kind("current_mode_update")] == ["agent"]
    approvals = [o for o in client.of_kind("config_option_update")[-1].config_options if o.id == "approvals"]
    assert approvals[0].current_value == "auto-edit"


def test_choosing_another_model_reaches_the_endpoint(fake_llm: FakeLLM, home: Path, ws: Path) -> None:
    fake_llm.script(Reply(content="one"), Reply(content="two"))
    client = EditorClient()

    async def scenario() -> None:
        async with running_agent(client, home, ws, fake_llm.base_url) as (conn, _):
            session = await conn.new_session(cwd=str(ws), mcp_servers=[])
            await conn.prompt(session_id=session.session_id, prompt=[text_block("one")])
            options = await conn.set_config_option(session_id=session.session_id, config_id="model", value="kimi-k2-thinking")
            assert [o.current_value for o in options.config_options if o.id == "model"] == ["kimi-k2-thinking"]
            await conn.prompt(session_id=session.session_id, prompt=[text_block("two")])

    run(scenario())
    assert [r.body["model"] for r in fake_llm.chat_requests] == ["kimi-k2.5", "kimi-k2-thinking"]


def test_set_mode_changes_the_tools_offered(fake_llm: FakeLLM, home: Path, ws: Path) -> None:
    fake_llm.script(Reply(content="agent"), Reply(content="instant"), Reply(content="swarm"))
    client = EditorClient()

    async def scenario() -> list[str]:
        async with running_agent(client, home, ws, fake_llm.base_url) as (conn, _):
            session = await conn.new_session(cwd=str(ws), mcp_servers=[])
            sid = session.session_id
            modes = [m.id for m in session.modes.available_modes]
            assert session.modes.current_mode_id == "agent"
            await conn.prompt(session_id=sid, prompt=[text_block("one")])
            await conn.set_session_mode(session_id=sid, mode_id="instant")
            await conn.prompt(session_id=sid, prompt=[text_block("two")])
            options = await conn.set_config_option(session_id=sid, config_id="mode", value="swarm")
            assert options.config_options[0].current_value == "swarm"
            await conn.prompt(session_id=sid, prompt=[text_block("three")])
            with pytest.raises(RequestError):
                await conn.set_session_mode(session_id=sid, mode_id="nonsense")
            return modes

    assert run(scenario()) == ["instant", "thinking", "agent", "swarm", "plan"]
    agent, instant, swarm = (set(r.tool_names()) for r in fake_llm.chat_requests)
    assert "screenshot" in agent and "spawn_agents" not in agent
    assert instant == SWE
    assert "spawn_agents" in swarm
    assert fake_llm.chat_requests[1].body["thinking"] == {"type": "disabled"}
    assert fake_llm.chat_requests[0].body["thinking"] == {"type": "enabled"}
    # the history went along: the instant-mode request still holds the first exchange
    assert [m.get("content") for m in fake_llm.chat_requests[1].messages if m["role"] == "user"] == ["one", "two"]
    assert [u.current_mode_id for u in client.of_kind("current_mode_update")] == ["swarm"]


def test_slash_commands_answer_without_the_model(fake_llm: FakeLLM, home: Path, ws: Path) -> None:
    client = EditorClient()

    async def scenario() -> None:
        async with running_agent(client, home, ws, fake_llm.base_url) as (conn, _):
            session = await conn.new_session(cwd=str(ws), mcp_servers=[])
            await conn.prompt(session_id=session.session_id, prompt=[text_block("/mode thinking")])
            await conn.prompt(session_id=session.session_id, prompt=[text_block("/compact")])
            await conn.prompt(session_id=session.session_id, prompt=[text_block("/cost")])

    run(scenario())
    assert not fake_llm.chat_requests
    text = client.agent_text()
    assert "Mode: thinking" in text and "screenshot" not in text and "Nothing to compact yet." in text
    assert "0 tool calls." in text and "$" not in text  # a local endpoint's prices are not known: no cost
    assert [u.current_mode_id for u in client.of_kind("current_mode_update")] == ["thinking"]


# -- the editor's files and terminals ----------------------------------------------------------------


def test_files_go_through_the_editor_when_it_offers_them(fake_llm: FakeLLM, home: Path, ws: Path) -> None:
    app = ws / "app.py"
    app.write_text("print('saved on disk')\n")
    fake_llm.script(
        Reply(tool_calls=[ToolCall("view", {"path": "app.py"})]),
        Reply(tool_calls=[ToolCall("strreplace", {"path": "app.py", "old_str": "unsaved", "new_str": "edited"})]),
        Reply(tool_calls=[ToolCall("createfile", {"path": "new.py", "content": "x = 1\n"})]),
        Reply(content="done"),
    )
    client = EditorClient(fs=True)
    client.buffers[str(app)] = "print('unsaved in the editor')\n"
    client.answers = ["allow_once", "allow_once"]

    async def scenario() -> None:
        async with running_agent(client, home, ws, fake_llm.base_url) as (conn, _):
            session = await conn.new_session(cwd=str(ws), mcp_servers=[])
            await conn.prompt(session_id=session.session_id, prompt=[text_block("edit app.py")])

    run(scenario())
    seen = fake_llm.requests[1].tool_results()[-1]["content"]
    assert "unsaved in the editor" in seen and "saved on disk" not in seen
    assert client.writes == [(str(app), "print('edited in the editor')\n"), (str(ws / "new.py"), "x = 1\n")]
    assert app.read_text() == "print('saved on disk')\n"  # the editor saves; kimicode did not touch the disk
    assert not (ws / "new.py").exists()
    # the approval showed the diff it would make, and the call ends with the diff it made
    preview = client.permission_requests[0][0].content[0]
    assert preview.type == "diff" and preview.old_text == "print('unsaved in the editor')\n"
    assert preview.new_text == "print('edited in the editor')\n"
    edit = client.of_kind("tool_call")[1]
    assert edit.kind == "edit" and edit.title == "Edit app.py"
    final = client.tool_updates(edit.tool_call_id)[-1]
    assert final.status == "completed" and final.content[0].new_text == "print('edited in the editor')\n"
    assert final.locations[0].path == str(app) and final.locations[0].line == 1


def test_edit_diffs_and_lines_without_editor_files(fake_llm: FakeLLM, home: Path, ws: Path) -> None:
    (ws / "m.py").write_text("a = 1\nb = 2\nc = 3\n")
    fake_llm.script(
        Reply(tool_calls=[ToolCall("strreplace", {"path": "m.py", "old_str": "c = 3", "new_str": "c = 30"})]),
        Reply(content="done"),
    )
    client = EditorClient()

    async def scenario() -> None:
        async with running_agent(client, home, ws, fake_llm.base_url, "-y") as (conn, _):
            session = await conn.new_session(cwd=str(ws), mcp_servers=[])
            await conn.prompt(session_id=session.session_id, prompt=[text_block("edit")])

    run(scenario())
    assert (ws / "m.py").read_text() == "a = 1\nb = 2\nc = 30\n"
    final = client.tool_updates(client.of_kind("tool_call")[0].tool_call_id)[-1]
    assert final.content[0].old_text == "a = 1\nb = 2\nc = 3\n" and final.content[0].new_text.endswith("c = 30\n")
    assert final.locations[0].line == 3


def test_commands_run_in_the_editors_terminal(fake_llm: FakeLLM, home: Path, ws: Path) -> None:
    fake_llm.script(
        Reply(tool_calls=[ToolCall("bash", {"command": "echo from-the-terminal; exit 3"})]),
        Reply(tool_calls=[ToolCall("bash", {"command": "echo $$ > pid; sleep 60"})]),
    )
    client = EditorClient(terminal=True)

    async def scenario() -> str:
        async with running_agent(client, home, ws, fake_llm.base_url, "-y", "--sandbox", "off") as (conn, _):
            session = await conn.new_session(cwd=str(ws), mcp_servers=[])
            turn = asyncio.create_task(conn.prompt(session_id=session.session_id, prompt=[text_block("run")]))
            await wait_until(lambda: (ws / "pid").is_file() and (ws / "pid").read_text().strip() != "")
            await conn.cancel(session_id=session.session_id)
            return (await turn).stop_reason

    assert run(scenario()) == "cancelled"
    first = client.created_terminals[0]
    assert first["args"][-1] == "echo from-the-terminal; exit 3" and first["cwd"] == str(ws)
    assert first["env"].get("KIMI_API_KEY") == ""  # the model's key is blanked in the editor's terminal too
    result = fake_llm.requests[1].tool_results()[0]["content"]
    assert "from-the-terminal" in result and "[exit code: 3]" in result
    call = client.of_kind("tool_call")[0].tool_call_id
    assert any(c.type == "terminal" for u in client.tool_updates(call) for c in (u.content or []))
    assert client.kills == ["term-2"]  # the cancelled command was killed in the editor
    assert gone(int((ws / "pid").read_text()))


# -- MCP, media, protocol errors, stdout -------------------------------------------------------------


def test_mcp_servers_passed_by_the_editor(fake_llm: FakeLLM, home: Path, ws: Path) -> None:
    marker = f"editor-{os.getpid()}-{time.monotonic_ns()}"
    server = McpServerStdio(name="demo", command=sys.executable, args=[str(DEMO_SERVER), "--name", marker], env=[])
    fake_llm.script(Reply(tool_calls=[ToolCall("mcp__demo__echo", {"text": "hello from the editor's server"})]), Reply(content="ok"))
    client = EditorClient()

    async def scenario() -> None:
        async with running_agent(client, home, ws, fake_llm.base_url) as (conn, _):
            session = await conn.new_session(cwd=str(ws), mcp_servers=[server])
            await conn.prompt(session_id=session.session_id, prompt=[text_block("echo")])

    run(scenario())
    assert "mcp__demo__echo" in fake_llm.requests[0].tool_names()
    assert fake_llm.requests[1].tool_results()[0]["content"].strip() == "hello from the editor's server"
    assert not client.permission_requests  # echo is read-only: it runs unasked, as in the REPL
    assert not live_processes_with(marker)  # the server ended with the agent


def test_an_image_and_a_file_in_the_prompt_reach_the_model(fake_llm: FakeLLM, home: Path, ws: Path) -> None:
    png = red_square_png()
    (ws / "spec.md").write_text("# Spec\nbuttons are red\n")
    fake_llm.script(Reply(content="It is red."))
    client = EditorClient()

    async def scenario() -> None:
        async with running_agent(client, home, ws, fake_llm.base_url) as (conn, _):
            session = await conn.new_session(cwd=str(ws), mcp_servers=[])
            blocks = [
                text_block("what colour? see"),
                resource_link_block("spec.md", (ws / "spec.md").as_uri()),
                image_block(base64.b64encode(png).decode(), "image/png"),
            ]
            await conn.prompt(session_id=session.session_id, prompt=blocks)

    run(scenario())
    content = fake_llm.requests[0].messages[-1]["content"]
    urls = [p["image_url"]["url"] for p in content if p["type"] == "image_url"]
    assert urls == ["data:image/png;base64," + base64.b64encode(png).decode()]
    text = "".join(p.get("text", "") for p in content if p["type"] == "text")
    assert "what colour? see @spec.md" in text and '<file path="spec.md">' in text and "buttons are red" in text


def test_a_malformed_request_gets_a_json_rpc_error_and_the_session_stays_usable(fake_llm: FakeLLM, home: Path, ws: Path) -> None:
    fake_llm.script(Reply(content="fine"))
    client = EditorClient()
    seen: list[dict[str, Any]] = []

    def observe(event: Any) -> None:
        if event.direction.value == "incoming":
            seen.append(event.message)

    async def scenario() -> str:
        async with running_agent(client, home, ws, fake_llm.base_url, observers=[observe]) as (conn, process):
            session = await conn.new_session(cwd=str(ws), mcp_servers=[])
            sid = session.session_id
            assert process.stdin is not None
            process.stdin.write(b'{"jsonrpc": "2.0", "id": 900, "method": "session/prompt", "params": {"sessionId": "%s", "prompt": "not a list"}}\n' % sid.encode())
            process.stdin.write(b"this is not json\n")
            process.stdin.write(b"[1, 2, 3]\n")
            process.stdin.write(b'{"jsonrpc": "2.0", "id": 901, "method": "no/such_method", "params": {}}\n')
            await process.stdin.drain()
            await wait_until(lambda: len([m for m in seen if "error" in m]) >= 4)
            return (await conn.prompt(session_id=sid, prompt=[text_block("still ok?")])).stop_reason

    assert run(scenario()) == "end_turn"
    errors = {m["id"]: m["error"]["code"] for m in seen if "error" in m and m["id"] is not None}
    assert errors == {900: -32602, 901: -32601}
    nulls = sorted(m["error"]["code"] for m in seen if "error" in m and m["id"] is None)
    assert nulls == [-32700, -32600]
    assert client.agent_text() == "fine"


def test_stdout_carries_only_protocol_messages(fake_llm: FakeLLM, home: Path, ws: Path, tmp_path: Path) -> None:
    noisy = tmp_path / "noisy"
    noisy.mkdir()
    # Something in the process that prints to stdout while it serves: Python-level and raw fd 1.
    (noisy / "sitecustomize.py").write_text(
        "import os, signal, sys\n"
        "def noise(*_):\n"
        "    print('noise from a library')\n"
        "    sys.stdout.flush()\n"
        "    os.write(1, b'raw noise on fd 1\\n')\n"
        "    sys.stderr.write('noise done\\n')\n"
        "    sys.stderr.flush()\n"
        "signal.signal(signal.SIGUSR1, noise)\n"
    )
    env = cli_env(home, fake_llm.base_url)
    env["PYTHONPATH"] = f"{noisy}{os.pathsep}{env['PYTHONPATH']}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "kimicode", "acp"], cwd=ws, env=env,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    proc.stdin.write(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": 1}}).encode() + b"\n")
    proc.stdin.flush()
    first = proc.stdout.readline()  # serving now: the noise comes while the connection is up
    proc.send_signal(signal.SIGUSR1)
    err = b""
    while b"noise done" not in err:
        line = proc.stderr.readline()
        assert line, "the process ended before making its noise"
        err += line
    last = json.dumps({"jsonrpc": "2.0", "id": 2, "method": "session/list", "params": {}}).encode() + b"\n"
    out, rest = proc.communicate(last, timeout=60)
    err += rest
    lines = [first.decode().strip(), *out.decode().splitlines()]
    assert [json.loads(line)["id"] for line in lines] == [1, 2]
    assert json.loads(lines[0])["result"]["protocolVersion"] == 1
    assert b"noise from a library" in err and b"raw noise on fd 1" in err
    assert proc.returncode == 0


def test_initialize_claims_what_is_there(fake_llm: FakeLLM, home: Path, ws: Path) -> None:
    env = cli_env(home, fake_llm.base_url)
    request = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": 7}})
    done = subprocess.run(
        [sys.executable, "-m", "kimicode", "acp"], cwd=ws, env=env, input=request + "\n",
        capture_output=True, text=True, timeout=60,
    )
    result = json.loads(done.stdout)["result"]
    assert result["protocolVersion"] == 1  # the version it speaks, whatever was asked
    caps = result["agentCapabilities"]
    assert caps["loadSession"] is True
    assert caps["promptCapabilities"] == {"image": True, "audio": False, "embeddedContext": True}
    assert caps["mcpCapabilities"] == {"http": True, "sse": True}
    assert caps["sessionCapabilities"]["list"] == {}
    assert result["authMethods"][0]["id"] == "kimi-api-key"
    assert (home / "logs" / "acp.log").is_file()


def test_the_plan_follows_the_todo_list() -> None:
    from kimicode.frontends.acp.updates import plan_entries

    entries = plan_entries([
        {"content": "read the code", "status": "done"},
        {"content": "fix the bug", "status": "in_progress"},
        {"content": "run the tests", "status": "pending"},
    ])
    assert [(e.content, e.status) for e in entries] == [
        ("read the code", "completed"), ("fix the bug", "in_progress"), ("run the tests", "pending")
    ]


def test_an_untrusted_folder_widens_nothing_and_the_thread_says_so(fake_llm: FakeLLM, home: Path, ws: Path) -> None:
    # The repository tries to turn approvals off, allow everything and start its own server.
    (ws / ".kimicode").mkdir()
    (ws / ".kimicode" / "config.toml").write_text('yolo = true\n[permissions]\nallow = ["bash(*)"]\n')
    marker = f"project-{os.getpid()}-{time.monotonic_ns()}"
    (ws / ".mcp.json").write_text(json.dumps({"mcpServers": {"planted": {"command": sys.executable, "args": [str(DEMO_SERVER), "--name", marker]}}}))
    fake_llm.script(Reply(tool_calls=[ToolCall("bash", {"command": "touch planted"})]), Reply(content="ok"))
    client = EditorClient()
    client.answers = ["reject"]

    async def scenario() -> None:
        async with running_agent(client, home, ws, fake_llm.base_url) as (conn, _):
            session = await conn.new_session(cwd=str(ws), mcp_servers=[])
            await conn.prompt(session_id=session.session_id, prompt=[text_block("go")])
            assert not live_processes_with(marker)

    run(scenario())
    assert len(client.permission_requests) == 1 and not (ws / "planted").exists()
    assert not any(name.startswith("mcp__planted") for name in fake_llm.requests[0].tool_names())
    notice = client.agent_text()
    assert "not trusted" in notice and "yolo = true" in notice and "kimicode trust" in notice


def test_a_rejected_key_or_a_failing_model_is_an_error_for_that_prompt_only(fake_llm: FakeLLM, home: Path, ws: Path) -> None:
    fake_llm.script(Reply(fault=Fault.auth()), Reply(fault=Fault.http(500)), Reply(fault=Fault.http(500)), Reply(content="back"))
    client = EditorClient()

    async def scenario() -> tuple[RequestError, RequestError, str]:
        async with running_agent(client, home, ws, fake_llm.base_url) as (conn, _):
            session = await conn.new_session(cwd=str(ws), mcp_servers=[])
            sid = session.session_id
            with pytest.raises(RequestError) as rejected:
                await conn.prompt(session_id=sid, prompt=[text_block("one")])
            with pytest.raises(RequestError) as failed:
                await conn.prompt(session_id=sid, prompt=[text_block("two")])
            return rejected.value, failed.value, (await conn.prompt(session_id=sid, prompt=[text_block("three")])).stop_reason

    rejected, failed, after = run(scenario())
    assert rejected.code == -32000 and "rejected the API key" in str(rejected)
    assert failed.code == -32603 and "500" in str(failed)
    assert after == "end_turn" and client.agent_text().endswith("back")
