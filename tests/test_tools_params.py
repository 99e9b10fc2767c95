"""Tool parameters as typed models (kimicode/tools/params.py): what the model is shown stays byte for byte what
it was shown when the schemas were written by hand, and arguments a model gets wrong get one readable line."""

from __future__ import annotations

import asyncio
import importlib
import json
import pkgutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import kimicode.tools
from kimicode.tools.base import Tool, ToolContext, ToolResult
from kimicode.tools.bash import BashTool
from kimicode.tools.createfile import CreateFileTool
from kimicode.tools.fetch import FetchTool
from kimicode.tools.insert import InsertTool
from kimicode.tools.propose_plan import ProposePlanTool
from kimicode.tools.screenshot import ScreenshotTool
from kimicode.tools.spawn_agents import SpawnAgentsTool
from kimicode.tools.strreplace import StrReplaceTool
from kimicode.tools.submit import SubmitTool
from kimicode.tools.task_output import TaskOutputTool
from kimicode.tools.task_stop import TaskStopTool
from kimicode.tools.todo import TodoTool
from kimicode.tools.todo_list import TodoList
from kimicode.tools.view import ViewTool
from kimicode.tools.web_search import WebSearchTool
from tests.clirun import REPO, run_cli
from tests.fake_llm import FakeLLM, Reply, ToolCall

# Every built-in tool's schema() as the hand-written schemas made it (recorded from the code before the
# models replaced them), keyed by tool name; "bash+background" is bash in agent and swarm modes.
RECORDED: dict[str, Any] = json.loads((Path(__file__).parent / "tool_schemas.json").read_text(encoding="utf-8"))

TOOLS: dict[str, Tool] = {
    "bash": BashTool(),
    "bash+background": BashTool(background=True),
    "view": ViewTool(),
    "createfile": CreateFileTool(),
    "strreplace": StrReplaceTool(),
    "insert": InsertTool(),
    "submit": SubmitTool(),
    "fetch": FetchTool(),
    "$web_search": WebSearchTool(),
    "screenshot": ScreenshotTool(),
    "todo": TodoTool(),
    "propose_plan": ProposePlanTool(),
    "spawn_agents": SpawnAgentsTool(runner=None),  # type: ignore[arg-type]  # never run here
    "task_output": TaskOutputTool(),
    "task_stop": TaskStopTool(),
}


