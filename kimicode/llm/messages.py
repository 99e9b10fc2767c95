"""Messages and content parts, kept in their OpenAI wire form.

History is a list of plain dicts exactly as they go over the wire: nothing is converted per request,
so a long session costs one ``json.dumps`` per step, and the session log can store them as they are.
This module only builds and inspects those dicts.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

Message = dict[str, Any]


@dataclass(frozen=True)
class Image:
    """An encoded image ready to send: ``data`` holds the file bytes in ``mime`` format."""

    mime: str
    data: bytes
    width: int = 0
    height: int = 0
    label: str = ""  # shown before the image to the model, e.g. "t=3.5s" or a file path

    def data_url(self) -> str:
        return f"data:{self.mime};base64,{base64.b64encode(self.data).decode('ascii')}"

    def describe(self) -> str:
        """A short human line (never base64): what a UI shows instead of the pixels."""
        size = f"{self.width}x{self.height} " if self.width else ""
        name = f"{self.label} " if self.label else ""
        return f"[image {name}{size}{self.mime}, {len(self.data) // 1024} KB]"


def text_part(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def image_part(image: Image) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": image.data_url()}}


def media_parts(images: list[Image]) -> list[dict[str, Any]]:
    """Each image preceded by its label (timestamps for video frames, paths for files)."""
    parts: list[dict[str, Any]] = []
    for image in images:
        if image.label:
            parts.append(text_part(image.label))
        parts.append(image_part(image))
    return parts


def system_message(text: str) -> Message:
    return {"role": "system", "content": text}


def user_message(
    text: str, images: list[Image] | None = None, parts: list[dict[str, Any]] | None = None
) -> Message:
    """A user turn; media (images, then other parts such as an uploaded video) come before the text."""
    if not images and not parts:
        return {"role": "user", "content": text}
    return {"role": "user", "content": [*media_parts(images or []), *(parts or []), text_part(text)]}


def assistant_message(
    content: str, tool_calls: list[dict[str, Any]] | None = None, reasoning: str = ""
) -> Message:
    message: Message = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
        # Kimi K2.5 in thinking mode needs its reasoning back on tool-calling turns.
        if reasoning:
            message["reasoning_content"] = reasoning
    return message


TOOL_IMAGES_PREFIX = "Images returned by tool call "


def is_tool_image_carrier(message: Message) -> bool:
    """The user message that carries a tool result's images; it belongs with that tool result."""
    content = message.get("content")
    return (
        message.get("role") == "user"
        and isinstance(content, list)
        and bool(content)
        and str(content[0].get("text", "")).startswith(TOOL_IMAGES_PREFIX)
    )


def tool_messages(call_id: str, text: str, images: list[Image] | None = None) -> list[Message]:
    """The tool result, plus a user message carrying its images.

    Tool messages are text-only on most OpenAI-compatible servers, so pixels ride in the user message
    that immediately follows, which every vision model accepts.
    """
    messages: list[Message] = [{"role": "tool", "tool_call_id": call_id, "content": text}]
    if images:
        intro = text_part(f"{TOOL_IMAGES_PREFIX}{call_id}:")
        messages.append({"role": "user", "content": [intro, *media_parts(images)]})
    return messages


SUMMARY_PREFIX = "Summary of the earlier conversation: "


def summary_message(summary: str) -> Message:
    """The user message that stands in for compacted history (built the same way live and on resume)."""
    return {"role": "user", "content": SUMMARY_PREFIX + summary}


def message_text(message: Message) -> str:
    """The text of a message, whatever its content shape (images are left out)."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if p.get("type") == "text")
    return ""
