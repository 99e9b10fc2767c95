"""SessionStart fires as a session opens (REPL start, ``-C`` resume, ``/clear``, ``kimicode -p``, ACP's
new and loaded sessions) with Claude Code's ``source``, its context still going into the first request; a
long turn's end notification fires the Notification hook; PostToolUse's ``continue: false`` ends the turn."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from acp import text_block

from tests.acpclient import EditorClient, running_agent
from tests.clirun import write_home_config
from tests.fake_llm import FakeLLM, Reply, ToolCall
from tests.hookscript import QUICK, kimicode, last_content, script
from tests.replpty import Repl

pytestmark = pytest.mark.quick_retries


def hook(event: str, command: str, matcher: str = "") -> str:
    return f"[[hooks.{event}]]\nmatcher = {json.dumps(matcher)}\ncommand = {json.dumps(command)}\n"


def session_start_hook(tmp_path: Path, log: Path) -> str:
    """Logs what it is handed; says it ran (to the user) and adds ``context-<source>`` (for the model)."""
    return script(tmp_path, "start_hook.py", (
        "data = json.load(sys.stdin)\n"
        f"open({str(log)!r}, 'a').write(json.dumps(data) + '\\n')\n"
        "source = data['source']\n"
        "print(json.dumps({'systemMessage': 'session opened: ' + source,\n"
        "                  'hookSpecificOutput': {'hookEventName': 'SessionStart', 'additionalContext': 'context-' + source}}))\n"
    ))


def logger(tmp_path: Path, log: Path) -> str:
    return script(tmp_path, "log_hook.py", f"open({str(log)!r}, 'a').write(sys.stdin.read().strip() + '\\n')\n")


def logged(log: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def wait_logged(log: Path, count: int) -> list[dict[str, object]]:
    """Nobody waits on these hooks for an answer: wait for the log to hold ``count`` lines (bounded)."""
    deadline = time.monotonic() + 30
    while len(logged(log)) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return logged(log)


def test_repl_fires_session_start_at_start_and_clear_before_any_prompt(
    spawn: Callable[..., Repl], fake_llm: FakeLLM, home: Path, tmp_path: Path
) -> None:
    log = tmp_path / "starts.jsonl"
    write_home_config(home, QUICK + hook("SessionStart", session_start_hook(tmp_path, log)))
    fake_llm.script(Reply(content="hello back"))
    repl = spawn()
    repl.expect("session opened: startup")
    repl.wait_prompt()
    repl.send_line("/clear")
    repl.expect("session opened: clear")
    repl.wait_prompt()
    repl.send_line("hello")
    repl.expect("hello back")
    repl.wait_prompt()
    repl.send_line("/exit")
    assert repl.wait_exit() == 0
    sent = last_content(fake_llm, 0)
    assert "context-clear" in sent and "context-startup" not in sent
    assert [e["source"] for e in logged(log)] == ["startup", "clear"]


def test_repl_resume_and_headless_runs_fire_session_start_with_their_source(
    spawn: Callable[..., Repl], fake_llm: FakeLLM, home: Path, workspace: Path, tmp_path: Path
) -> None:
    log = tmp_path / "starts.jsonl"
    write_home_config(home, QUICK + hook("SessionStart", session_start_hook(tmp_path, log)))
    fake_llm.script(Reply(content="first answer"), Reply(content="second answer"))
    first = kimicode(fake_llm, home, workspace, "-p", "one")
    assert first.returncode == 0, first.stderr
    assert "context-startup" in last_content(fake_llm, 0)
    second = kimicode(fake_llm, home, workspace, "-p", "-C", "two")
    assert second.returncode == 0, second.stderr
    assert "context-resume" in last_content(fake_llm, 1)
    repl = spawn("-C")
    repl.expect("session opened: resume")
    repl.wait_prompt()
    repl.send_line("/exit")
    assert repl.wait_exit() == 0
    events = logged(log)
    assert [e["source"] for e in events] == ["startup", "resume", "resume"]
    assert len({e["session_id"] for e in events}) == 1  # the same session, resumed twice


def test_acp_new_and_loaded_sessions_fire_session_start_before_any_prompt(
    fake_llm: FakeLLM, home: Path, workspace: Path, tmp_path: Path
) -> None:
    log = tmp_path / "starts.jsonl"
    write_home_config(home, QUICK + hook("SessionStart", session_start_hook(tmp_path, log)))
    fake_llm.script(Reply(content="answered"))
    seen: list[list[dict[str, object]]] = []

    async def scenario() -> None:
        async with running_agent(EditorClient(), home, workspace, fake_llm.base_url) as (conn, _):
            session = await conn.new_session(cwd=str(workspace), mcp_servers=[])
            seen.append(await asyncio.to_thread(wait_logged, log, 1))
            await conn.prompt(session_id=session.session_id, prompt=[text_block("go")])
        async with running_agent(EditorClient(), home, workspace, fake_llm.base_url) as (conn, _):
            await conn.load_session(cwd=str(workspace), session_id=session.session_id, mcp_servers=[])
            seen.append(await asyncio.to_thread(wait_logged, log, 2))

    asyncio.run(asyncio.wait_for(scenario(), 120))
    assert [e["source"] for e in seen[0]] == ["startup"]  # before the prompt
    assert [e["source"] for e in seen[1]] == ["startup", "resume"]
    assert "context-startup" in last_content(fake_llm, 0)


def test_a_long_turn_ending_fires_the_notification_hook(
    spawn: Callable[..., Repl], fake_llm: FakeLLM, home: Path, tmp_path: Path
) -> None:
    log = tmp_path / "notices.jsonl"
    write_home_config(home, QUICK + "notify_after = 1\n" + hook("Notification", logger(tmp_path, log)))
    fake_llm.script(Reply(content="Finally done", delay=1.5))
    repl = spawn(env={"TERM_PROGRAM": "iTerm.app"})
    repl.wait_prompt()
    repl.send_line("slow one")
    repl.expect("Finally done")
    repl.wait_prompt()
    events = wait_logged(log, 1)
    repl.send_line("/exit")
    assert repl.wait_exit() == 0
    assert len(events) == 1, events
    assert events[0]["notification_type"] == "idle_prompt"
    assert "done after" in str(events[0]["message"]) and "Finally done" in str(events[0]["message"])


def test_post_tool_use_continue_false_ends_the_turn_after_the_call(
    fake_llm: FakeLLM, home: Path, workspace: Path
) -> None:
    stop = {"continue": False, "stopReason": "the build must be reviewed first"}
    write_home_config(home, QUICK + hook("PostToolUse", f"echo '{json.dumps(stop)}'", "Bash"))
    fake_llm.script(
        Reply(tool_calls=[ToolCall("bash", {"command": "touch ran.txt"})]),
        Reply(content="the model was asked again"),
    )
    proc = kimicode(fake_llm, home, workspace, "-p", "-y", "--sandbox", "off", "--output-format", "json", "build")
    assert proc.returncode == 0, proc.stderr
    assert (workspace / "ran.txt").exists()
    assert len(fake_llm.chat_requests) == 1
    assert "the build must be reviewed first" in proc.stderr + proc.stdout
    assert "the model was asked again" not in proc.stdout
