"""End-to-end: the real interactive kimicode in a pty against the scripted model server."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from kimicode.frontends.repl.history import history_path
from tests.fake_llm import FakeLLM, Reply, ToolCall
from tests.replpty import Repl, processes_with, wait_until

# KIMICODE_HOME with quick retries (conftest's home): a faulty reply fails in milliseconds.
pytestmark = pytest.mark.quick_retries


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "proj"
    ws.mkdir()
    (ws / "notes.txt").write_text("original line\n")
    return ws


def test_two_turn_conversation_then_exit(spawn, fake_llm: FakeLLM, home: Path, workspace: Path) -> None:
    fake_llm.script(Reply(reasoning="Greet back.", content="Hello from the model"), Reply(content="Second answer here"))
    repl: Repl = spawn()
    repl.wait_prompt()
    repl.send_line("first question")
    assert "Hello from the model" in repl.expect("Hello from the model")
    repl.wait_prompt()
    repl.send_line("second question")
    repl.expect("Second answer here")
    repl.wait_prompt()
    repl.send_line("/exit")
    assert repl.wait_exit() == 0
    second = fake_llm.chat_requests[1].messages
    assert [m["role"] for m in second] == ["system", "user", "assistant", "user"]
    assert second[1]["content"] == "first question"
    assert second[2]["content"] == "Hello from the model"
    assert second[3]["content"] == "second question"
    # the thinking was shown (dim) and this workspace's history file keeps what was typed
    assert "Greet back." in repl.transcript
    assert "first question" in history_path(home, workspace).read_text()


def test_approval_answered_each_way(spawn, fake_llm: FakeLLM, workspace: Path) -> None:
    fake_llm.script(
        Reply(tool_calls=[ToolCall("bash", {"command": "echo ran > approved.txt"})]),
        Reply(tool_calls=[ToolCall("bash", {"command": "touch refused.txt"})]),
        Reply(content="All done"),
    )
    repl: Repl = spawn()
    repl.wait_prompt()
    repl.send_line("do two things")
    repl.expect("writes to approved.txt")
    repl.expect("yes once")
    repl.send("y")
    repl.expect("approved once")
    repl.expect("touch refused.txt — runs a shell command")
    repl.expect("yes once")
    repl.send("n")
    repl.expect("reason")
    repl.send_line("not on this machine")
    repl.expect("All done")
    repl.wait_prompt()
    assert (workspace / "approved.txt").read_text() == "ran\n"
    assert not (workspace / "refused.txt").exists()
    refusal = fake_llm.chat_requests[2].tool_results()[-1]["content"]
    assert "did not approve" in refusal and "not on this machine" in refusal


def test_session_approval_covers_the_same_command_prefix(spawn, fake_llm: FakeLLM, workspace: Path) -> None:
    fake_llm.script(
        Reply(tool_calls=[ToolCall("bash", {"command": "mkdir -p one"})]),
        Reply(tool_calls=[ToolCall("bash", {"command": "mkdir -p two"})]),
        Reply(content="Made both"),
    )
    repl: Repl = spawn()
    repl.wait_prompt()
    repl.send_line("make dirs")
    repl.expect("yes for this session")
    repl.send("a")
    repl.expect("Made both")
    assert "mkdir -p two — runs" not in repl.transcript  # the second call did not ask
    assert (workspace / "one").is_dir() and (workspace / "two").is_dir()


def test_ctrl_c_cancels_a_running_command_and_the_session_goes_on(spawn, fake_llm: FakeLLM) -> None:
    marker = "sleep 61.4321"
    fake_llm.script(Reply(tool_calls=[ToolCall("bash", {"command": marker})]), Reply(content="Still here"))
    repl: Repl = spawn("-y")
    repl.wait_prompt()
    repl.send_line("wait a minute")
    repl.expect(f"bash {marker}")
    assert wait_until(lambda: processes_with(marker)), "the sleep never started"
    repl.send("\x03")
    repl.expect("interrupted")
    assert wait_until(lambda: not processes_with(marker)), "the sleep outlived the cancelled turn"
    repl.wait_prompt()
    repl.send_line("are you there?")
    repl.expect("Still here")
    messages = fake_llm.chat_requests[1].messages
    assert messages[-1] == {"role": "user", "content": "are you there?"}
    assert "Interrupted" in messages[-2]["content"] and messages[-2]["role"] == "tool"


@pytest.mark.parametrize("git", [False, True], ids=["plain-dir", "git-repo"])
def test_undo_restores_an_edited_file_and_removes_a_created_one(
    spawn, fake_llm: FakeLLM, workspace: Path, git: bool
) -> None:
    if git:
        subprocess.run(["git", "init", "-q"], cwd=workspace, check=True)
    fake_llm.script(
        Reply(
            tool_calls=[
                ToolCall("strreplace", {"path": "notes.txt", "old_str": "original line", "new_str": "edited line"}),
                ToolCall("createfile", {"path": "pkg/new_module.py", "content": "VALUE = 1\n"}),
            ]
        ),
        Reply(content="Edited and created"),
    )
    repl: Repl = spawn("-y")
    repl.wait_prompt()
    repl.send_line("change things")
    screen = repl.expect("Edited and created")
    assert "- original line" in screen and "+ edited line" in screen and "+ VALUE = 1" in screen
    assert (workspace / "notes.txt").read_text() == "edited line\n"
    assert (workspace / "pkg" / "new_module.py").exists()
    repl.wait_prompt()
    repl.send_line("/undo")
    out = repl.expect("undid the last turn")
    assert "restored notes.txt" in out and "new_module.py" in out
    assert (workspace / "notes.txt").read_text() == "original line\n"
    assert not (workspace / "pkg" / "new_module.py").exists()
    repl.wait_prompt()
    repl.send_line("/undo")
    repl.expect("nothing to undo")


def test_ctrl_d_exits_and_ctrl_c_twice_exits(spawn) -> None:
    repl: Repl = spawn()
    repl.wait_prompt()
    repl.send("\x04")
    assert repl.wait_exit() == 0
    repl = spawn()
    repl.wait_prompt()
    repl.send("\x03")
    repl.expect("Ctrl-C again")
    repl.send("\x03")
    assert repl.wait_exit() == 0


def test_slash_commands_and_unknown_command(spawn, fake_llm: FakeLLM) -> None:
    repl: Repl = spawn()
    repl.wait_prompt()
    repl.send_line("/help")
    out = repl.expect("Ctrl-J new line")
    for name in ("/undo", "/diff", "/compact", "/resume", "/yolo", "/model", "/thinking", "/sessions", "/cost"):
        assert name in out
    repl.wait_prompt()
    repl.send_line("/nosuch")
    repl.expect("unknown command /nosuch")
    repl.wait_prompt()
    repl.send_line("/yolo")
    repl.expect("YOLO")
    repl.send_line("/mode instant")
    repl.expect("thinking off")
    fake_llm.script(Reply(content="instant reply"))
    repl.send_line("quick one")
    repl.expect("instant reply")
    assert fake_llm.chat_requests[0].body["thinking"] == {"type": "disabled"}


def test_mention_attaches_file_content(spawn, fake_llm: FakeLLM, workspace: Path) -> None:
    fake_llm.script(Reply(content="Read it"))
    repl: Repl = spawn()
    repl.wait_prompt()
    repl.send_line("summarise @notes.txt please")
    repl.expect("attached notes.txt")
    repl.expect("Read it")
    sent = fake_llm.chat_requests[0].messages[-1]["content"]
    assert sent.startswith("summarise @notes.txt please")
    assert '<file path="notes.txt">\noriginal line\n</file>' in sent


def test_alt_enter_inserts_a_newline_instead_of_sending(spawn, fake_llm: FakeLLM) -> None:
    fake_llm.script(Reply(content="Two lines received"))
    repl: Repl = spawn()
    repl.wait_prompt()
    repl.send("line one")
    repl.send("\x1b\r")  # Alt-Enter
    repl.send("line two")
    repl.send("\n")  # Ctrl-J
    repl.send_line("line three")
    repl.expect("Two lines received")
    assert fake_llm.chat_requests[0].messages[-1]["content"] == "line one\nline two\nline three"


def test_thinking_can_be_collapsed_and_shown_again(spawn, fake_llm: FakeLLM) -> None:
    fake_llm.script(
        Reply(reasoning="SECRET-CHAIN of thought", content="Answer one"),
        Reply(reasoning="visible again", content="Answer two"),
    )
    repl: Repl = spawn()
    repl.wait_prompt()
    repl.send_line("/thinking hide")
    repl.wait_prompt()
    start = len(repl.transcript)
    repl.send_line("q1")
    repl.expect("Answer one")
    repl.wait_prompt()
    turn = repl.transcript[start:]
    assert "thinking… (hidden" in turn and "SECRET-CHAIN" not in turn
    repl.send_line("/thinking last")
    repl.expect("SECRET-CHAIN of thought")
    repl.wait_prompt()
    repl.send_line("/thinking show")
    repl.wait_prompt()
    start = len(repl.transcript)
    repl.send_line("q2")
    repl.expect("Answer two")
    assert "visible again" in repl.transcript[start:]  # streamed in styled pieces: check the cleaned text
    # what the user sees never changes what the model is asked: thinking stays enabled
    assert fake_llm.chat_requests[0].body["thinking"] == {"type": "enabled"}
