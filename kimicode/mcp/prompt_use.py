"""Using a server's prompt: ``/mcp__SERVER__PROMPT args`` in any front end becomes the prompt's turn
(kimicode.mcp.prompts lists the prompts and maps the arguments)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kimicode.mcp.prompts import COMMAND_PREFIX, PromptArgError, RemotePrompt, parse_arguments, turn_of

if TYPE_CHECKING:
    from kimicode.llm.messages import Image
    from kimicode.mcp.manager import McpManager

__all__ = ["expand_prompt_command", "find_prompt", "use_prompt"]


def find_prompt(manager: McpManager, command: str) -> RemotePrompt | None:
    return next((prompt for prompt in manager.prompts() if prompt.command == command), None)


async def use_prompt(manager: McpManager, prompt: RemotePrompt, words: str) -> tuple[str, list[Image]]:
    """The user's turn the prompt gives for the typed words; PromptArgError (one line) when there is none."""
    values = parse_arguments(prompt, words)
    result = await manager.get_prompt(prompt.server, prompt.name, values)
    if isinstance(result, str):
        raise PromptArgError(f"/{prompt.command}: {result}")
    text, images = turn_of(result, f"{prompt.server}/{prompt.name}", manager.blob_dir)
    if not text and not images:
        raise PromptArgError(f"/{prompt.command}: the server's prompt was empty; nothing was sent")
    return text, images


async def expand_prompt_command(text: str, manager: McpManager | None) -> tuple[str, list[Image]] | None:
    """The turn of ``/mcp__SERVER__PROMPT args``; None when ``text`` names no MCP prompt. A command of that
    form naming no prompt of a ready server raises PromptArgError."""
    stripped = text.strip()
    if not stripped.startswith("/" + COMMAND_PREFIX):
        return None
    head, _, words = stripped[1:].partition(" ")
    head, _, more = head.partition("\n")
    words = f"{more} {words}".strip()
    prompt = find_prompt(manager, head) if manager is not None else None
    if prompt is None or manager is None:
        names = ", ".join(f"/{p.command}" for p in manager.prompts()) if manager is not None else ""
        raise PromptArgError(f"no MCP server offers the prompt /{head} (offered: {names or 'none'})")
    return await use_prompt(manager, prompt, words)
