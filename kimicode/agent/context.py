"""How big the history is, and how to shrink it when it nears the model's window.

Compaction keeps the system message, replaces older history with one user message carrying a summary
written by the model, and keeps the most recent steps verbatim. An assistant message that calls tools
and the results of those calls form one unit that is never split: the API rejects either half alone.
"""

from __future__ import annotations

import base64
import json
import math
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from kimicode.llm.messages import Message, is_tool_image_carrier, message_text, summary_message
from kimicode.tools.base import truncate_middle

# Kimi K2.5: about one token per 28x28 pixels, capped near 4k tokens per image.
IMAGE_PATCH_PIXELS = 28
IMAGE_TOKEN_CAP = 4096
# When an image's size cannot be read cheaply (remote URL, unknown format, video frame by reference).
UNKNOWN_MEDIA_TOKENS = 1000
# Role, separators and the like around each message.
MESSAGE_OVERHEAD_TOKENS = 4

DEFAULT_COMPACT_THRESHOLD = 0.85
# Share of the window at which the user is told compaction is near (once per crossing), in time to /compact
# with a say in what is kept.
CONTEXT_NOTICE_SHARE = 0.80
# What the summary request may carry of each old message and of the whole transcript (characters).
MAX_SUMMARY_PART_CHARS = 4_000
MAX_TRANSCRIPT_CHARS = 240_000

SUMMARY_SYSTEM_PROMPT = "You write precise, compact summaries of coding sessions so the work can continue."

COMPACTION_PROMPT = """\
Summarise the conversation above so that it can replace it: the work continues from your summary alone.
Keep: the user's requests and constraints (quote exact wording where it matters); decisions made and why;
files read, created or changed (paths) and what changed; commands run and their key results (failures,
test output); errors met and how they were fixed; what is done and what remains, with the next step.
Drop pleasantries and anything superseded. Be specific and terse; use short bullet points; no preamble."""

Summarize = Callable[[list[Message]], Awaitable[str]]


class CompactionError(RuntimeError):
    """Compaction could not produce a summary; the history is left as it was."""


@dataclass
class CompactionResult:
    messages: list[Message]
    summary: str
    tokens_before: int
    tokens_after: int
    replaced_count: int  # messages after the system message that the summary replaced


def should_compact(tokens: int, context_window: int, threshold: float = DEFAULT_COMPACT_THRESHOLD) -> bool:
    return context_window > 0 and tokens >= threshold * context_window


