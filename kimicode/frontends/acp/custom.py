"""The user's custom slash commands in an editor: listed in ``available_commands_update`` next to kimicode's
own, and a prompt that starts with ``/name`` is sent as the command's expanded template."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from acp import helpers as h
from acp.schema import AvailableCommand, AvailableCommandInput, UnstructuredCommandInput

from kimicode.extensions.commands import CommandCatalog, find_commands
from kimicode.frontends.acp.options import COMMANDS

if TYPE_CHECKING:
    from kimicode.config import Config


def custom_catalog(config: Config) -> CommandCatalog:
    """The custom commands, without those whose name one of kimicode's own ACP commands has."""
    catalog = find_commands(config.work_dir, config.home)
    for name in COMMANDS:
        catalog.commands.pop(name, None)
    return catalog


def custom_available(catalog: CommandCatalog) -> list[AvailableCommand]:
    return [
        AvailableCommand(
            name=name,
            description=f"{command.summary} ({command.source})",
            input=AvailableCommandInput(UnstructuredCommandInput(hint=command.argument_hint))
            if command.argument_hint else None,
        )
        for name, command in catalog.commands.items()
    ]


async def use_custom_command(session: Any, text: str) -> str | None:
    """The prompt to run: ``text`` itself, or the expanded command it names (its ``allowed-tools`` gate set
    for the turn); None when the command cannot be used (the editor was told why in one line)."""
    from kimicode.extensions.commands_expand import ExpansionError
    from kimicode.extensions.commands_use import CommandGate, expand_message, tool_gate

    agent = session.agent
    if isinstance(agent.tool_gate, CommandGate):  # the previous command's turn is over
        agent.tool_gate = None
    config = session.config
    catalog = getattr(session, "custom", None)
    if catalog is None:  # a prompt before the commands were announced
        catalog = session.custom = custom_catalog(config)
    try:
        used = await expand_message(
            text, catalog, config.work_dir, trusted=config.trusted, policy=agent.policy, ctx=agent.ctx
        )
    except ExpansionError as exc:
        await session.send(h.update_agent_message_text(f"_kimicode: {exc}_\n\n"))
        return None
    if used is None:
        return text
    agent.tool_gate = tool_gate(used.command) or agent.tool_gate
    return used.prompt
