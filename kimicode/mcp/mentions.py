"""``@SERVER:URI`` in a message: each mentioned resource read and attached (kimicode.mcp.resources says how)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from kimicode.mcp.resources import MAX_RESOURCE_CHARS, MENTION, MentionError

if TYPE_CHECKING:
    from kimicode.mcp.manager import McpManager

__all__ = ["expand_resource_mentions", "mentions_in"]


def mentions_in(text: str, servers: set[str]) -> list[tuple[str, str]]:
    """(server, uri) of each mention of one of ``servers`` in ``text``, in order, once each. Raises
    MentionError for ``@NAME:scheme://...`` when no server is named NAME: plainly meant as a resource."""
    found: list[tuple[str, str]] = []
    for match in MENTION.finditer(text):
        pair = (match.group(1), match.group(2).rstrip(".,;!?)"))
        if pair[0] not in servers and "://" in pair[1]:
            known = ", ".join(sorted(servers)) or "none"
            raise MentionError(f"@{pair[0]}:{pair[1]}: no MCP server is named {pair[0]!r} (servers: {known})")
        if pair[0] in servers and pair not in found:
            found.append(pair)
    return found


async def expand_resource_mentions(text: str, manager: McpManager | None) -> tuple[str, list[str]]:
    """``text`` with each mentioned resource's content appended, and the mentions attached; raises
    MentionError when one cannot be read."""
    pairs = mentions_in(text, set(manager.server_names()) if manager is not None else set())
    if manager is None:
        return text, []
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
