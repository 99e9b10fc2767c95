"""A model's reply, and how it is read from what the endpoint sends: stream chunks or one JSON completion.

Invariants:
- Pure: reading a chunk changes only the reply being assembled and calls the caller's callbacks; no I/O.
- Text and reasoning reach the callbacks in the order they arrived, each delta once.
- Tool calls are kept in the order of their stream index; a call's id, once sent, is kept (later chunks
  may repeat it), and a call that never got one is given ``call_<index>``.
- ``reasoning_content`` and ``reasoning`` (the name some servers use) are the same thing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kimicode.llm.errors import LLMError

DeltaCallback = Callable[[str], None]
RetryCallback = Callable[[str, float], None]  # (what went wrong, seconds until the retry)
ChunkCallback = Callable[[dict[str, Any]], None]


@dataclass
class TokenUsage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0


@dataclass
class ToolCallRequest:
    id: str
    name: str
    arguments: str  # raw JSON text as the model produced it (may be malformed)

    def wire(self) -> dict[str, Any]:
        return {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": self.arguments}}


@dataclass
class Reply:
    content: str = ""
    reasoning: str = ""
    tool_calls: list[ToolCallRequest] = field(default_factory=list)
    finish_reason: str = ""
    usage: TokenUsage = field(default_factory=TokenUsage)


def usage_of(raw: dict[str, Any]) -> TokenUsage:
    cached = raw.get("cached_tokens")
    if cached is None:
        cached = (raw.get("prompt_tokens_details") or {}).get("cached_tokens", 0)
    return TokenUsage(
        prompt_tokens=int(raw.get("prompt_tokens") or 0),
        completion_tokens=int(raw.get("completion_tokens") or 0),
        cached_tokens=int(cached or 0),
    )


def absorb(
    chunk: Any,
    reply: Reply,
    calls: dict[int, ToolCallRequest],
    on_text: DeltaCallback | None,
    on_thinking: DeltaCallback | None,
) -> None:
    """One stream chunk into ``reply`` (tool calls gather in ``calls`` by their index until the end)."""
    if not isinstance(chunk, dict):
        raise LLMError("the model stream sent a chunk that is not a JSON object", retryable=True)
    if chunk.get("usage"):
        reply.usage = usage_of(chunk["usage"])
    for choice in chunk.get("choices") or []:
        delta = choice.get("delta") or {}
        thought = delta.get("reasoning_content") or delta.get("reasoning")
        if thought:
            reply.reasoning += thought
            if on_thinking:
                on_thinking(thought)
        text = delta.get("content")
        if text:
            reply.content += text
            if on_text:
                on_text(text)
        for part in delta.get("tool_calls") or []:
            index = part.get("index", len(calls))
            call = calls.setdefault(index, ToolCallRequest(id="", name="", arguments=""))
            if part.get("id"):
                call.id = part["id"]
            function = part.get("function") or {}
            if function.get("name") and not call.name:
                call.name = function["name"]
            if function.get("arguments"):
                call.arguments += function["arguments"]
        if choice.get("usage"):  # Moonshot puts usage on the final choice
            reply.usage = usage_of(choice["usage"])
        if choice.get("finish_reason"):
            reply.finish_reason = choice["finish_reason"]


def gather_calls(reply: Reply, calls: dict[int, ToolCallRequest]) -> None:
    """The stream's tool calls onto the reply, in index order, each with an id."""
    reply.tool_calls = [calls[i] for i in sorted(calls)]
    for index, call in zip(sorted(calls), reply.tool_calls, strict=True):
        if not call.id:
            call.id = f"call_{index}"


def completion_reply(data: Any, on_text: DeltaCallback | None, on_thinking: DeltaCallback | None) -> Reply:
    """An unstreamed completion as a reply, told through the callbacks at once."""
    choices = data.get("choices") if isinstance(data, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise LLMError("the endpoint answered a completion without choices", retryable=True)
    message = choices[0].get("message") or {}
    reply = Reply(
        content=str(message.get("content") or ""),
        reasoning=str(message.get("reasoning_content") or message.get("reasoning") or ""),
        finish_reason=str(choices[0].get("finish_reason") or "stop"),
    )
    for index, call in enumerate(message.get("tool_calls") or []):
        function = call.get("function") or {}
        reply.tool_calls.append(
            ToolCallRequest(
                id=str(call.get("id") or f"call_{index}"),
                name=str(function.get("name") or ""),
                arguments=str(function.get("arguments") or ""),
            )
        )
    if isinstance(data.get("usage"), dict):
        reply.usage = usage_of(data["usage"])
    if reply.reasoning and on_thinking:
        on_thinking(reply.reasoning)
    if reply.content and on_text:
        on_text(reply.content)
    return reply
