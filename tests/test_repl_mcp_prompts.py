"""The REPL in a pty with a real MCP server (tests/mcp_servers/prompt_server.py): its prompt runs as a command
(typed at once, it waits for the server to connect), completes with Tab, /help lists it; @SERVER: completes to its resources and a
mention attaches one; a failing read is one line and nothing is sent."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kimicode.mcp.store import save_servers
from tests.fake_llm import FakeLLM, Reply
from tests.mcp_servers.prompt_server import NOTES
from tests.replpty import Repl
from tests.test_mcp_prompts import prompt_config

pytestmark = pytest.mark.quick_retries


def test_a_prompt_completes_lists_and_runs_and_a_resource_is_attached(
    spawn, fake_llm: FakeLLM, home: Path
) -> None:
    save_servers(home, [prompt_config()])
    fake_llm.script(Reply(content="Reviewed main"), Reply(content="Reviewed app"), Reply(content="Read the notes"))
    repl: Repl = spawn("-y")
    repl.wait_prompt()
    # Typed at once: the server may still be connecting, and the command then waits for it.
    repl.send_line("/mcp__srv__review main.py")
    repl.expect("Reviewed main")
    assert b"Please review main.py." in fake_llm.chat_requests[0].raw
    repl.wait_prompt()
    repl.send_line("/help")
    out = repl.expect("Ctrl-J new line")
    assert re.search(r"/mcp__srv__review FILE \[FOCUS\]\s+Review one file \(MCP server srv\)", out), out
    repl.wait_prompt()
    repl.send("/mcp__srv__r")
    repl.send("\t")
    repl.expect("/mcp__srv__review")
    repl.send_line(" app.py speed")
    repl.expect("Reviewed app")
    assert b"Please review app.py with a focus on speed." in fake_llm.chat_requests[1].raw
    repl.wait_prompt()
    repl.send_line("/mcp__srv__review")
    repl.expect("/mcp__srv__review needs the argument file")
    repl.wait_prompt()
    repl.send("what do @srv:file:///no")
    repl.send("\t")
    repl.expect("srv:file:///notes.txt")
    repl.send_line(" say?")
    repl.expect("Read the notes")
    sent = fake_llm.chat_requests[2].messages[-1]["content"]
    text = sent if isinstance(sent, str) else sent[-1]["text"]
    assert f'<resource server="srv" uri="file:///notes.txt">\n{NOTES}\n</resource>' in text
    repl.wait_prompt()
    repl.send_line("and @srv:file:///gone.txt?")
    repl.expect("@srv:file:///gone.txt could not be read")
    repl.wait_prompt()
    assert len(fake_llm.chat_requests) == 3
