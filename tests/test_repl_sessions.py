"""Sessions that survive a kill, resuming in headless and REPL runs, `kimicode sessions`, compaction."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from tests.clirun import run_cli
from tests.fake_llm import Fault, FakeLLM, Reply, ToolCall
from tests.replpty import Repl

# KIMICODE_HOME with quick retries (conftest's home): a faulty reply fails in milliseconds.
pytestmark = pytest.mark.quick_retries


def session_files(home: Path) -> list[Path]:
    return sorted((home / "sessions").glob("*/*.jsonl"))


def test_kill_9_then_continue_carries_the_earlier_messages(fake_llm: FakeLLM, home: Path, workspace: Path) -> None:
    fake_llm.script(
        Reply(content="The first answer"),
        Reply(tool_calls=[ToolCall("bash", {"command": "echo tool-output-before-kill"})]),
        Reply(content="never finished", fault=Fault.hang()),
    )
    repl = Repl(home, workspace, fake_llm.base_url, "-y")
    try:
        repl.wait_prompt()
        repl.send_line("first question")
        repl.expect("The first answer")
        repl.wait_prompt()
        repl.send_line("second question")
        repl.expect("tool-output-before-kill")
        assert fake_llm.wait_for_requests(3)
        os.kill(repl.child.pid, signal.SIGKILL)
        repl.child.expect(__import__("pexpect").EOF)
    finally:
        repl.close()

    fake_llm.script(Reply(content="continued fine"))
    proc = run_cli(["-C", "-p", "third question"], home=home, cwd=workspace, base_url=fake_llm.base_url)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "continued fine"
    messages = fake_llm.chat_requests[-1].messages
    texts = [m.get("content") for m in messages]
    assert texts[1:3] == ["first question", "The first answer"]
    assert "second question" in texts
    assert any("tool-output-before-kill" in str(t) for t in texts)
    assert messages[-1] == {"role": "user", "content": "third question"}
    assert len(session_files(home)) == 1  # -C appended to the same log


def test_resume_by_id_and_sessions_listing(fake_llm: FakeLLM, home: Path, workspace: Path) -> None:
    fake_llm.script(Reply(content="alpha answer"), Reply(content="beta answer"), Reply(content="resumed alpha"))
    assert run_cli(["-p", "alpha task"], home=home, cwd=workspace, base_url=fake_llm.base_url).returncode == 0
    assert run_cli(["-p", "beta task"], home=home, cwd=workspace, base_url=fake_llm.base_url).returncode == 0
    listing = run_cli(["sessions"], home=home, cwd=workspace)
    assert listing.returncode == 0, listing.stderr
    lines = [line for line in listing.stdout.splitlines() if "task" in line]
    assert "beta task" in lines[0] and "alpha task" in lines[1]  # newest first
    alpha_id = lines[1].split()[0]
    proc = run_cli(["-r", alpha_id, "-p", "again", "--output-format", "json"], home=home, cwd=workspace,
                   base_url=fake_llm.base_url)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["session_id"] == alpha_id
    contents = [m.get("content") for m in fake_llm.chat_requests[-1].messages]
    assert "alpha task" in contents and "beta task" not in contents
    missing = run_cli(["-r", "nosuchsession", "-p", "x"], home=home, cwd=workspace, base_url=fake_llm.base_url)
    assert missing.returncode == 2 and "no session" in missing.stderr


def test_repl_continue_shows_resumed_session(fake_llm: FakeLLM, home: Path, workspace: Path) -> None:
    fake_llm.script(Reply(content="first run answer"), Reply(content="second run answer"))
    assert run_cli(["-p", "from headless"], home=home, cwd=workspace, base_url=fake_llm.base_url).returncode == 0
    repl = Repl(home, workspace, fake_llm.base_url, "-C")
    try:
        repl.expect("resumed session")
        repl.wait_prompt()
        repl.send_line("and now interactively")
        repl.expect("second run answer")
    finally:
        repl.close()
    contents = [m.get("content") for m in fake_llm.chat_requests[-1].messages]
    assert contents[1:4] == ["from headless", "first run answer", "and now interactively"]


def test_cut_last_line_is_skipped_with_a_warning(fake_llm: FakeLLM, home: Path, workspace: Path) -> None:
    fake_llm.script(Reply(content="one"), Reply(content="two"))
    assert run_cli(["-p", "start"], home=home, cwd=workspace, base_url=fake_llm.base_url).returncode == 0
    [log] = session_files(home)
    with log.open("ab") as f:
        f.write(b'{"type":"message","message":{"role":"user","cont')
    proc = run_cli(["-C", "-p", "go on"], home=home, cwd=workspace, base_url=fake_llm.base_url)
    assert proc.returncode == 0, proc.stderr
    assert "unreadable" in proc.stderr
    assert [m.get("content") for m in fake_llm.chat_requests[-1].messages][1:] == ["start", "one", "go on"]


def test_api_key_never_reaches_the_session_log(fake_llm: FakeLLM, home: Path, workspace: Path) -> None:
    secret = "sk-this-is-a-long-secret-key-123"
    fake_llm.script(Reply(content=f"echoing {secret}"))
    proc = run_cli(["-p", f"my key is {secret}"], home=home, cwd=workspace, base_url=fake_llm.base_url,
                   env_extra={"KIMI_API_KEY": secret})
    assert proc.returncode == 0, proc.stderr
    [log] = session_files(home)
    assert secret not in log.read_text()


def _big_output_command(tag: str) -> str:
    return f"python3 -c \"print('{tag}' * 2000)\""


def test_compaction_crossing_the_threshold(fake_llm: FakeLLM, home: Path, workspace: Path) -> None:
    near_full = {"prompt_tokens": 230_000, "completion_tokens": 100}  # 88% of kimi-k2.5's 262,144
    fake_llm.script(
        Reply(tool_calls=[ToolCall("bash", {"command": _big_output_command("old-one ")})]),
        Reply(tool_calls=[ToolCall("bash", {"command": _big_output_command("old-two ")})]),
        Reply(tool_calls=[ToolCall("bash", {"command": "echo recent-step-output"})], usage=near_full),
        Reply(content="SUMMARY: ran two big commands; next check the recent step."),
        Reply(content="finished after compaction"),
    )
    proc = run_cli(["-p", "-y", "do a long task", "--output-format", "stream-json"], home=home, cwd=workspace,
                   base_url=fake_llm.base_url)
    assert proc.returncode == 0, proc.stderr
    requests = fake_llm.chat_requests
    assert len(requests) == 5
    summary_request = requests[3]
    assert not summary_request.body.get("tools")
    assert "old-one" in summary_request.messages[-1]["content"]  # the old history went to the summariser
    after = requests[4]
    assert len(after.raw) < len(requests[2].raw) / 2
    sent = json.dumps(after.messages)
    assert "SUMMARY: ran two big commands" in sent
    assert "recent-step-output" in sent and "echo recent-step-output" in sent  # recent step kept verbatim
    assert "old-one old-one" not in sent
    assert after.messages[0]["role"] == "system"
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    compacted = [e for e in events if e["type"] == "compacted"]
    assert compacted and compacted[0]["tokens_after"] < compacted[0]["tokens_before"]
    # the session log replays to the compacted history
    fake_llm.script(Reply(content="resumed"))
    assert run_cli(["-C", "-p", "more"], home=home, cwd=workspace, base_url=fake_llm.base_url).returncode == 0
    resumed = json.dumps(fake_llm.chat_requests[-1].messages)
    assert "SUMMARY: ran two big commands" in resumed and "old-one old-one" not in resumed


def test_context_overflow_error_compacts_and_retries(fake_llm: FakeLLM, home: Path, workspace: Path) -> None:
    fake_llm.script(
        Reply(tool_calls=[ToolCall("bash", {"command": _big_output_command("early ")})]),
        Reply(tool_calls=[ToolCall("bash", {"command": "echo latest"})]),
        Reply(fault=Fault.token_limit()),
        Reply(content="SUMMARY-AFTER-OVERFLOW"),
        Reply(content="recovered"),
    )
    proc = run_cli(["-p", "-y", "task"], home=home, cwd=workspace, base_url=fake_llm.base_url)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "recovered"
    assert "compacted" in proc.stderr
    final = json.dumps(fake_llm.chat_requests[-1].messages)
    assert "SUMMARY-AFTER-OVERFLOW" in final and "early early" not in final


def test_compact_command_in_the_repl(fake_llm: FakeLLM, home: Path, workspace: Path) -> None:
    fake_llm.script(
        Reply(tool_calls=[ToolCall("bash", {"command": _big_output_command("bulk ")})]),
        Reply(content="first done"),
        Reply(content="second done"),
        Reply(content="SUMMARY-ON-DEMAND"),
    )
    repl = Repl(home, workspace, fake_llm.base_url, "-y")
    try:
        repl.wait_prompt()
        repl.send_line("one")
        repl.expect("first done")
        repl.wait_prompt()
        repl.send_line("two")
        repl.expect("second done")
        repl.wait_prompt()
        repl.send_line("/compact")
        repl.expect("context compacted")
    finally:
        repl.close()
    assert "bulk bulk" in fake_llm.chat_requests[-1].messages[-1]["content"]
