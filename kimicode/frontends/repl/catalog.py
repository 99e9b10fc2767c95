"""Every slash command of the REPL, in one list: a new command is one more entry here.

The registry is built from this list when the REPL starts (nothing registers itself by being imported), so
what exists is read here and a command module can be imported, or tested, on its own.
"""

from __future__ import annotations

from kimicode.frontends.repl import hooks_command, session_commands, settings_commands, tasks_command, verbs
from kimicode.frontends.repl.commands import CommandRegistry


def repl_commands() -> CommandRegistry:
    return CommandRegistry(
        [*session_commands.COMMANDS, *settings_commands.COMMANDS, *verbs.COMMANDS, tasks_command.COMMAND, hooks_command.COMMAND]
    )
