"""What a run has used (tokens, cost, tool calls) and how full the context is before the next request.

Invariants:
- ``ContextMeter.tokens`` is the endpoint's last count plus an estimate (4 characters a token) of what was
  appended since; a new count from the endpoint replaces both.
- Until the endpoint has counted once (``measured`` is False), the reply budget also sets aside an estimate
  of the tool schemas, which the history estimate does not include.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kimicode.llm.messages import Message

# Tokens kept free for the reply when the context is nearly full.
MIN_REPLY_TOKENS = 1024
# What an image costs in the estimate, in characters (its token budget, not its base64).
IMAGE_CHARS = 4 * 1000


@dataclass
class RunTotals:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cost: float = 0.0
    tool_calls: int = 0

    def add(self, prompt_tokens: int, completion_tokens: int, cached_tokens: int, cost: float) -> None:
        self.prompt_tokens += prompt_tokens
        self.completion_tokens += completion_tokens
        self.cached_tokens += cached_tokens
        self.cost += cost

    def as_dict(self) -> dict[str, Any]:
        return {
            "input_tokens": self.prompt_tokens,
            "output_tokens": self.completion_tokens,
            "cached_input_tokens": self.cached_tokens,
            "cost_usd": round(self.cost, 6),
            "tool_calls": self.tool_calls,
        }


class ContextMeter:
    """Tokens the next request will carry."""

    def __init__(self, messages: list[Message]) -> None:
        self.counted = 0  # the endpoint's last count (0: none yet)
        self.unsent_chars = 0
        self.restart(messages)

    def restart(self, messages: list[Message]) -> None:
        """Start afresh from a history (no endpoint count yet): a new or compacted conversation."""
        self.counted = 0
        self.unsent_chars = sum(approx_chars(m) for m in messages)

    def add(self, message: Message) -> None:
        self.unsent_chars += approx_chars(message)

    def count(self, tokens: int) -> None:
        """The endpoint counted the whole context: that replaces the estimate."""
        self.counted, self.unsent_chars = tokens, 0

    @property
    def measured(self) -> bool:
        return bool(self.counted)

    @property
    def tokens(self) -> int:
        return self.counted + self.unsent_chars // 4


def reply_budget(context_window: int, max_output_tokens: int, context_tokens: int, unmeasured_tokens: int) -> int:
    """``max_tokens`` for the next request: what the window has left after the prompt (less a margin), never
    below MIN_REPLY_TOKENS nor above what the model may write. On a small window, asking for more reply room
    than is left gets the request refused."""
    room = context_window - context_tokens - unmeasured_tokens
    return min(max_output_tokens, max(room - 256, MIN_REPLY_TOKENS))


def approx_chars(message: Message) -> int:
    """Characters a message adds to the prompt; an image counts as its token budget, not its base64."""
    content = message.get("content")
    if isinstance(content, list):
        total = 0
        for part in content:
            total += len(part.get("text", "")) if part.get("type") == "text" else IMAGE_CHARS
        return total + 16
    size = len(content) if isinstance(content, str) else 0
    for call in message.get("tool_calls") or []:
        size += len(call["function"]["arguments"]) + 40
    return size + len(message.get("reasoning_content", "")) + 16
