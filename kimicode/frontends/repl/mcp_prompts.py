"""MCP servers' prompts and resources in the REPL: ``/mcp__SERVER__PROMPT args`` commands and ``@SERVER:URI``
mentions (DESIGN B.17).

The servers connect in the background after the REPL starts, so the prompt commands are not a fixed list:
``LiveCommands`` asks the session's MCP manager for them at each lookup, and Tab completion, ``/help`` and
the dispatcher see a server's prompts from the moment it is ready. A built-in or custom command keeps its
name. Resource completions come from each ready server's listing (made once per connection).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from functools import partial
from typing import TYPE_CHECKING

from kimicode.frontends.repl.commands import CommandRegistry, SlashCommand
from kimicode.mcp.prompts import COMMAND_PREFIX

if TYPE_CHECKING:
    from kimicode.frontends.repl.control import ReplControl
    from kimicode.frontends.repl.render import Renderer
    from kimicode.mcp.manager import McpManager
    from kimicode.mcp.prompts import RemotePrompt


class LiveCommands(CommandRegistry):
    """The REPL's commands and, as they connect, the MCP servers' prompts."""

    def __init__(
        self,
        commands: Iterable[SlashCommand],
        mcp: Callable[[], McpManager | None],
        as_command: Callable[[RemotePrompt], SlashCommand],
    ) -> None:
        super().__init__(commands)
        self._mcp = mcp
        self._as_command = as_command  # custom_commands.prompt_command: it runs like the user's commands

    def _prompts(self) -> dict[str, SlashCommand]:
        manager = self._mcp()
        found: dict[str, SlashCommand] = {}
        for prompt in manager.prompts() if manager is not None else []:
            if prompt.command not in found and super().get(prompt.command) is None:
                found[prompt.command] = self._as_command(prompt)
        return found

    def get(self, name: str) -> SlashCommand | None:
        found = super().get(name) or self._prompts().get(name)
        manager = self._mcp()
        if found is None and name.startswith(COMMAND_PREFIX) and manager is not None and _starting(manager):
            # Typed before its server connected: the command waits for the servers, then runs or says why not.
            return SlashCommand(name, "MCP prompt", partial(_when_connected, self, name))
        return found

    def __iter__(self) -> Iterator[SlashCommand]:
        return iter(sorted([*super().__iter__(), *self._prompts().values()], key=lambda c: c.name))

    def slash_names(self) -> list[str]:
        return sorted([*super().slash_names(), *self._prompts()])


def _starting(manager: McpManager) -> bool:
    return any(status.state == "starting" for status in manager.status())


async def _when_connected(commands: LiveCommands, name: str, repl: ReplControl, arg: str) -> None:
    manager = repl.mcp
    if manager is not None and _starting(manager):
        repl.renderer.dim("waiting for the MCP servers to connect…")
        await manager.wait_ready(repl.config.mcp_startup_wait)
    command = commands.get(name)
    if command is None or (isinstance(command.handler, partial) and command.handler.func is _when_connected):
        repl.renderer.error(f"unknown command /{name}; /help lists them")
        return
    await command.handler(repl, arg)


def describe(prompt: RemotePrompt) -> str:
    return f"{prompt.description} (MCP server {prompt.server})" if prompt.description else f"MCP server {prompt.server}"


async def prepare_prompt(prompt: RemotePrompt, repl: ReplControl, arg: str) -> str | None:
    """The prompt's turn (its images attached to it); None when it cannot be had (said in one line)."""
    from kimicode.mcp.prompt_use import use_prompt
    from kimicode.mcp.prompts import PromptArgError

    manager = repl.mcp
    if manager is None:
        repl.renderer.error(f"/{prompt.command}: no MCP servers run in this session")
        return None
    try:
        text, images = await use_prompt(manager, prompt, arg)
    except PromptArgError as exc:
        repl.renderer.error(str(exc))
        return None
    for image in images:
        repl.attach_part({"type": "image_url", "image_url": {"url": image.data_url()}})
        repl.renderer.dim(f"attached {image.describe()}")
    return text


async def with_resources(text: str, manager: McpManager | None, renderer: Renderer) -> str | None:
    """``text`` with the ``@SERVER:URI`` resources it mentions attached; None (one line said) when one cannot
    be read."""
    from kimicode.mcp.mentions import expand_resource_mentions
    from kimicode.mcp.resources import MentionError

    try:
        text, attached = await expand_resource_mentions(text, manager)
    except MentionError as exc:
        renderer.error(f"{exc}; the message was not sent")
        return None
    for mention in attached:
        renderer.dim(f"attached {mention}")
    return text


def resource_mentions(manager: McpManager | None) -> list[str]:
    """``SERVER:`` for each ready server, and ``SERVER:URI`` for each resource it listed (after ``@``)."""
    if manager is None:
        return []
    ready = [status.name for status in manager.status() if status.state == "ready"]
    return [*(f"{name}:" for name in ready), *(r.mention[1:] for r in manager.resources())]

