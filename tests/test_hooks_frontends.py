"""Hooks fire in every front end from the core: the REPL (in a pty), ACP (driven by the SDK's client side)
and swarm sub-agents, each against the scripted model server."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

from acp import text_block

from tests.acpclient import EditorClient, running_agent
from tests.clirun import run_cli, write_home_config
from tests.fake_llm import FakeLLM, RecordedRequest, Reply, ToolCall
from tests.replpty import Repl
from tests.swarm_script import is_sub_agent, steps_done

QUICK = "retry_base_delay = 0.01\nmax_retries = 1\n"


def hook(event: str, command: str, matcher: str = "") -> str:
    """A [[hooks.EVENT]] table of config.toml (JSON strings are TOML basic strings)."""
    return f"[[hooks.{event}]]\nmatcher = {json.dumps(matcher)}\ncommand = {json.dumps(command)}\n"


def logger(tmp_path: Path, log: Path) -> str:
    """A hook that appends the JSON it is handed to ``log``."""
    script = tmp_path / "log_hook.py"
    script.write_text(f"import sys\nopen({str(log)!r}, 'a').write(sys.stdin.read().strip() + '\\n')\n")
    return f"{sys.executable} {script}"


def logged(log: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


BLOCK_BASH = "echo 'commands wait for the review' >&2; exit 2"


def test_repl_fires_prompt_tool_and_session_end_hooks_and_lists_them(
    spawn, fake_llm: FakeLLM, home: Path, workspace: Path, tmp_path: Path
) -> None:
    log = tmp_path / "events.jsonl"
    write_home_config(home, QUICK + hook("UserPromptSubmit", "echo remember the style guide")
                      + hook("PreToolUse", BLOCK_BASH, "Bash") + hook("SessionEnd", logger(tmp_path, log))
                      + hook("PreCompact", logger(tmp_path, log), "manual"))
    fake_llm.script(Reply(tool_calls=[ToolCall("bash", {"command": "touch ran.txt"})]), Reply(content="Waiting then"))
    repl: Repl = spawn()
    repl.wait_prompt()
    repl.send_line("/hooks")
    repl.expect("SessionEnd")
    repl.wait_prompt()
    repl.send_line("make a file")
    repl.expect("Waiting then")
    repl.wait_prompt()
    repl.send_line("/compact keep the file names")
    repl.wait_prompt()
    repl.send_line("/exit")
    assert repl.wait_exit() == 0
    assert "PreToolUse" in repl.transcript and "[config.toml]" in repl.transcript
    assert "remember the style guide" in str(fake_llm.chat_requests[0].messages[-1]["content"])
    assert "commands wait for the review" in str(fake_llm.chat_requests[1].messages[-1]["content"])
    assert not (workspace / "ran.txt").exists()
    events = logged(log)
    assert [e["hook_event_name"] for e in events] == ["PreCompact", "SessionEnd"]
    assert (events[0]["trigger"], events[0]["custom_instructions"]) == ("manual", "keep the file names")


def test_acp_fires_hooks_and_a_notification_when_it_asks(
    fake_llm: FakeLLM, home: Path, tmp_path: Path
) -> None:
    ws = tmp_path / "proj"
    ws.mkdir()
    log = tmp_path / "events.jsonl"
    ask = {"hookSpecificOutput": {"permissionDecision": "ask", "permissionDecisionReason": "reads are audited"}}
    write_home_config(home, QUICK + hook("PreToolUse", BLOCK_BASH, "Bash") + hook("Notification", logger(tmp_path, log))
                      + hook("PostToolUse", "echo checked by the linter; exit 2", "Write")
                      + hook("PreToolUse", f"echo '{json.dumps(ask)}'", "Read"))
    (ws / "notes.txt").write_text("private\n")
    fake_llm.script(
        Reply(tool_calls=[ToolCall("view", {"path": "notes.txt"})]),  # read-only, yet the hook asks
        Reply(tool_calls=[ToolCall("bash", {"command": "touch ran.txt"})]),
        Reply(tool_calls=[ToolCall("createfile", {"path": "a.txt", "content": "a\n"})]),
        Reply(content="done"),
    )
    client = EditorClient()
    client.answers = ["reject", "allow_once"]

    async def scenario() -> None:
        async with running_agent(client, home, ws, fake_llm.base_url) as (conn, _):
            session = await conn.new_session(cwd=str(ws), mcp_servers=[])
            await conn.prompt(session_id=session.session_id, prompt=[text_block("go")])
            deadline = time.monotonic() + 30
            while len(logged(log)) < 2 and time.monotonic() < deadline:  # nobody waits on a notification hook
                await asyncio.sleep(0.05)

    asyncio.run(asyncio.wait_for(scenario(), 120))
    asked = [request.title for request, _ in client.permission_requests]
    assert len(asked) == 2 and "notes.txt" in asked[0]
    assert "did not approve" in str(fake_llm.chat_requests[1].messages[-1]["content"])
    assert "private" not in str(fake_llm.chat_requests[1].messages)
    assert not (ws / "ran.txt").exists()
    assert "commands wait for the review" in str(fake_llm.chat_requests[2].messages[-1]["content"])
    assert (ws / "a.txt").read_text() == "a\n"  # asked (the notification), approved, written
    assert "checked by the linter" in str(fake_llm.chat_requests[3].messages[-1]["content"])
    notices = [str(n["message"]) for n in logged(log)]
    assert any("view" in n for n in notices) and any("createfile" in n for n in notices)


def test_a_swarm_sub_agent_fires_tool_hooks_and_subagent_stop(fake_llm: FakeLLM, home: Path, tmp_path: Path) -> None:
    ws = tmp_path / "proj"
    ws.mkdir()
    log = tmp_path / "events.jsonl"
    write_home_config(home, QUICK + hook("PreToolUse", BLOCK_BASH, "Bash") + hook("SubagentStop", logger(tmp_path, log))
                      + hook("Stop", logger(tmp_path, log)))

    def responder(request: RecordedRequest) -> Reply:
        done = steps_done(request)
        if not is_sub_agent(request):
            if done == 0:
                agents = [{"role": "builder", "task": "TASK-1: touch out.txt with bash, then submit"}]
                return Reply(tool_calls=[ToolCall("spawn_agents", {"agents": agents})])
            return Reply(content="all done")
        if done == 0:
            return Reply(tool_calls=[ToolCall("bash", {"command": "touch out.txt"})])
        return Reply(tool_calls=[ToolCall("submit", {"summary": "could not run it"})])

    fake_llm.responder = responder
    proc = run_cli(["-p", "-y", "--mode", "swarm", "build"], home=home, cwd=ws, base_url=fake_llm.base_url, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert not (ws / "out.txt").exists()
    sub_second = [r for r in fake_llm.chat_requests if is_sub_agent(r) and steps_done(r) == 1][0]
    assert "commands wait for the review" in str(sub_second.messages[-1]["content"])
    events = [e["hook_event_name"] for e in logged(log)]
    assert events == ["SubagentStop", "Stop"]  # the sub-agent's end, then the orchestrator's
