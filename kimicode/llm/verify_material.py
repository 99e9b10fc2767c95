"""What the endpoint checks (llm/verify.py) send, and the pure judgements of what comes back.

Invariants:
- Pure: nothing here talks to an endpoint; the same reply always gets the same verdict.
- A judgement that finds a reply wanting raises ``CheckFailed`` with one line a user can act on.
- The prompts ask for things only the endpoint's handling can explain: a code word only the system
  message holds, a temperature only the tool result holds, a colour only the image shows.
"""

from __future__ import annotations

import json
import struct
import zlib
from typing import Any

from kimicode.llm.reply import Reply, ToolCallRequest

TOOL_CALLS_CHECKED = 5
CODE_WORDS = ("KUMQUAT", "TAMARIND", "PERSIMMON", "RAMBUTAN", "SOURSOP", "LONGAN")
REPLY_TOKENS = 192  # enough for a short answer or a tool call; a model that rambles is cut off there
THINKING_TOKENS = 1024
WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "The city's name, e.g. Paris"}},
            "required": ["city"],
        },
    },
}
CITIES = ("Paris", "Tokyo", "Lima", "Oslo", "Cairo", "Perth", "Quito", "Riga")
WEATHER_RESULT = '{"temp_c": 18, "sky": "clear"}'
WEATHER_QUESTION = "What is the weather in Paris right now? Use the get_weather tool, then tell me the temperature."
# The temperature the tool_call_ids check hands back, one picked at random: a value only the result holds,
# so an answer that names it shows the result reached the model as the result of its call.
RESULT_TEMPERATURES = (13, 23, 27, 29, 31, 33, 37)
# The id a Kimi model gives a tool call and is trained to see again: functions.NAME:IDX.
KIMI_TOOL_CALL_ID = r"functions\.{name}:\d+"
# Filler for the long-context checks: ordinary words, about four characters per token.
FILLER = "The quick brown fox jumps over the lazy dog while the river runs past the old mill. "
CHARS_PER_TOKEN = 4
LONG_CONTEXT_SHARE = 0.7  # of the window, for the "long context" check
OVERFLOW_SHARE = 1.3  # of the window, for the "context overflow" check


class CheckFailed(Exception):
    """A check's verdict: the message says what was wrong."""


def is_kimi(model: str) -> bool:
    """A Kimi model, under Moonshot's name or a server's (``moonshotai/Kimi-K2-Instruct``)."""
    return model.rsplit("/", 1)[-1].lower().startswith("kimi-")


def has_text(chunk: dict[str, Any]) -> bool:
    return any((choice.get("delta") or {}).get("content") for choice in chunk.get("choices") or [])


def weather_call(reply: Reply) -> dict[str, Any]:
    """The arguments of the reply's first get_weather call, checked against the tool's schema."""
    if not reply.tool_calls:
        said = reply.content.strip()[:80]
        raise CheckFailed(f"no tool call (finish_reason {reply.finish_reason!r}; the reply said {said!r})")
    return valid_weather_args(reply.tool_calls[0])


def valid_weather_args(call: ToolCallRequest) -> dict[str, Any]:
    if call.name != "get_weather":
        raise CheckFailed(f"called {call.name!r}, not get_weather")
    try:
        args = json.loads(call.arguments or "")
    except ValueError:
        raise CheckFailed(f"arguments are not valid JSON: {call.arguments[:60]!r}") from None
    if not isinstance(args, dict) or not isinstance(args.get("city"), str) or not args["city"].strip():
        raise CheckFailed(f"arguments do not match the schema (a 'city' string): {call.arguments[:60]!r}")
    return args


def bounded(reply: Reply, limit: int) -> bool:
    """Did the reply stop at about ``limit`` tokens? (The usage count if there is one, else the text.)"""
    if reply.usage.completion_tokens:
        return reply.usage.completion_tokens <= limit + 2
    return len(reply.content) + len(reply.reasoning) <= limit * 8


def size(reply: Reply) -> str:
    if reply.usage.completion_tokens:
        return f"{reply.usage.completion_tokens} tokens"
    return f"{len(reply.content)} characters"


def filler(tokens: int) -> str:
    chars = tokens * CHARS_PER_TOKEN
    return (FILLER * (chars // len(FILLER) + 1))[:chars]


def solid_png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A one-colour PNG, written here so the check needs no image library."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\x00" + bytes(rgb) * width
    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )
    return png
