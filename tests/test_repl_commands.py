"""The REPL's slash commands: one registry built from the catalog's list, /help listing each, and command
modules that know the REPL only through the ReplControl Protocol (never the Repl class in app.py)."""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from kimicode.frontends.repl.catalog import repl_commands
from kimicode.frontends.repl.commands import SHELL_ESCAPE, CommandRegistry, SlashCommand, parse

REPL_PACKAGE = Path(__file__).resolve().parents[1] / "kimicode" / "frontends" / "repl"
# What the REPL offered before its commands became a list: none may go missing.
EXPECTED = {
    "help", "exit", "quit", "clear", "compact", "mode", "model", "thinking", "yolo", "permissions", "cost", "undo",
    "diff", "sessions", "resume", "image", "video", "skills", "mcp", "init", "fork", "export", "title",
    "terminal-setup", "tasks", "agents", "memory", SHELL_ESCAPE,
    "rewind", "history", "context", "hooks",
}
RUN_WHILE_A_TURN_RUNS = {"help", "exit", "quit", "yolo", "permissions", "cost", "tasks", "history", "context", "hooks"}


class Lines:
    """A renderer stand-in that keeps what the command printed."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, text: str, style: str = "") -> None:
        self.lines.append(text)

    dim = info


def test_the_catalog_holds_every_command_once() -> None:
    registry = repl_commands()
    assert {command.name for command in registry} == EXPECTED
    assert {command.name for command in registry if command.while_running} == RUN_WHILE_A_TURN_RUNS
    assert registry.slash_names() == sorted(EXPECTED - {SHELL_ESCAPE})


def test_two_commands_with_one_name_are_refused() -> None:
    async def handler(repl: Any, arg: str) -> None:
        return None

    with pytest.raises(ValueError, match="'title'"):
        CommandRegistry([SlashCommand("title", "a", handler), SlashCommand("title", "b", handler)])


def test_help_lists_every_command_with_its_usage() -> None:
    registry = repl_commands()
    renderer = Lines()
    help_command = registry.get("help")
    assert help_command is not None
    asyncio.run(help_command.handler(SimpleNamespace(renderer=renderer), ""))  # type: ignore[arg-type]
    text = "\n".join(renderer.lines)
    for command in registry:
        label = f"{SHELL_ESCAPE}{command.usage}" if command.name == SHELL_ESCAPE else f"/{command.name}"
        assert f"  {label}" in text, label
    assert "/resume [ID]" in text and "Ctrl-S sends into the turn" in text


@pytest.mark.parametrize(
    ("line", "parsed"),
    [("/mode swarm", ("mode", "swarm")), ("!git status", (SHELL_ESCAPE, "git status")), ("/tmp/x is a path", None), ("hi", None)],
)
def test_a_line_is_a_command_or_a_message(line: str, parsed: tuple[str, str] | None) -> None:
    assert parse(line) == parsed


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, those under ``if TYPE_CHECKING:`` and inside functions included."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_only_the_entry_point_imports_the_repl_class() -> None:
    offenders = sorted(
        path.name
        for path in REPL_PACKAGE.glob("*.py")
        if path.name != "app.py" and "kimicode.frontends.repl.app" in _imports(path)
    )
    assert offenders == []
