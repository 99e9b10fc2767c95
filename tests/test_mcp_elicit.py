"""MCP elicitation and roots with a real server (tests/mcp_servers/interactive_server.py): a headless run
declines in one line (or, with -y, takes the defaults), the REPL asks field by field, an editor is asked
accept/decline; the roots a server is told are the workspace and the --add-dir folders."""

from __future__ import annotations

import json
import re
from pathlib import Path

from kimicode.mcp.store import save_servers
from tests.clirun import run_cli, write_home_config
from tests.fake_llm import FakeLLM, Reply, ToolCall
from tests.test_mcp_progress import interactive_config


def headless(fake_llm: FakeLLM, tmp_path: Path, tool: str, *flags: str, server_flags: tuple[str, ...] = ()):
    home, project = tmp_path / "home", tmp_path / "proj"
    project.mkdir(parents=True, exist_ok=True)
    write_home_config(home, "mcp_startup_wait = 30\n")
    save_servers(home, [interactive_config(*server_flags)])
    fake_llm.script(Reply(tool_calls=[ToolCall(f"mcp__desk__{tool}", {})]), Reply(content="ok"))
    proc = run_cli(["-p", *flags, "go"], home=home, cwd=project, base_url=fake_llm.base_url, timeout=90)
    assert proc.returncode == 0, proc.stderr
    return proc, fake_llm.chat_requests[-1].tool_results()[-1]["content"], project


def desk_lines(stderr: str) -> list[str]:
    return [line.removeprefix("kimicode: ") for line in stderr.splitlines() if "MCP server 'desk'" in line]


def test_headless_declines_a_question_in_one_line(fake_llm: FakeLLM, tmp_path: Path) -> None:
    proc, result, _ = headless(fake_llm, tmp_path, "ask_name")
    assert result == "declined"
    assert desk_lines(proc.stderr) == [
        "MCP server 'desk' asked \"Who is ordering tea?\": declined, nobody can answer here (it needs your answers)"
    ]


def test_headless_with_y_takes_the_defaults_only_when_every_field_has_one(fake_llm: FakeLLM, tmp_path: Path) -> None:
    proc, result, _ = headless(fake_llm, tmp_path / "a", "ask_name", "-y", server_flags=("--defaults",))
    assert result == "accepted: Ada wants 2 cups"
    assert desk_lines(proc.stderr) == ["MCP server 'desk' asked \"Who is ordering tea?\": answered with its defaults (-y)"]
    proc, result, _ = headless(fake_llm, tmp_path / "b", "ask_name", "-y")
    assert result == "declined" and "declined, nobody can answer here" in desk_lines(proc.stderr)[0]
    proc, result, _ = headless(fake_llm, tmp_path / "c", "ask_name", server_flags=("--defaults",))
    assert result == "declined" and "(run with -y to answer with the defaults)" in desk_lines(proc.stderr)[0]


def test_roots_are_the_workspace_and_the_added_folders(fake_llm: FakeLLM, tmp_path: Path) -> None:
    extra = tmp_path / "shared libs"
    extra.mkdir()
    _, result, project = headless(fake_llm, tmp_path, "roots", "-y", "--add-dir", str(extra))
    roots = json.loads(result)
    assert [root["uri"] for root in roots] == [project.resolve().as_uri(), extra.resolve().as_uri()]
    assert roots[1]["name"] == "shared libs"


def test_the_repl_asks_field_by_field(spawn, fake_llm: FakeLLM, home: Path) -> None:
    save_servers(home, [interactive_config()])
    fake_llm.script(Reply(tool_calls=[ToolCall("mcp__desk__ask_name", {})]), Reply(content="tea is ordered"))
    repl = spawn("-y")
    repl.wait_prompt()
    for _ in range(60):  # the server starts in the background; ask until it is up
        start = len(repl.transcript)
        repl.send_line("/mcp")
        repl.wait_prompt()
        if re.search(r"desk\s+stdio\s+ready", repl.transcript[start:]):
            break
    repl.send_line("order tea")
    repl.expect("MCP server 'desk' asks: Who is ordering tea?")
    repl.expect("[y] answer")
    repl.send_line("y")
    repl.expect("Your name")
    repl.send_line("Grace")
    repl.expect("How many cups")
    repl.send_line("lots")
    repl.expect("expected a whole number")
    repl.send_line("3")
    repl.expect("tea is ordered")
    assert fake_llm.chat_requests[-1].tool_results()[-1]["content"] == "accepted: Grace wants 3 cups"
