"""submit (with and without git), the registry, schema sizes and summaries, and cheap imports."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kimicode.tools.base import Tool, ToolContext, ToolResult
from kimicode.tools.registry import ToolRegistry, swe_tools
from kimicode.tools.submit import SubmitTool

GIT_ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
}


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, check=True, capture_output=True)


def submit(ctx: ToolContext, **args: str) -> ToolResult:
    return asyncio.run(SubmitTool().run(dict(args), ctx))


def test_submit_outside_git(tmp_path: Path) -> None:
    result = submit(ToolContext(workspace=tmp_path), summary="Fixed the off-by-one.")
    assert result.submitted and not result.is_error
    assert result.text == "Fixed the off-by-one."
    assert submit(ToolContext(workspace=tmp_path)).text == "Task submitted."


def test_submit_in_git_reports_the_change_set(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    (tmp_path / "app.py").write_text("a = 1\n")
    git(tmp_path, "add", "app.py")
    git(tmp_path, "commit", "-qm", "init")
    (tmp_path / "app.py").write_text("a = 2\nb = 3\n")
    (tmp_path / "new.py").write_text("x = 1\n")
    sub = tmp_path / "sub"
    sub.mkdir()
    result = submit(ToolContext(workspace=sub), summary="done")
    assert result.submitted
    assert result.text.startswith("done\n\n")
    assert " M app.py" in result.text
    assert "?? new.py" in result.text
    assert "app.py | 3 ++-" in result.text


def test_submit_in_clean_repo_and_repo_without_commits(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    assert "none" in submit(ToolContext(workspace=tmp_path)).text
    (tmp_path / "first.txt").write_text("x\n")
    result = submit(ToolContext(workspace=tmp_path), summary="s")
    assert "?? first.txt" in result.text and "diff --stat" not in result.text


def test_registry_holds_the_six_in_order() -> None:
    registry = ToolRegistry(swe_tools())
    assert registry.names() == ["bash", "view", "createfile", "strreplace", "insert", "submit"]
    assert "bash" in registry and "nope" not in registry
    assert registry.get("view") is not None and registry.get("nope") is None
    assert [t.name for t in registry] == registry.names()
    assert [s["function"]["name"] for s in registry.schemas()] == registry.names()
    assert [t.name for t in swe_tools() if t.read_only] == ["view", "submit"]


def test_registry_refuses_duplicates_unless_replacing() -> None:
    registry = ToolRegistry(swe_tools())
    with pytest.raises(ValueError, match="already registered"):
        registry.add(SubmitTool())
    replacement = SubmitTool()
    registry.add(replacement, replace=True)
    assert registry.get("submit") is replacement
    assert registry.remove("submit") is replacement
    assert "submit" not in registry and len(registry.schemas()) == 5


def test_schemas_are_small_and_match_the_contract() -> None:
    schemas = {s["function"]["name"]: s["function"] for s in ToolRegistry(swe_tools()).schemas()}
    for name, fn in schemas.items():
        assert len(json.dumps({"type": "function", "function": fn})) <= 700, name
    props = {name: set(fn["parameters"]["properties"]) for name, fn in schemas.items()}
    assert props == {
        "bash": {"command", "timeout", "escalate"},
        "view": {"path", "view_range"},
        "createfile": {"path", "content", "overwrite"},
        "strreplace": {"path", "old_str", "new_str"},
        "insert": {"path", "insert_line", "new_str"},
        "submit": {"summary"},
    }


@pytest.mark.parametrize(
    ("tool_name", "args", "line"),
    [
        ("bash", {"command": "pytest -q"}, "bash pytest -q"),
        ("strreplace", {"path": "src/app.py", "old_str": "a", "new_str": "b"}, "strreplace src/app.py"),
        ("view", {"path": "README.md"}, "view README.md"),
        ("submit", {"summary": "done"}, "submit"),
    ],
)
def test_summaries(tool_name: str, args: dict[str, str], line: str) -> None:
    tool: Tool | None = ToolRegistry(swe_tools()).get(tool_name)
    assert tool is not None and tool.summary(args) == line


def test_tools_import_nothing_heavy() -> None:
    code = (
        "import sys; from kimicode.tools.registry import swe_tools; swe_tools(); "
        "heavy = {'openai', 'mcp', 'cv2', 'PIL', 'git', 'playwright'}; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert out.stdout.strip() == "[]"
