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
from typing import Any

from kimicode.mcp.prompts import MAX_PAGES, declares

__all__ = ["MENTION", "MentionError", "RemoteResource", "list_resources"]

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

