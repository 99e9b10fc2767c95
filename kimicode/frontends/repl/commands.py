"""Slash commands as objects, and the registry the REPL dispatches through.

A command is a ``SlashCommand`` (name, help, handler); its handler is
``async def handler(repl: ReplControl, argument: str) -> None`` and may only do to the REPL what
kimicode.frontends.repl.control.ReplControl offers. The registry is built from an explicit list
(kimicode.frontends.repl.catalog): a feature adds its command there, in one line, never by being imported.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kimicode.frontends.repl.control import ReplControl

Handler = Callable[["ReplControl", str], Awaitable[Any]]
# ``!cmd`` runs a shell command; it is dispatched like a command named "!".
SHELL_ESCAPE = "!"
KEYS_HELP = (
    "  Enter sends · Shift-Enter, Alt-Enter or Ctrl-J new line · Ctrl-G edit in $EDITOR · Ctrl-V paste an "
    "image · @path attaches a file · Ctrl-C cancels a turn · Ctrl-C twice or Ctrl-D exits",
    "  During a turn: Enter queues · Up edits the last queued · Ctrl-S sends into the turn · "
    "Ctrl-B backgrounds the command · Esc cancels · Shift-Tab: ask → auto-edit → plan · Ctrl-T folds the todo list",
)


@dataclass(frozen=True)
class SlashCommand:
    name: str  # without the slash
    help: str
    handler: Handler
    usage: str = ""  # e.g. "[ID]"
    # Runs at once while a turn is running (it only reads, or changes what is shown); others wait in the
    # queue for the turn's end.
    while_running: bool = False


class CommandRegistry:
    """The commands by name, with ``/help`` (which lists them) built in."""

    def __init__(self, commands: Iterable[SlashCommand]) -> None:
        self._commands: dict[str, SlashCommand] = {}
        for command in (SlashCommand("help", "show the commands and keys", self._help, while_running=True), *commands):
            if command.name in self._commands:
                raise ValueError(f"two commands are named {command.name!r}")
            self._commands[command.name] = command

    def get(self, name: str) -> SlashCommand | None:
        return self._commands.get(name)

    def __iter__(self) -> Iterator[SlashCommand]:
        return iter(sorted(self._commands.values(), key=lambda c: c.name))

    def slash_names(self) -> list[str]:
        """The commands typed with a slash (what Tab completes after ``/``)."""
        return sorted(name for name in self._commands if name != SHELL_ESCAPE)

    @staticmethod
    def label(command: SlashCommand) -> str:
        """How /help names a command: ``/name usage`` (``!command`` for the shell escape)."""
        if command.name == SHELL_ESCAPE:
            return f"{SHELL_ESCAPE}{command.usage}"
        return f"/{command.name} {command.usage}" if command.usage else f"/{command.name}"

    async def _help(self, repl: ReplControl, arg: str) -> None:
        rows = [(self.label(command), command.help) for command in self]
        width = max(len(label) for label, _ in rows)  # the longest usage sets the column
        for label, text in rows:
            repl.renderer.info(f"  {label:<{width}}  {text}")
        for line in KEYS_HELP:
            repl.renderer.dim(line)


def parse(line: str) -> tuple[str, str] | None:
    """("name", "argument") when ``line`` is a slash command (or ``!cmd``), else None ("/path/to/x" is not one)."""
    if line.startswith(SHELL_ESCAPE):
        return SHELL_ESCAPE, line[1:].strip()
    if not line.startswith("/"):
        return None
    head, _, rest = line[1:].partition(" ")
    if not head or "/" in head:
        return None
    return head, rest.strip()
