"""The REPL in a pty: a custom command completes with Tab, /help lists it with its source, it runs as the
expanded prompt; ``#text`` appends to the project's AGENTS.md; the start-up line counts what was found."""

from __future__ import annotations

from pathlib import Path

import pytest

from kimicode.extensions.memory import GLOBAL_FILE
from tests.fake_llm import FakeLLM, Reply, ToolCall
from tests.replpty import Repl

pytestmark = pytest.mark.quick_retries


def test_custom_command_completes_lists_and_runs_and_hash_remembers(
    spawn, fake_llm: FakeLLM, home: Path, workspace: Path
) -> None:
    (home / "commands").mkdir(parents=True)
    (home / "commands" / "review.md").write_text(
        "---\ndescription: Review the code\nallowed-tools: Read\n---\nPlease review $ARGUMENTS now, as @rules.md says.\n"
    )
    (workspace / "rules.md").write_text("RULE-TEXT mentions @other.md\n")
    (workspace / "other.md").write_text("OTHER-TEXT\n")
    fake_llm.script(
        Reply(tool_calls=[ToolCall("createfile", {"path": "during.txt", "content": "x"})]),  # allowed-tools: Read
        Reply(content="Reviewed it all"),
        Reply(tool_calls=[ToolCall("createfile", {"path": "after.txt", "content": "x"})]),  # the next turn: free
        Reply(content="Looking at issue 7"),
    )
    editor = home.parent / "fake-editor"
    editor.write_text('#!/bin/sh\necho "- written in the editor" >> "$1"\n')
    editor.chmod(0o755)
    repl: Repl = spawn("-y", env={"EDITOR": str(editor)})
    repl.expect("extensions: 1 command")
    repl.wait_prompt()
    repl.send_line("/help")
    out = repl.expect("Ctrl-J new line")
    assert "/review" in out and "Review the code (user " in out and "/memory" in out
    repl.wait_prompt()
    repl.send("/revi")
    repl.send("\t")
    repl.expect("/review")
    repl.send_line(" src")
    repl.expect("Reviewed it all")
    sent = fake_llm.chat_requests[0].messages[-1]["content"]
    assert sent.startswith("Please review src now, as @rules.md says.")
    assert sent.count("RULE-TEXT") == 1 and "OTHER-TEXT" not in sent  # attached once, its own mentions not followed
    assert not (workspace / "during.txt").exists()
    assert "allowed-tools" in fake_llm.chat_requests[1].messages[-1]["content"]
    repl.wait_prompt()
    repl.send_line("#always run the linter")
    repl.expect("[g] global")
    repl.send("p")
    repl.expect("added to")
    assert (workspace / GLOBAL_FILE).read_text() == "- always run the linter\n"
    repl.wait_prompt()
    repl.send_line("/memory")
    repl.expect("[g] global")
    repl.send("g")
    repl.expect("read from the next session on")
    assert (home / GLOBAL_FILE).read_text() == "- written in the editor\n"
    assert len(fake_llm.chat_requests) == 2  # the memory lines went to the files, not to the model
    repl.wait_prompt()
    repl.send_line("#7 fails again")
    repl.expect("[m] send it as a message")
    repl.send("m")
    repl.expect("Looking at issue 7")
    assert fake_llm.chat_requests[2].messages[-1]["content"] == "#7 fails again"
    assert (workspace / "after.txt").exists()  # the command's restriction ended with its turn
