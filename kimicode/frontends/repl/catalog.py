"""Every slash command of the REPL, in one list: a new command is one more entry here.

The registry is built from this list when the REPL starts (nothing registers itself by being imported), so
what exists is read here and a command module can be imported, or tested, on its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kimicode.frontends.repl import (
    agents_command,
    custom_commands,
    hooks_command,
    session_commands,
    settings_commands,
    tasks_command,
    verbs,
)
from kimicode.frontends.repl.commands import CommandRegistry
from kimicode.frontends.repl.context_view import COMMAND as CONTEXT_COMMAND
from kimicode.frontends.repl.history_view import COMMAND as HISTORY_COMMAND
from kimicode.frontends.repl.mcp_prompts import LiveCommands
from kimicode.frontends.repl.rewind import COMMAND as REWIND_COMMAND

if TYPE_CHECKING:
    from collections.abc import Callable

    from kimicode.config import Config
    from kimicode.mcp.manager import McpManager


def repl_commands(config: Config | None = None, mcp: Callable[[], McpManager | None] | None = None) -> CommandRegistry:
    """The built-in commands, then (given ``config``) the user's own whose names no built-in has, and (given
    ``mcp``, the session's MCP servers) their prompts as they connect."""
    builtin = [
        *session_commands.COMMANDS, *settings_commands.COMMANDS, *verbs.COMMANDS, tasks_command.COMMAND,
        agents_command.COMMAND, custom_commands.MEMORY_COMMAND, REWIND_COMMAND, HISTORY_COMMAND, CONTEXT_COMMAND,
        hooks_command.COMMAND,
    ]
    if config is None:
        return CommandRegistry(builtin)
    reserved = {command.name for command in CommandRegistry(builtin)}
    commands = [*builtin, *custom_commands.custom_slash_commands(config, reserved)]
    return CommandRegistry(commands) if mcp is None else LiveCommands(commands, mcp, custom_commands.prompt_command)
