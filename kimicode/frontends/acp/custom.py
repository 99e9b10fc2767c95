"""The user's custom slash commands in an editor: listed in ``available_commands_update`` next to kimicode's
own, and a prompt that starts with ``/name`` is sent as the command's expanded template.

MCP servers' prompts are commands too (``/mcp__SERVER__PROMPT``): the servers start in the background, so
the list is sent again once they are ready (within mcp_startup_wait) when they brought prompts; a prompt's
``@SERVER:URI`` mentions attach those resources."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from acp import helpers as h
from acp.schema import AvailableCommand, AvailableCommandInput, UnstructuredCommandInput

from kimicode.extensions.commands import CommandCatalog, find_commands
from kimicode.frontends.acp.options import COMMANDS, available_commands

if TYPE_CHECKING:
    from kimicode.config import Config
    from kimicode.mcp.prompts import RemotePrompt


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


_announcing: set[asyncio.Task[None]] = set()  # kept referenced until done


async def announce_commands(session: Any) -> None:
    """kimicode's commands, the user's, and the MCP prompts of the servers ready now; again once the
    servers still starting are ready, when they bring prompts."""
    session.custom = custom_catalog(session.config)  # the user's own commands, read when the editor is told them
    await session.send(h.update_available_commands(_all_commands(session)))
    mcp = session.mcp
    if mcp is not None and any(status.state == "starting" for status in mcp.status()):
        task = asyncio.get_running_loop().create_task(_announce_when_ready(session, len(mcp.prompts())))
        _announcing.add(task)
        task.add_done_callback(_announcing.discard)


async def _announce_when_ready(session: Any, known: int) -> None:
    await session.mcp.wait_ready(session.config.mcp_startup_wait)
    if len(session.mcp.prompts()) != known:
        await session.send(h.update_available_commands(_all_commands(session)))


def _all_commands(session: Any) -> list[AvailableCommand]:
    prompts = session.mcp.prompts() if session.mcp is not None else []
    return [*available_commands(), *custom_available(session.custom), *(prompt_command(p) for p in prompts)]


def prompt_command(prompt: RemotePrompt) -> AvailableCommand:
    about = f"{prompt.description} (MCP server {prompt.server})" if prompt.description else f"MCP server {prompt.server}"
    hint = AvailableCommandInput(UnstructuredCommandInput(hint=prompt.usage)) if prompt.usage else None
    return AvailableCommand(name=prompt.command, description=about, input=hint)


async def use_custom_command(session: Any, text: str, images: list[Any]) -> tuple[str, list[Any]] | None:
    """The prompt to run and its images: ``text`` itself, the expanded command it names (its
    ``allowed-tools`` gate set for the turn) or the MCP prompt it names, with the MCP resources it mentions;
    None when it cannot be used (the editor was told why in one line)."""
    prompt = await _custom_prompt(session, text)
    if prompt is None:
        return None
    from kimicode.frontends.common.mcp_input import McpInputError, mcp_input

    if session.mcp is not None and (prompt.startswith("/") or "@" in prompt):
        await session.mcp.wait_ready(session.config.mcp_startup_wait)
    try:
        prompt, more, _ = await mcp_input(prompt, images, session.mcp)
    except McpInputError as exc:
        await session.send(h.update_agent_message_text(f"_kimicode: {exc}_\n\n"))
        return None
    return prompt, list(more or [])


async def _custom_prompt(session: Any, text: str) -> str | None:
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
