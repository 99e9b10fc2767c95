"""Text that tells the truth: counted nouns agree with their count, /help's columns line up."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from kimicode.frontends.repl.catalog import repl_commands
from kimicode.wording import plural


class Lines:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, text: str, style: str = "") -> None:
        self.lines.append(text)

    dim = info


def test_counted_nouns_take_the_form_their_count_asks_for() -> None:
    assert plural(1, "tool") == "1 tool"
    assert [plural(n, "model") for n in (0, 2)] == ["0 models", "2 models"]
    assert plural(1, "entry") == "1 entry" and plural(3, "entry") == "3 entries"


def test_help_descriptions_start_in_one_column_however_long_the_usage() -> None:
    registry = repl_commands()
    renderer = Lines()
    help_command = registry.get("help")
    assert help_command is not None
    asyncio.run(help_command.handler(SimpleNamespace(renderer=renderer), ""))  # type: ignore[arg-type]
    columns = set()
    for command in registry:
        label = registry.label(command)
        [line] = [line for line in renderer.lines if line.startswith(f"  {label} ")]
        columns.add(line.index(command.help, len(label) + 2))
    assert len(columns) == 1, columns
    mode = next(line for line in renderer.lines if line.startswith("  /mode "))
    assert "[instant|thinking|agent|swarm]  " in mode  # the longest usage is still followed by a gap