def wire(value: Any) -> str:
    """JSON as the client puts it on the wire (kimicode/llm/client.py)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def run(tool: Tool, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    return asyncio.run(tool.run(args, ctx))


@pytest.mark.parametrize("key", sorted(RECORDED))
def test_each_schema_is_byte_for_byte_the_recorded_one(key: str) -> None:
    assert wire(TOOLS[key].schema()) == wire(RECORDED[key])


def test_every_built_in_tool_is_recorded() -> None:
    for info in pkgutil.iter_modules(kimicode.tools.__path__):
        importlib.import_module(f"kimicode.tools.{info.name}")
    seen, todo = set(), list(Tool.__subclasses__())
    while todo:
        cls = todo.pop()
        todo += cls.__subclasses__()
        if cls.__module__.startswith("kimicode.tools.") and "params" in cls.__dict__:
            seen.add(cls.name)
    assert seen == {tool.name for tool in TOOLS.values()}


@pytest.mark.parametrize(
    ("flags", "bash"),
    [([], "bash+background"), (["--plan"], "bash+background"), (["--mode", "swarm"], "bash+background"),
     (["--mode", "instant"], "bash")],
    ids=["agent", "plan", "swarm", "instant"],
)
def test_the_first_request_carries_the_recorded_tool_bytes(
    fake_llm: FakeLLM, home: Path, workspace: Path, flags: list[str], bash: str
) -> None:
    fake_llm.script(Reply(content="done"))
    proc = run_cli(["-p", *flags, "say done"], home=home, cwd=workspace, base_url=fake_llm.base_url)
    assert proc.returncode == 0, proc.stderr
    request = fake_llm.chat_requests[0]
    names = request.tool_names()
    assert "bash" in names
    expected = [RECORDED[bash if name == "bash" else name] for name in names]
    assert wire(expected).encode() in request.raw


def test_version_and_help_do_not_import_pydantic() -> None:
    probe = (
        "import sys, runpy\n"
        "sys.argv = ['kimicode', sys.argv[1]]\n"
        "try:\n    runpy.run_module('kimicode', run_name='__main__')\nexcept SystemExit:\n    pass\n"
        "print('PYDANTIC=' + str('pydantic' in sys.modules))\n"
    )
    for flag in ("--version", "--help"):
        proc = subprocess.run([sys.executable, "-c", probe, flag], cwd=REPO, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert "PYDANTIC=False" in proc.stdout, proc.stdout


@pytest.mark.parametrize(
    ("tool", "args", "error"),
    [
        ("bash", {"command": "true", "timeout": True}, "parameter 'timeout' must be an integer, got a boolean"),
        ("bash", {"command": "true", "timeout": "soon"}, "parameter 'timeout' must be an integer, got 'soon'"),
        ("bash", {"command": 7}, "parameter 'command' must be a string, got int"),
        ("bash", {"command": "true", "escalate": 1},
         "parameter 'escalate' must be a string: the reason the command needs to leave the sandbox"),
        ("bash", {"timeout": 5}, "missing required parameter 'command'"),
        ("bash", {"command": "true", "background": True},
         "background tasks are not available in this run; run the command in the foreground"),
        ("view", {"path": "a.txt", "view_range": [1]},
         "parameter 'view_range' must be a list of two integers [start, end], got [1]"),
        ("view", {"path": "a.txt", "view_range": [1, "x"]}, "parameter 'view_range' must be an integer, got 'x'"),
        ("createfile", {"path": "b.txt", "content": "x", "overwrite": "maybe"},
         "parameter 'overwrite' must be true or false, got 'maybe'"),
        ("strreplace", {"path": "a.txt", "old_str": 5, "new_str": ""}, "parameter 'old_str' must be a string, got int"),
        ("insert", {"path": "a.txt", "insert_line": 1.5, "new_str": "x"},
         "parameter 'insert_line' must be an integer, got 1.5"),
        ("insert", {"path": "a.txt", "new_str": "x"}, "missing required parameter 'insert_line'"),
    ],
)
def test_bad_arguments_get_one_line_naming_the_parameter(
    tool: str, args: dict[str, Any], error: str, tmp_path: Path
) -> None:
    (tmp_path / "a.txt").write_text("one\n")
    result = run(TOOLS[tool], args, ToolContext(workspace=tmp_path))
    assert result.is_error and result.text == f"Error: {error}"
    assert (tmp_path / "a.txt").read_text() == "one\n" and not (tmp_path / "b.txt").exists()


def test_slips_a_model_makes_are_read_as_meant(tmp_path: Path) -> None:
    ctx = ToolContext(workspace=tmp_path)
    (tmp_path / "a.txt").write_text("one\ntwo\n")
    assert not run(TOOLS["insert"], {"path": "a.txt", "insert_line": " 1", "new_str": "x"}, ctx).is_error
    assert not run(TOOLS["insert"], {"path": "a.txt", "insert_line": 3.0, "new_str": "y"}, ctx).is_error
    assert (tmp_path / "a.txt").read_text() == "one\nx\ntwo\ny\n"
    # null is "not given": the default applies
    assert not run(TOOLS["createfile"], {"path": "a.txt", "content": "z", "overwrite": "TRUE"}, ctx).is_error
    assert run(TOOLS["createfile"], {"path": "a.txt", "content": "w", "overwrite": None}, ctx).is_error
    assert (tmp_path / "a.txt").read_text() == "z"
    shown = run(TOOLS["view"], {"path": "a.txt", "view_range": ["1", 1.0]}, ctx)
    assert shown.text.split("\t") == ["     1", "z"]


def test_list_parameters_name_the_entry_at_fault(tmp_path: Path) -> None:
    ctx = ToolContext(workspace=tmp_path, todo=TodoList())
    bad = run(TOOLS["todo"], {"items": [{"content": "a", "status": "done"}, {"content": "b", "status": "later"}]}, ctx)
    assert bad.is_error
    assert bad.text == "Error: items[1].status must be one of pending, in_progress, done, got 'later'"
    assert ctx.todo is not None and ctx.todo.version == 0
    good = run(TOOLS["todo"], {"items": [{"status": "in_progress", "content": "  write   the test "}]}, ctx)
    assert good.text == "Todo list saved: 0/1 done; in progress: write the test."
    assert ctx.todo.items == [{"content": "write the test", "status": "in_progress"}]
    spawn = run(TOOLS["spawn_agents"], {"agents": [{"role": "reviewer"}]}, ctx)
    assert spawn.is_error and spawn.text.startswith("Error: agents[0] has no 'task'")


def test_a_bad_todo_through_the_cli_reaches_the_model_as_one_line(
    fake_llm: FakeLLM, home: Path, workspace: Path
) -> None:
    fake_llm.script(
        Reply(tool_calls=[ToolCall("todo", {"items": [{"content": "plan", "status": "someday"}]})]),
        Reply(content="done"),
    )
    proc = run_cli(["-p", "plan it"], home=home, cwd=workspace, base_url=fake_llm.base_url)
    assert proc.returncode == 0, proc.stderr
    (result,) = fake_llm.chat_requests[1].tool_results()
    assert result["content"] == "Error: items[0].status must be one of pending, in_progress, done, got 'someday'"
