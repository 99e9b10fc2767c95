"""A server's prompts as slash commands: ``/mcp__SERVER__PROMPT args`` (DESIGN B.17).

Invariants:
- Prompts are listed once per connection, only from a server that declares the prompts capability, and
  bounded (pages, count, time); a failing list is one note in the server's log, never a failed server.
- The typed words map to the prompt's arguments: ``name=value`` words by name, the others in the prompt's
  argument order (the last positional one takes the rest of the line). A missing required argument, or an
  unknown name, is one line (PromptArgError) and nothing is sent.
- ``prompts/get``'s messages become the user's turn: their text (and embedded text resources) joined,
  their images as images, binary resources saved as tool results' are (kimicode.mcp.results).
"""

from __future__ import annotations

import base64
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kimicode.llm.messages import Image

__all__ = ["PromptArg", "PromptArgError", "RemotePrompt", "command_name", "list_prompts", "parse_arguments", "turn_of"]

MAX_PROMPTS = 200  # per server
MAX_PAGES = 10
COMMAND_PREFIX = "mcp__"


class PromptArgError(Exception):
    """The typed words do not fit the prompt's arguments; the message is one line for the user."""


@dataclass(frozen=True)
class PromptArg:
    name: str
    required: bool
    description: str = ""


@dataclass(frozen=True)
class RemotePrompt:
    server: str
    name: str
    description: str
    arguments: tuple[PromptArg, ...]

    @property
    def command(self) -> str:
        return command_name(self.server, self.name)

    @property
    def usage(self) -> str:
        """"FILE [FOCUS]": what the command takes, in order."""
        return " ".join(arg.name.upper() if arg.required else f"[{arg.name.upper()}]" for arg in self.arguments)


def command_name(server: str, prompt: str) -> str:
    return f"{COMMAND_PREFIX}{_word(server)}__{_word(prompt)}"


def _word(text: str) -> str:
    # A command is one word the REPL, -p and editors split on spaces and tell from a path by its "/".
    return re.sub(r"[^A-Za-z0-9_.:-]", "_", text) or "_"


def declares(session: Any, capability: str) -> bool:
    capabilities = getattr(session, "server_capabilities", None)
    return getattr(capabilities, capability, None) is not None


async def list_prompts(session: Any, server: str) -> list[RemotePrompt]:
    """The server's prompts (empty when it declares none); raises what the session raises."""
    if not declares(session, "prompts"):
        return []
    found: list[RemotePrompt] = []
    cursor: str | None = None
    for _ in range(MAX_PAGES):
        if cursor is None:
            listing = await session.list_prompts()
        else:
            from mcp_types import PaginatedRequestParams

            listing = await session.list_prompts(params=PaginatedRequestParams(cursor=cursor))
        for prompt in listing.prompts:
            arguments = tuple(
                PromptArg(arg.name, bool(arg.required), " ".join((arg.description or "").split()))
                for arg in prompt.arguments or []
            )
            found.append(RemotePrompt(server, prompt.name, " ".join((prompt.description or "").split()), arguments))
        cursor = listing.next_cursor
        if not cursor or len(found) >= MAX_PROMPTS:
            break
    return found[:MAX_PROMPTS]


def parse_arguments(prompt: RemotePrompt, text: str) -> dict[str, str]:
    """The prompt's arguments from the words typed after the command."""
    try:
        words = shlex.split(text)
    except ValueError:
        words = text.split()
    named = {arg.name: arg for arg in prompt.arguments}
    values: dict[str, str] = {}
    positional: list[str] = []
    for word in words:
        key, eq, value = word.partition("=")
        if eq and key in named:
            values[key] = value
        elif eq and key.isidentifier() and not positional:
            known = ", ".join(named) or "none"
            raise PromptArgError(f"/{prompt.command} has no argument {key!r} (its arguments: {known})")
        else:
            positional.append(word)
    free = [arg for arg in prompt.arguments if arg.name not in values]
    for index, arg in enumerate(free):
        if index >= len(positional):
            break
        values[arg.name] = " ".join(positional[index:]) if index == len(free) - 1 else positional[index]
    if len(positional) > len(free) and not free:
        raise PromptArgError(f"/{prompt.command} takes no more arguments than {prompt.usage or 'none'}")
    missing = [arg.name for arg in prompt.arguments if arg.required and not values.get(arg.name)]
    if missing:
        usage = f"/{prompt.command} {prompt.usage}".rstrip()
        raise PromptArgError(f"/{prompt.command} needs the argument {', '.join(missing)} (usage: {usage})")
    return values


def turn_of(result: Any, label: str, blob_dir: Path | None) -> tuple[str, list[Image]]:
    """A GetPromptResult as the user's turn: its messages' text, and their images."""
    from kimicode.mcp.results import _saved_blob

    texts: list[str] = []
    images: list[Image] = []
    for message in getattr(result, "messages", None) or []:
        block = message.content
        kind = getattr(block, "type", "")
        if kind == "text":
            texts.append(block.text)
        elif kind == "image":
            try:
                images.append(Image(mime=block.mime_type, data=base64.b64decode(block.data), label=label))
            except ValueError:
                texts.append(f"[an image from {label} could not be decoded]")
        elif kind == "resource":
            text = getattr(block.resource, "text", None)
            texts.append(text if text is not None else _saved_blob(block.resource, blob_dir))
        elif kind == "resource_link":
            texts.append(f"[resource link: {block.uri}]")
        else:
            texts.append(f"[{kind or 'some'} content from {label} is not supported and was left out]")
    return "\n\n".join(text for text in texts if text), images

