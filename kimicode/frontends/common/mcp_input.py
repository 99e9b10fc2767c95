"""What a server's prompts and resources make of a message, in any front end: ``/mcp__SERVER__PROMPT args``
becomes the prompt's turn (kimicode.mcp.prompts) and each ``@SERVER:URI`` attaches that resource
(kimicode.mcp.resources)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kimicode.llm.messages import Image
    from kimicode.mcp.manager import McpManager

__all__ = ["McpInputError", "mcp_input"]


class McpInputError(Exception):
    """The message cannot be sent as it is; the message is one line for the user."""


async def mcp_input(
    text: str, images: list[Image] | None, manager: McpManager | None
) -> tuple[str, list[Image] | None, list[str]]:
    """The message to send, its images, and the resources it attached (as ``@SERVER:URI``)."""
    if manager is None and "@" not in text and not text.lstrip().startswith("/"):
        # Neither a prompt command nor a mention, and no server: nothing to expand or refuse, so the MCP
        # modules need not load (a run without servers never loads them).
        return text, images, []
    from kimicode.mcp.mentions import expand_resource_mentions
    from kimicode.mcp.prompt_use import expand_prompt_command
    from kimicode.mcp.prompts import PromptArgError
    from kimicode.mcp.resources import MentionError

    try:
        turn = await expand_prompt_command(text, manager)
        if turn is not None:
            text, more = turn
            images = [*(images or []), *more] or None
        text, attached = await expand_resource_mentions(text, manager)
    except (PromptArgError, MentionError) as exc:
        raise McpInputError(str(exc)) from None
    return text, images, attached
