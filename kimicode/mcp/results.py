"""An MCP tool call's result as a kimicode ToolResult.

Invariants:
- Text stays text, images become Images (with their size when they are PNG), structured content is
  JSON text when the result has no text; content kimicode cannot pass on (audio, binary resources) is
  named in a line instead of being dropped silently.
- The text is cut in the middle to the tool output limit; a result is never empty.
"""

from __future__ import annotations

import base64
import json
import struct
from typing import Any

from kimicode.llm.messages import Image
from kimicode.tools.base import ToolResult, truncate_middle

__all__ = ["convert_result"]


def convert_result(result: Any, label: str = "") -> ToolResult:
    """Map an MCP CallToolResult: text → text, images → Image, structured content → JSON text."""
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
            texts.append(text if text is not None else f"[binary resource {resource.uri}]")
        elif kind == "resource_link":
            texts.append(f"[resource link: {block.uri}]")
    structured = getattr(result, "structured_content", None)
    if structured is not None and not texts:
        texts.append(json.dumps(structured, ensure_ascii=False, indent=2))
    text = "\n".join(texts) if texts else ("(no output)" if not images else "")
    return ToolResult(text=truncate_middle(text), images=images, is_error=bool(getattr(result, "is_error", False)))


def _png_size(data: bytes) -> tuple[int, int]:
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    return 0, 0
