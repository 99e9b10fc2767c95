"""End-to-end: going back in time in the real interactive kimicode (pty) against the scripted model server:
/undo after /clear, Esc Esc and /rewind, -C replaying the last turns."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

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
