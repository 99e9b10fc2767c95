"""An MCP tool call's result as a kimicode ToolResult.

Invariants:
- Text stays text, images become Images (with their size when they are PNG), structured content is
  JSON text when the result has no text; content kimicode cannot pass on (audio) is named in a line
  instead of being dropped silently.
- A resource link keeps what the server said about it (name, title, type, size, description).
- A binary resource is saved under ``blob_dir`` (the session's folder) and named by its path, so the model
  can ``view`` it; never in the folder's parent, whatever its URI says.
- The text is cut in the middle to the tool output limit; a result is never empty.
"""

from __future__ import annotations

import base64
import hashlib
import json
import mimetypes
import os
import re
import struct
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from kimicode.llm.messages import Image
from kimicode.tools.base import ToolResult, truncate_middle

__all__ = ["convert_result"]


def convert_result(result: Any, label: str = "", blob_dir: Path | None = None) -> ToolResult:
    """Map an MCP CallToolResult: text → text, images → Image, structured content → JSON text, binary
    resources → files in ``blob_dir``."""
    texts: list[str] = []
    images: list[Image] = []
    for block in getattr(result, "content", None) or []:
        kind = getattr(block, "type", "")
        if kind == "text":
            texts.append(block.text)
        elif kind == "image":
            try:
                data = base64.b64decode(block.data)
            except ValueError:
                texts.append(f"[image from {label} could not be decoded]")
                continue
            width, height = _png_size(data)
            images.append(Image(mime=block.mime_type, data=data, width=width, height=height, label=label))
        elif kind == "audio":
            texts.append(f"[audio content ({block.mime_type}) is not supported and was left out]")
        elif kind == "resource":
            resource = block.resource
            text = getattr(resource, "text", None)
            texts.append(text if text is not None else _saved_blob(resource, blob_dir))
        elif kind == "resource_link":
            texts.append(_describe_link(block))
    structured = getattr(result, "structured_content", None)
    if structured is not None and not texts:
        texts.append(json.dumps(structured, ensure_ascii=False, indent=2))
    text = "\n".join(texts) if texts else ("(no output)" if not images else "")
    return ToolResult(text=truncate_middle(text), images=images, is_error=bool(getattr(result, "is_error", False)))


def _describe_link(link: Any) -> str:
    """"[resource link: URI — name "Q3 report", type text/csv, 2048 bytes: Sales by region]"."""
    facts = []
    for what, value in (("name", link.name), ("title", getattr(link, "title", None))):
        if value:
            facts.append(f"{what} {json.dumps(value, ensure_ascii=False)}")
    if getattr(link, "mime_type", None):
        facts.append(f"type {link.mime_type}")
    if getattr(link, "size", None) is not None:
        facts.append(f"{link.size} bytes")
    about = f": {' '.join(link.description.split())}" if getattr(link, "description", None) else ""
    return f"[resource link: {link.uri} — {', '.join(facts)}{about}]" if facts or about else f"[resource link: {link.uri}]"


def _saved_blob(resource: Any, blob_dir: Path | None) -> str:
    """Save a binary resource's bytes and say where; the line names the resource either way."""
    mime = getattr(resource, "mime_type", None) or "application/octet-stream"
    uri = str(resource.uri)
    try:
        data = base64.b64decode(getattr(resource, "blob", "") or "")
    except ValueError:
        return f"[binary resource {uri} ({mime}) could not be decoded]"
    if blob_dir is None:
        return f"[binary resource {uri} ({mime}, {len(data)} bytes) not saved]"
    # Only the last segment of the URI, cleaned, names the file: a URI cannot lead it out of blob_dir.
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", unquote(uri.rstrip("/").rsplit("/", 1)[-1]))[-80:].lstrip(".") or "resource"
    if "." not in stem:
        stem += mimetypes.guess_extension(mime) or ".bin"
    path = blob_dir / f"{hashlib.sha256(data).hexdigest()[:10]}-{stem}"
    try:
        blob_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
    except OSError as exc:
        return f"[binary resource {uri} ({mime}, {len(data)} bytes) could not be saved: {exc.strerror or exc}]"
    return f"[binary resource {uri} ({mime}, {len(data)} bytes) saved to {path}; view it there]"


def _png_size(data: bytes) -> tuple[int, int]:
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    return 0, 0
