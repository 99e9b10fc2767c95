"""Help as a user reads it: `-h` on every command and subcommand, one plain style, values named by meaning."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer

from kimicode import cli
from kimicode.manage import register
from tests.clirun import run_cli


def command_paths() -> list[list[str]]:
    """Every command of the tree, as the words a user types before `-h`."""
    manage = typer.Typer()
    register(manage)
    root = typer.main.get_command(manage)
    paths: list[list[str]] = [[]]  # the main command

    def walk(command: object, words: list[str]) -> None:
        for name, sub in getattr(command, "commands", {}).items():
            paths.append([*words, name])
            walk(sub, [*words, name])

    walk(root, [])
    return paths


PATHS = command_paths()
TYPE_TAG = re.compile(r"<(str|int|float|bool|path|Path|dict|list\[[^\]]*\])>")


def test_every_subcommand_is_listed() -> None:
    names = {path[0] for path in PATHS if path}
    assert set(cli.SUBCOMMANDS) <= names


@pytest.mark.parametrize("words", PATHS, ids=lambda words: " ".join(words) or "kimicode")
def test_dash_h_works_and_speaks_plainly(words: list[str], tmp_path: Path) -> None:
    proc = run_cli([*words, "-h"], home=tmp_path / "home", cwd=tmp_path, timeout=60)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert text.startswith("Usage: kimicode"), text[:200]
    assert not TYPE_TAG.search(text), TYPE_TAG.search(text)
    assert not set(text) & set("╭╮╰╯│─"), "rich boxes: every command should use the same plain style"
    assert "--install-completion" not in text
