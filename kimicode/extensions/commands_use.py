"""Using a custom command from any front end: a ``/name args`` message becomes the prompt to send, and the
command's ``allowed-tools`` become the tool gate of that turn.

``allowed-tools`` is honoured as a restriction: during the command's turn a call to a tool not listed is
refused (the model is told so and can go on). Claude Code's tool names count for kimicode's (``Bash`` is
``bash``, ``Write`` is ``createfile``…); an argument pattern such as ``Bash(git diff:*)`` allows the tool
(the permission rules still decide each call). ``submit``, ``todo`` and ``propose_plan`` stay allowed: they
end or steer the turn and touch nothing. The ``model`` field is read but not used (the session's model
answers).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from kimicode.extensions.commands import CommandCatalog, CustomCommand
from kimicode.extensions.commands_expand import expand, policed_shell

if TYPE_CHECKING:
    from kimicode.security.policy import Policy
    from kimicode.tools.base import ToolContext

# Claude Code's tool names, as the kimicode tools that do the same.
TOOL_ALIASES: dict[str, tuple[str, ...]] = {
    "Bash": ("bash",),
    "Write": ("createfile",),
    "Edit": ("strreplace", "insert"),
    "MultiEdit": ("strreplace", "insert"),
    "Read": ("view",),
    "WebFetch": ("fetch",),
    "WebSearch": ("$web_search",),
    "TodoWrite": ("todo",),
}
ALWAYS_ALLOWED = ("submit", "todo", "propose_plan")


@dataclass(frozen=True)
class Expanded:
    command: CustomCommand
    prompt: str


def split_slash(text: str) -> tuple[str, str] | None:
    """("name", "arguments") when ``text`` starts with ``/name`` (``/path/to/x`` is not a command)."""
    if not text.startswith("/"):
        return None
    head, _, rest = text[1:].partition(" ")
    if "\n" in head:
        head, _, more = head.partition("\n")
        rest = f"{more}\n{rest}" if rest else more
    if not head or "/" in head:
        return None
    return head, rest.strip()


async def expand_message(
    text: str,
    catalog: CommandCatalog,
    workspace: Path,
    *,
    trusted: bool,
    policy: Policy,
    ctx: ToolContext,
    reserved: Collection[str] = (),
) -> Expanded | None:
    """The expanded prompt when ``text`` uses a custom command (not one of ``reserved``, the front end's
    own), else None. Raises ExpansionError (one line) when the command cannot be used."""
    parsed = split_slash(text.strip())
    if parsed is None or parsed[0] in reserved:
        return None
    command = catalog.get(parsed[0])
    if command is None:
        return None
    shell = policed_shell(policy, ctx) if trusted else None
    return Expanded(command, await expand(command, parsed[1], workspace, shell))


def allowed_tool_names(command: CustomCommand) -> set[str] | None:
    """The kimicode tools the command's turn may call; None when it does not restrict them."""
    if not command.allowed_tools:
        return None
    names = set(ALWAYS_ALLOWED)
    for entry in command.allowed_tools:
        tool = entry.partition("(")[0].strip()
        names.update(TOOL_ALIASES.get(tool, (tool,)))
    return names


class CommandGate:
    """A tool gate for one command's turn (a front end recognises its own gate to lift it afterwards)."""

    def __init__(self, name: str, allowed: set[str]) -> None:
        self.name = name
        self.allowed = allowed

    def __call__(self, tool: str) -> str | None:
        if tool in self.allowed:
            return None
        listed = ", ".join(sorted(self.allowed - set(ALWAYS_ALLOWED))) or "none"
        return f"/{self.name} allows only these tools (allowed-tools): {listed}; {tool} was not called"


def tool_gate(command: CustomCommand) -> CommandGate | None:
    allowed = allowed_tool_names(command)
    return None if allowed is None else CommandGate(command.name, allowed)
