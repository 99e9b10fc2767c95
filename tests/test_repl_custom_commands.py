"""The REPL in a pty: a custom command completes with Tab, /help lists it with its source, it runs as the
expanded prompt; ``#text`` appends to the project's AGENTS.md; the start-up line counts what was found."""

from __future__ import annotations

from pathlib import Path

import pytest

from kimicode.extensions.memory import GLOBAL_FILE
from tests.fake_llm import FakeLLM, Reply
from tests.replpty import Repl

pytestmark = pytest.mark.quick_retries


def test_custom_command_completes_lists_and_runs_and_hash_remembers(
    spawn, fake_llm: FakeLLM, home: Path, workspace: Path
) -> None:
    (home / "commands").mkdir(parents=True)
    (home / "commands" / "review.md").write_text("---\ndescription: Review the code\n---\nPlease review $ARGUMENTS now.\n")
    fake_llm.script(Reply(content="Reviewed it all"))
    repl: Repl = spawn()
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
    assert fake_llm.chat_requests[0].messages[-1] == {"role": "user", "content": "Please review src now."}
    repl.wait_prompt()
    repl.send_line("#always run the linter")
    repl.expect("[g] global")
    repl.send("p")
    repl.expect("added to")
    assert (workspace / GLOBAL_FILE).read_text() == "- always run the linter\n"
    assert len(fake_llm.chat_requests) == 1  # the memory line went to the file, not to the model