def estimate_tokens(messages: list[Message]) -> int:
    """About bytes/4 of the JSON, with images counted by their pixels instead of their base64 size."""
    total = 0
    for message in messages:
        content = message.get("content")
        media_tokens = 0
        if isinstance(content, list) and any(_is_media(p) for p in content):
            media_tokens = sum(_media_tokens(p) for p in content if _is_media(p))
            message = {**message, "content": [p for p in content if not _is_media(p)]}
        size = len(json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
        total += size // 4 + media_tokens + MESSAGE_OVERHEAD_TOKENS
    return total


async def compact(
    messages: list[Message], summarize: Summarize, keep_recent_tokens: int, instruction: str = ""
) -> CompactionResult:
    """Replace older history with a summary, keeping about ``keep_recent_tokens`` of recent steps verbatim.
    ``instruction`` is what the user asked the summary to keep (``/compact keep the API decisions``).

    ``summarize`` receives a complete request (a system and a user message holding a transcript of the
    old history and the instructions; no tools needed) and returns the model's reply text.
    """
    tokens_before = estimate_tokens(messages)
    start = 1 if messages and messages[0].get("role") == "system" else 0
    units = step_units(messages[start:])
    cut = _tail_start(units, keep_recent_tokens)
    old = [m for unit in units[:cut] for m in unit]
    if not old:
        return CompactionResult(list(messages), "", tokens_before, tokens_before, 0)
    summary = (await summarize(summary_request(old, instruction))).strip()
    if not summary:
        raise CompactionError("the model returned an empty summary; the history was left as it was")
    kept = [m for unit in units[cut:] for m in unit]
    compacted = [*messages[:start], summary_message(summary), *kept]
    return CompactionResult(compacted, summary, tokens_before, estimate_tokens(compacted), len(old))


def summary_request(old: list[Message], instruction: str = "") -> list[Message]:
    """The messages that ask the model to summarise ``old``: a plain transcript, so it suits any server."""
    transcript = truncate_middle(
        "\n\n".join(_transcript_lines(old)), MAX_TRANSCRIPT_CHARS, "middle of the transcript left out"
    )
    asked = f"\n\nThe user asks the summary to keep, in particular: {instruction.strip()}" if instruction.strip() else ""
    return [
        {"role": "system", "content": SUMMARY_SYSTEM_PROMPT},
        {"role": "user", "content": f"<conversation>\n{transcript}\n</conversation>\n\n{COMPACTION_PROMPT}{asked}"},
    ]


def step_units(body: list[Message]) -> list[list[Message]]:
    """Messages grouped so that a tool-calling assistant message stays with its results."""
    units: list[list[Message]] = []
    for message in body:
        follows_call = bool(units) and bool(units[-1][0].get("tool_calls"))
        if follows_call and (message.get("role") == "tool" or is_tool_image_carrier(message)):
            units[-1].append(message)
        else:
            units.append([message])
    return units


def _tail_start(units: list[list[Message]], keep_recent_tokens: int) -> int:
    """Index of the first unit kept verbatim: as many recent units as fit, and always the last one."""
    kept_tokens = 0
    index = len(units)
    while index > 0:
        size = estimate_tokens(units[index - 1])
        if index < len(units) and kept_tokens + size > keep_recent_tokens:
            break
        kept_tokens += size
        index -= 1
    return index


def _transcript_lines(messages: list[Message]) -> list[str]:
    names: dict[str, str] = {}
    lines: list[str] = []
    for message in messages:
        role = message.get("role", "")
        text = _clip(message_text(message))
        media = sum(1 for p in message.get("content") or [] if isinstance(p, dict) and _is_media(p))
        if media:
            text += f" [{media} image(s)]"
        if role == "assistant":
            if text.strip():
                lines.append(f"ASSISTANT: {text}")
            for call in message.get("tool_calls") or []:
                function = call.get("function", {})
                names[call.get("id", "")] = function.get("name", "")
                lines.append(f"ASSISTANT CALLED {function.get('name', '')}: {_clip(function.get('arguments', ''))}")
        elif role == "tool":
            lines.append(f"RESULT OF {names.get(message.get('tool_call_id', ''), 'tool')}: {text}")
        else:
            lines.append(f"{role.upper()}: {text}")
    return lines


def _clip(text: str) -> str:
    return truncate_middle(text, MAX_SUMMARY_PART_CHARS)



def _is_media(part: object) -> bool:
    return isinstance(part, dict) and part.get("type") in ("image_url", "video_url")


def _media_tokens(part: dict) -> int:
    if part.get("type") != "image_url":
        return UNKNOWN_MEDIA_TOKENS
    url = str((part.get("image_url") or {}).get("url", ""))
    size = data_url_image_size(url)
    if size is None:
        return UNKNOWN_MEDIA_TOKENS
    width, height = size
    patches = math.ceil(width / IMAGE_PATCH_PIXELS) * math.ceil(height / IMAGE_PATCH_PIXELS)
    return max(1, min(IMAGE_TOKEN_CAP, patches))


def data_url_image_size(url: str) -> tuple[int, int] | None:
    """Width and height from the first bytes of a base64 data URL (PNG, GIF, WebP, JPEG), or None."""
    if not url.startswith("data:") or ";base64," not in url[:100]:
        return None
    payload = url[url.index(";base64,") + 8 :]
    # Headers sit in the first bytes; JPEG may need to skip EXIF blocks, so it gets more.
    head = _b64_prefix(payload, 64)
    if head.startswith(b"\x89PNG\r\n\x1a\n") and len(head) >= 24:
        return struct.unpack(">II", head[16:24])
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return struct.unpack("<HH", head[6:10])
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return _webp_size(head)
    if head[:2] == b"\xff\xd8":
        return _jpeg_size(_b64_prefix(payload, 256 * 1024))
    return None


def _b64_prefix(payload: str, byte_count: int) -> bytes:
    chars = (byte_count + 2) // 3 * 4
    try:
        return base64.b64decode(payload[:chars], validate=False)
    except ValueError:
        return b""


def _webp_size(head: bytes) -> tuple[int, int] | None:
    chunk = head[12:16]
    if chunk == b"VP8X" and len(head) >= 30:
        width = int.from_bytes(head[24:27], "little") + 1
        height = int.from_bytes(head[27:30], "little") + 1
        return width, height
    if chunk == b"VP8 " and len(head) >= 30:
        width, height = struct.unpack("<HH", head[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(head) >= 25:
        bits = int.from_bytes(head[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    index = 2
    while index + 9 < len(data):
        if data[index] != 0xFF:
            return None
        marker = data[index + 1]
        if marker == 0xFF:  # fill byte
            index += 1
            continue
        length = int.from_bytes(data[index + 2 : index + 4], "big")
        # Start-of-frame markers carry the size; C4 (DHT), C8 (JPG) and CC (DAC) do not.
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[index + 5 : index + 9])
            return width, height
        index += 2 + length
    return None


def compaction_split(messages: list[Message], keep_recent_tokens: int) -> tuple[int, int]:
    """(messages compaction would summarise, messages it would keep verbatim), the system message aside."""
    start = 1 if messages and messages[0].get("role") == "system" else 0
    units = step_units(messages[start:])
    cut = _tail_start(units, keep_recent_tokens)
    return sum(len(unit) for unit in units[:cut]), sum(len(unit) for unit in units[cut:])
