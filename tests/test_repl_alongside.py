"""The live REPL in a real pty: queueing and steering during a turn, plan mode, the todo list, background tasks.

A turn is kept running by the scripted server (a reply that starts late, or a command that sleeps), while
keys go to the prompt that stays on screen.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.fake_llm import FakeLLM, Reply, ToolCall
from tests.replpty import Repl, processes_with, wait_until

# KIMICODE_HOME with quick retries (conftest's home): a faulty reply fails in milliseconds.
pytestmark = pytest.mark.quick_retries

SHIFT_TAB, CTRL_B, CTRL_C, CTRL_S, CTRL_T, UP = "\x1b[Z", "\x02", "\x03", "\x13", "\x14", "\x1b[A"
RUNNING = "● working"


@pytest.fixture
def marker() -> str:
    return f"kimicode-repl-{uuid.uuid4().hex[:8]}"


def type_text(repl: Repl, text: str) -> None:
    repl.send(text)


def test_a_message_typed_during_a_turn_is_queued_edited_and_sent_after_it(spawn, fake_llm: FakeLLM) -> None:
    fake_llm.script(Reply(content="First answer", delay=2.5), Reply(content="Second answer"))
    repl: Repl = spawn()
    repl.wait_prompt()
    repl.send_line("first question")
    repl.expect(RUNNING)
    repl.send_line("draft to drop")
    repl.expect("queued: draft to drop")
    repl.send(UP)  # takes it back to edit ...
    repl.send(CTRL_C)  # ... and drops it
    repl.send_line("the follow-up")
    repl.expect("queued: the follow-up")
    # The turn's own request may still be on its way (the first one loads the client); once it is in, it is
    # the only one: the queued messages wait for the turn to end (its reply is held for 2.5 s).
    assert fake_llm.wait_for_requests(1, timeout=20)
    assert len(fake_llm.chat_requests) == 1
    repl.expect("First answer")
    repl.expect("Second answer")
    repl.wait_prompt()
    second = fake_llm.chat_requests[1].messages
    assert [m["role"] for m in second] == ["system", "user", "assistant", "user"]
    assert second[-1]["content"] == "the follow-up"
    assert "draft to drop" not in str([r.messages for r in fake_llm.chat_requests])


def test_ctrl_s_sends_a_message_into_the_running_turn(spawn, fake_llm: FakeLLM) -> None:
    fake_llm.script(
        Reply(tool_calls=[ToolCall("bash", {"command": "sleep 3; echo slept"})]),
        Reply(content="Using port 9000 then"),
    )
    repl: Repl = spawn("-y")
    repl.wait_prompt()
    repl.send_line("start the server")
    repl.expect("bash sleep 3")
    type_text(repl, "use port 9000")
    repl.send(CTRL_S)
    repl.expect("to the running turn: use port 9000")  # shown above the prompt until the model has it
    repl.expect("↳ you, to the running turn: use port 9000")  # delivered before the next request
    repl.expect("Using port 9000 then")
    repl.wait_prompt()
    assert len(fake_llm.chat_requests) == 2
    messages = fake_llm.chat_requests[1].messages
    assert messages[-2]["role"] == "tool" and "slept" in messages[-2]["content"]
    assert messages[-1] == {"role": "user", "content": "use port 9000"}


def test_esc_cancels_the_running_turn(spawn, fake_llm: FakeLLM, marker: str) -> None:
    fake_llm.script(Reply(tool_calls=[ToolCall("bash", {"command": f"exec -a {marker} sleep 60"})]), Reply(content="back"))
    repl: Repl = spawn("-y")
    repl.wait_prompt()
    repl.send_line("wait")
    repl.expect(f"exec -a {marker}")
    assert wait_until(lambda: bool(processes_with(marker)))
    repl.send("\x1b")
    repl.expect("interrupted; the session is intact")
    assert wait_until(lambda: not processes_with(marker))
    repl.wait_prompt()
    repl.send_line("still there?")
    repl.expect("back")


def test_plan_mode_refuses_a_write_and_the_accepted_plan_leads_to_the_edit(
    spawn, fake_llm: FakeLLM, workspace: Path
) -> None:
    fake_llm.script(
        Reply(tool_calls=[ToolCall("createfile", {"path": "hello.py", "content": "print('hi')\n"})]),
        Reply(tool_calls=[ToolCall("propose_plan", {"plan": "1. Create `hello.py` printing hi\n2. Run it"})]),
        Reply(tool_calls=[ToolCall("createfile", {"path": "hello.py", "content": "print('hi')\n"})]),
        Reply(content="Created hello.py"),
    )
    repl: Repl = spawn()
    repl.wait_prompt()
    repl.send(SHIFT_TAB)  # ask → auto-edit
    repl.send(SHIFT_TAB)  # → plan
    repl.expect("plan mode")  # on the bottom line
    repl.send_line("add a hello script")
    repl.expect("refused createfile hello.py (plan mode")
    repl.expect("◆ the plan")
    repl.expect("Create hello.py printing hi")
    repl.expect("[a] accept, auto-edit")
    assert not (workspace / "hello.py").exists()
    repl.send("a")
    repl.expect("Created hello.py")  # auto-edit: the edit ran without a question
    repl.wait_prompt()
    assert (workspace / "hello.py").read_text() == "print('hi')\n"
    first, second, third = fake_llm.chat_requests[:3]
    assert first.messages[-1]["content"].startswith("[Plan mode is on]")
    assert "propose_plan" in first.tool_names() and "propose_plan" not in third.tool_names()
    assert "you are in plan mode" in second.tool_results()[-1]["content"]
    accepted = third.tool_results()[-1]["content"]
    assert accepted.startswith("The user accepted the plan.")
    assert "file edits in the workspace run without asking" in accepted
    assert "? createfile" not in repl.transcript


def test_a_rejected_plan_keeps_planning_with_the_reason(spawn, fake_llm: FakeLLM) -> None:
    fake_llm.script(
        Reply(tool_calls=[ToolCall("propose_plan", {"plan": "Rewrite everything"})]),
        Reply(content="Smaller plan then"),
    )
    repl: Repl = spawn("--plan")
    repl.wait_prompt()
    repl.send_line("improve it")
    repl.expect("keep planning")
    repl.send("n")
    repl.expect("what should change?")
    repl.send_line("too big, just fix the bug")
    repl.expect("Smaller plan then")
    result = fake_llm.chat_requests[1].tool_results()[-1]["content"]
    assert "rejected this plan; you are still in plan mode" in result and "too big, just fix the bug" in result


def test_the_todo_list_shows_above_the_prompt_folds_and_comes_back_on_resume(
    spawn, fake_llm: FakeLLM, home: Path
) -> None:
    items = [
        {"content": "read the failing test", "status": "done"},
        {"content": "fix the parser", "status": "in_progress"},
        {"content": "run the suite", "status": "pending"},
    ]
    fake_llm.script(Reply(tool_calls=[ToolCall("todo", {"items": items})]), Reply(content="On it"))
    repl: Repl = spawn()
    repl.wait_prompt()
    repl.send_line("fix it")
    repl.expect("On it")
    screen = repl.wait_prompt()
    for line in ("todo 1/3", "✓ read the failing test", "▶ fix the parser", "☐ run the suite"):
        assert line in screen
    repl.send(CTRL_T)
    repl.expect("todo 1/3 done; in progress: fix the parser (Ctrl-T shows all)")
    repl.send_line("/exit")
    assert repl.wait_exit() == 0
    again: Repl = spawn("-C")
    screen = again.wait_prompt()
    assert "▶ fix the parser" in screen and "☐ run the suite" in screen


def test_tasks_lists_and_stops_a_background_task(spawn, fake_llm: FakeLLM, marker: str) -> None:
    fake_llm.script(
        Reply(tool_calls=[ToolCall("bash", {"command": f"echo serving; exec -a {marker} sleep 60", "background": True})]),
        Reply(content="Started it"),
    )
    repl: Repl = spawn("-y")
    repl.wait_prompt()
    repl.send_line("start it")
    repl.expect("task 1 started in the background")
    repl.expect("Started it")
    repl.expect("1 background task")  # above the prompt while it runs
    repl.wait_prompt()
    assert processes_with(marker)
    repl.send_line("/tasks")
    out = repl.expect("sleep 60 · serving")  # the command, then its last line
    assert "1  running" in out and f"exec -a {marker}" in out
    repl.wait_prompt()
    repl.send_line("/tasks stop 1")
    repl.expect("task 1 stopped")
    assert wait_until(lambda: not processes_with(marker))
    repl.wait_prompt()
    repl.send_line("/tasks")
    repl.expect("stopped")


def test_ctrl_b_moves_the_running_command_to_the_background(spawn, fake_llm: FakeLLM, marker: str) -> None:
    fake_llm.script(
        Reply(tool_calls=[ToolCall("bash", {"command": f"echo begun; exec -a {marker} sleep 60"})]),
        Reply(content="It runs on"),
    )
    repl: Repl = spawn("-y")
    repl.wait_prompt()
    repl.send_line("run the watcher")
    repl.expect("Ctrl-B backgrounds the command")
    repl.send(CTRL_B)
    repl.expect("the user moved it: it goes on in the background as task 1")
    repl.expect("It runs on")
    repl.wait_prompt()
    assert processes_with(marker)
    assert "the user moved it" in fake_llm.chat_requests[1].tool_results()[-1]["content"]
    repl.send_line("/exit")
    assert repl.wait_exit() == 0
    assert wait_until(lambda: not processes_with(marker)), "the task outlived the session"
