"""A server's resources as ``@SERVER:URI`` mentions in a message (DESIGN B.17).

Invariants:
- Resources are listed once per connection (for completion), only from a server that declares the
  resources capability, bounded like prompts; a failing list is a note in the server's log.
- A mention of a configured server is read with ``resources/read`` and attached to the message: text
  redacted and cut to the attachment limit, binary contents saved to a file as tool results' are
  (kimicode.mcp.results) and named by their path. ``@word:...`` whose word names no configured server is
  not a mention (an e-mail address, ``@user:pass``); a mention of a server that is not available, or a
  read that fails, raises MentionError (one line) and nothing is sent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kimicode.mcp.prompts import MAX_PAGES, declares

if TYPE_CHECKING:
    from kimicode.mcp.manager import McpManager

__all__ = ["MentionError", "RemoteResource", "expand_resource_mentions", "list_resources", "mentions_in"]

MAX_RESOURCES = 500  # per server, offered for completion
MAX_RESOURCE_CHARS = 256 * 1024  # of one mention's text, like an attached file
MENTION = re.compile(r"(?<!\S)@([A-Za-z0-9_.-]+):(\S+)")


class MentionError(Exception):
    """A resource mention that cannot be attached; the message is one line for the user."""


@dataclass(frozen=True)
class RemoteResource:
    server: str
    uri: str
    name: str
    mime_type: str = ""

    @property
    def mention(self) -> str:
        return f"@{self.server}:{self.uri}"


async def list_resources(session: Any, server: str) -> list[RemoteResource]:
    if not declares(session, "resources"):
        return []
    found: list[RemoteResource] = []
    cursor: str | None = None
    for _ in range(MAX_PAGES):
        if cursor is None:
            listing = await session.list_resources()
        else:
            from mcp_types import PaginatedRequestParams

            listing = await session.list_resources(params=PaginatedRequestParams(cursor=cursor))
        for resource in listing.resources:
            found.append(RemoteResource(server, str(resource.uri), resource.name, resource.mime_type or ""))
        cursor = listing.next_cursor
        if not cursor or len(found) >= MAX_RESOURCES:
            break
    return found[:MAX_RESOURCES]


def mentions_in(text: str, servers: set[str]) -> list[tuple[str, str]]:
    """(server, uri) of each mention of one of ``servers`` in ``text``, in order, once each."""
    found: list[tuple[str, str]] = []
    for match in MENTION.finditer(text):
        pair = (match.group(1), match.group(2).rstrip(".,;!?)"))
        if pair[0] in servers and pair not in found:
            found.append(pair)
    return found


async def expand_resource_mentions(text: str, manager: McpManager | None) -> tuple[str, list[str]]:
    """``text`` with each mentioned resource's content appended, and the mentions attached; raises
    MentionError when one cannot be read."""
    if manager is None:
        return text, []
    pairs = mentions_in(text, set(manager.server_names()))
    blocks: list[str] = []
    for server, uri in pairs:
        blocks.append(await read_block(manager, server, uri))
    if not blocks:
        return text, []
    return text + "\n\n" + "\n\n".join(blocks), [f"@{server}:{uri}" for server, uri in pairs]


async def read_block(manager: McpManager, server: str, uri: str) -> str:
    """One resource as the model sees an attached file."""
    from kimicode.mcp.results import _saved_blob
    from kimicode.security.redact import redact
    from kimicode.tools.base import truncate_middle

    result = await manager.read_resource(server, uri)
    if isinstance(result, str):
        raise MentionError(f"@{server}:{uri} could not be read: {result}")
    parts: list[str] = []
    for contents in getattr(result, "contents", None) or []:
        text = getattr(contents, "text", None)
        parts.append(text if text is not None else _saved_blob(contents, _blob_dir(manager)))
    body = truncate_middle(redact("\n".join(parts)), MAX_RESOURCE_CHARS) if parts else "(empty)"
    return f'<resource server="{server}" uri="{uri}">\n{body.rstrip()}\n</resource>'


def _blob_dir(manager: McpManager) -> Path | None:
    return manager.blob_dir
