"""Impossible paths and enormous files through the real CLI: the tool answers with a clear error or a
bounded result, and the run goes on."""

from __future__ import annotations

from pathlib import Path

import pytest

from kimicode.tools.base import MAX_OUTPUT_CHARS
from tests.clirun import run_cli
from tests.fake_llm import FakeLLM, Reply, ToolCall

BIG = 10 * 1024 * 1024


def results(fake: FakeLLM, request: int = 1) -> list[str]:
    return [r["content"] for r in fake.chat_requests[request].tool_results()]


@pytest.mark.parametrize(
    "name, args",
    [
        ("view", {"path": "a\u0000b"}),
        ("createfile", {"path": "x\u0000y", "content": "z"}),
        ("strreplace", {"path": "a\u0000b", "old_str": "a", "new_str": "b"}),
        ("insert", {"path": "a\u0000b", "insert_line": 0, "new_str": "b"}),
        ("view", '{"path": "a\\ud800b"}'),  # JSON text: the escape is read into a lone surrogate
    ],
)
def test_impossible_paths_are_a_tool_error_and_the_run_goes_on(
    fake_llm: FakeLLM, home: Path, workspace: Path, name: str, args: dict[str, object] | str
) -> None:
    fake_llm.script(Reply(tool_calls=[ToolCall(name, args)]), Reply(content="done"))
    proc = run_cli(["-p", "go", "-y"], home=home, cwd=workspace, base_url=fake_llm.base_url)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    [text] = results(fake_llm)
    assert "cannot be a path" in text, text
    assert proc.stdout.strip().endswith("done")
    assert sorted(p.name for p in workspace.iterdir()) == []


def test_content_that_cannot_be_encoded_is_a_tool_error(fake_llm: FakeLLM, home: Path, workspace: Path) -> None:
    fake_llm.script(Reply(tool_calls=[ToolCall("createfile", '{"path": "a.txt", "content": "x\\ud800y"}')]), Reply(content="done"))
    proc = run_cli(["-p", "go", "-y"], home=home, cwd=workspace, base_url=fake_llm.base_url)
    assert proc.returncode == 0, proc.stderr
    [text] = results(fake_llm)
    assert "cannot write" in text and "\\ud800" in text, text
    assert not (workspace / "a.txt").exists()


@pytest.fixture
def one_line(workspace: Path) -> Path:
    path = workspace / "min.js"
    path.write_text("a" * (BIG // 2) + "NEEDLE" + "b" * (BIG // 2))
    return path


@pytest.mark.parametrize(
    "call",
    [
        ToolCall("strreplace", {"path": "min.js", "old_str": "NEEDLE", "new_str": "THREAD"}),
        ToolCall("insert", {"path": "min.js", "insert_line": 1, "new_str": "THREAD"}),
        ToolCall("insert", {"path": "min.js", "insert_line": 0, "new_str": "THREAD"}),
    ],
    ids=["strreplace", "insert-after", "insert-before"],
)
def test_an_edit_of_a_huge_line_returns_a_bounded_snippet(
    fake_llm: FakeLLM, home: Path, workspace: Path, one_line: Path, call: ToolCall
) -> None:
    fake_llm.script(Reply(tool_calls=[call]), Reply(content="done"))
    proc = run_cli(["-p", "go", "-y"], home=home, cwd=workspace, base_url=fake_llm.base_url)
    assert proc.returncode == 0, proc.stderr
    [text] = results(fake_llm)
    assert len(text) <= MAX_OUTPUT_CHARS, len(text)
    assert "THREAD" in text  # what changed is in view, with a marker where the line was cut
    assert "characters cut" in text
    assert "THREAD" in one_line.read_text()


def test_view_of_a_huge_line_is_bounded(fake_llm: FakeLLM, home: Path, workspace: Path, one_line: Path) -> None:
    fake_llm.script(Reply(tool_calls=[ToolCall("view", {"path": "min.js"})]), Reply(content="done"))
    proc = run_cli(["-p", "go"], home=home, cwd=workspace, base_url=fake_llm.base_url)
    assert proc.returncode == 0, proc.stderr
    [text] = results(fake_llm)
    assert len(text) <= MAX_OUTPUT_CHARS + 200, len(text)
    assert "characters cut" in text


@pytest.mark.parametrize(
    "name, args",
    [
        ("createfile", {"path": "x" * 300, "content": "y"}),
        ("strreplace", {"path": "x" * 300, "old_str": "a", "new_str": "b"}),
        ("insert", {"path": "x" * 300, "insert_line": 0, "new_str": "b"}),
        ("view", {"path": "~nosuchuser-4d1f/x"}),
    ],
)
def test_names_too_long_or_unknown_homes_are_a_tool_error(
    fake_llm: FakeLLM, home: Path, workspace: Path, name: str, args: dict[str, object]
) -> None:
    fake_llm.script(Reply(tool_calls=[ToolCall(name, args)]), Reply(content="done"))
    proc = run_cli(["-p", "go", "-y"], home=home, cwd=workspace, base_url=fake_llm.base_url)
    assert proc.returncode == 0, proc.stderr
    [text] = results(fake_llm)
    assert "too long" in text or "cannot be a path" in text, text
    assert "unexpectedly" not in text  # the tool's own clear error, not the loop's catch-all
    assert list(workspace.iterdir()) == []
