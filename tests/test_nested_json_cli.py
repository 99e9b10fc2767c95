"""JSON nested past the parser's stack, from a hostile repository (its MCP and settings files) or from the
model (a tool call's arguments), is bad JSON like any other: the run goes on and ends 0, the model is told its
arguments are not valid JSON — never a RecursionError traceback."""

from __future__ import annotations

from pathlib import Path

from kimicode.jsontext import NESTED_TOO_DEEPLY
from tests.clirun import run_cli, write_home_config
from tests.fake_llm import FakeLLM, Reply, ToolCall

DEPTH = 50_000  # past the recursion limit of every supported Python (3.13 parses 5,000 levels)


def nested(key: str) -> str:
    return '{"%s": %s%s}' % (key, "[" * DEPTH, "]" * DEPTH)


def test_a_repository_whose_configs_nest_past_the_stack_still_runs(tmp_path: Path) -> None:
    home, ws = tmp_path / "home", tmp_path / "ws"
    write_home_config(home, "")
    for path, key in ((".mcp.json", "mcpServers"), (".vscode/mcp.json", "servers"), (".cursor/mcp.json", "mcpServers"),
                      (".claude/settings.json", "hooks")):
        (ws / path).parent.mkdir(parents=True, exist_ok=True)
        (ws / path).write_text(nested(key))
    with FakeLLM() as llm:
        llm.script(Reply(content="fine"))
        done = run_cli(["-p", "-y", "hello"], home=home, cwd=ws, base_url=llm.base_url)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "fine"
    assert "Traceback" not in done.stderr and "RecursionError" not in done.stderr  # (as any file that is no JSON)


def test_a_tool_call_whose_arguments_nest_past_the_stack_is_refused_and_the_run_goes_on(tmp_path: Path) -> None:
    home, ws = tmp_path / "home", tmp_path / "ws"
    ws.mkdir()
    write_home_config(home, "")
    with FakeLLM() as llm:
        llm.script(Reply(tool_calls=[ToolCall("bash", '{"command": ' + "[" * DEPTH + "]" * DEPTH + "}")]),
                   Reply(content="understood"))
        done = run_cli(["-p", "-y", "go"], home=home, cwd=ws, base_url=llm.base_url)
        result = [m for m in llm.requests[-1].body["messages"] if m["role"] == "tool"][-1]["content"]
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("understood")
    assert "not valid JSON" in result and NESTED_TOO_DEEPLY in result
