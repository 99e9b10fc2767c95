"""End-to-end: going back in time in the real interactive kimicode (pty) against the scripted model server:
/undo after /clear, Esc Esc and /rewind, -C replaying the last turns."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from kimicode.session.rewind import user_turns
from kimicode.session.store import SessionStore
from tests.fake_llm import FakeLLM, Reply, ToolCall
from tests.replpty import Repl

pytestmark = pytest.mark.quick_retries


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "proj"
    ws.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=ws, check=True)
    return ws


def test_undo_after_clear_names_the_turn_it_undoes(spawn, fake_llm: FakeLLM, workspace: Path) -> None:
    fake_llm.script(
        Reply(content="hi there"),
        Reply(tool_calls=[ToolCall("createfile", {"path": "made.txt", "content": "x\n"})]),
        Reply(content="made it"),
    )
    repl: Repl = spawn("-y")
    repl.wait_prompt()
    repl.send_line("say hi first")
    repl.expect("hi there")
    repl.wait_prompt()
    repl.send_line("/clear")
    repl.expect("new session")
    repl.wait_prompt()
    repl.send_line("make file")
    repl.expect("made it")
    assert (workspace / "made.txt").exists()
    repl.wait_prompt()
    repl.send_line("/undo")
    out = repl.expect("undid the last turn")
    repl.expect(")")
    assert "turn: make file" in repl.transcript, out
    assert not (workspace / "made.txt").exists()


@pytest.mark.parametrize("git", [True, False], ids=["git-repo", "plain-dir"])
def test_esc_esc_on_the_second_of_three_turns_restores_files_and_conversation(
    spawn, fake_llm: FakeLLM, home: Path, workspace: Path, git: bool
) -> None:
    if not git:
        shutil.rmtree(workspace / ".git")  # file backups instead of git checkpoints
    fake_llm.script(
        Reply(tool_calls=[ToolCall("createfile", {"path": "a.txt", "content": "one\n"})]),
        Reply(content="done one"),
        Reply(
            tool_calls=[
                ToolCall("strreplace", {"path": "a.txt", "old_str": "one", "new_str": "two"}),
                ToolCall("createfile", {"path": "b.txt", "content": "bee\n"}),
            ]
        ),
        Reply(content="done two"),
        Reply(tool_calls=[ToolCall("createfile", {"path": "c.txt", "content": "sea\n"})]),
        Reply(content="done three"),
        Reply(content="second again"),
    )
    repl: Repl = spawn("-y")
    for text, answer in (("first turn", "done one"), ("second turn", "done two"), ("third turn", "done three")):
        repl.wait_prompt()
        repl.send_line(text)
        repl.expect(answer)
    assert (workspace / "a.txt").read_text() == "two\n" and (workspace / "c.txt").exists()
    repl.wait_prompt()
    repl.send("\x1b\x1b")
    listing = repl.expect("rewind to just before which message?")
    assert "1) first turn" in listing and "2) second turn" in listing and "3) third turn" in listing
    repl.send_line("2")
    repl.expect("restore [b] conversation and files")
    repl.send("b")
    out = repl.expect("conversation rewound to before message 2")
    assert "files restored to before message 2" in out
    assert (workspace / "a.txt").read_text() == "one\n"
    assert not (workspace / "b.txt").exists() and not (workspace / "c.txt").exists()
    repl.wait_prompt()
    repl.send("\r")  # the message came back in the prompt: send it as it is
    repl.expect("second again")
    messages = fake_llm.chat_requests[-1].messages
    users = [m["content"] for m in messages if m["role"] == "user"]
    assert users == ["first turn", "second turn"]
    assert messages[-2] == {"role": "assistant", "content": "done one"}
    if git:  # the rewind itself can be undone
        repl.wait_prompt()
        repl.send_line("/undo")
        repl.expect("turn: before rewind")
        assert (workspace / "a.txt").read_text() == "two\n" and (workspace / "c.txt").exists()
    repl.wait_prompt()
    repl.send_line("/exit")
    assert repl.wait_exit() == 0
    # the original session is kept with its three messages; the fork has the first and the one sent again
    store = SessionStore(home)
    counts = sorted(len(user_turns(store.open(info.id, workspace))) for info in store.list(workspace))
    assert counts == [2, 3]


def five_turns(home: Path, workspace: Path) -> None:
    session = SessionStore(home).create(workspace, "kimi-k2.5", "agent")
    session.append_message({"role": "system", "content": "sys"})
    for n in range(1, 6):
        session.append_message({"role": "user", "content": f"question number {n}"})
        call = {"id": f"c{n}", "type": "function", "function": {"name": "view", "arguments": f'{{"path": "file{n}.py"}}'}}
        session.append_message({"role": "assistant", "content": "", "tool_calls": [call]})
        session.append_message({"role": "tool", "tool_call_id": f"c{n}", "content": "x"})
        session.append_message({"role": "assistant", "content": f"answer number {n}"})
    session.close()


def test_resume_picked_from_the_list_replays_the_last_turns_once(spawn, home: Path, workspace: Path) -> None:
    five_turns(home, workspace)
    repl: Repl = spawn("-r")
    repl.expect("resume which?")
    repl.send_line("1")
    shown = repl.wait_prompt()
    assert shown.count("› question number 5") == 1 and "… 2 earlier turns" in shown


def test_continue_replays_the_last_turns_and_history_shows_all(spawn, home: Path, workspace: Path) -> None:
    five_turns(home, workspace)
    repl: Repl = spawn("-C")
    shown = repl.wait_prompt()
    assert "… 2 earlier turns" in shown
    for n in (3, 4, 5):
        assert f"› question number {n}" in shown and f"⚙ view file{n}.py" in shown and f"answer number {n}" in shown
    assert "question number 2" not in shown
    assert shown.index("question number 5") < shown.index("resumed session")
    repl.send_line("/history")
    full = repl.expect("answer number 5")
    assert "question number 1" in full and "earlier turn" not in full
    repl.wait_prompt()
    repl.send_line("/history 1")
    last = repl.expect("answer number 5")
    assert "… 4 earlier turns" in last and "question number 4" not in last
