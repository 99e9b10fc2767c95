"""What the scripted server answers: replies, tool calls and injected faults.

These are plain data; tests build them directly, or a JSON script file is turned into them by
`replies_from_json` (same field names as the dataclasses).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

# Moonshot's wording for its common errors, so clients are tested against realistic text.
RATE_LIMIT_MESSAGE = (
    "Your account {org} request reached organization max RPM: 3, please try again after {seconds} seconds"
)
OVERLOADED_MESSAGE = "The engine is currently overloaded, please try again later"
AUTH_MESSAGE = "Invalid Authentication"
TOKEN_LIMIT_MESSAGE = (
    "Invalid request: Your request exceeded model token limit: 262144 (requested: 300000)"
)


@dataclass
class ToolCall:
    """One function call the model makes. A dict of arguments is sent as JSON; a str is sent verbatim,
    which lets a test send arguments that are not valid JSON."""

    name: str
    arguments: dict[str, Any] | str = field(default_factory=dict)
    id: str | None = None

    def arguments_text(self) -> str:
        if isinstance(self.arguments, str):
            return self.arguments
        return json.dumps(self.arguments, ensure_ascii=False)


@dataclass(frozen=True)
class Fault:
    """Something going wrong on the way back. Build one with the class methods."""

    kind: str
    status: int = 0
    message: str = ""
    error_type: str = ""
    retry_after: float | None = None
    after_chunks: int = 0
    interval: float = 0.0
    duration: float = 0.0

    @classmethod
    def http(
        cls,
        status: int,
        message: str = "fake_llm: injected server error",
        error_type: str = "server_error",
        retry_after: float | None = None,
    ) -> Fault:
        return cls("http", status=status, message=message, error_type=error_type, retry_after=retry_after)

    @classmethod
    def rate_limit(cls, retry_after: float = 1.0) -> Fault:
        message = RATE_LIMIT_MESSAGE.format(org="org-fake", seconds=format_seconds(retry_after))
        return cls.http(429, message, "rate_limit_reached_error", retry_after)

    @classmethod
    def overloaded(cls) -> Fault:
        return cls.http(429, OVERLOADED_MESSAGE, "engine_overloaded_error")

    @classmethod
    def auth(cls) -> Fault:
        return cls.http(401, AUTH_MESSAGE, "invalid_authentication_error")

    @classmethod
    def token_limit(cls) -> Fault:
        return cls.http(400, TOKEN_LIMIT_MESSAGE, "invalid_request_error")

    @classmethod
    def context_overflow(cls, vendor: str = "moonshot") -> Fault:
        """The prompt is over the window, answered as ``vendor`` answers it (tests/fake_llm/vendors.py)."""
        from tests.fake_llm.vendors import OVERFLOW

        if vendor not in OVERFLOW:
            raise ValueError(f"no overflow body for {vendor!r}; known: {', '.join(OVERFLOW)}")
        return cls("context_overflow", message=vendor)

    @classmethod
    def rewritten_tool_call_ids(cls) -> Fault:
        """Every streamed piece of a tool call carries a new id (as a broken proxy re-labels chunks)."""
        return cls("rewritten_tool_call_ids")

    @classmethod
    def drop_mid_stream(cls, after_chunks: int = 3) -> Fault:
        return cls("drop_mid_stream", after_chunks=after_chunks)

    @classmethod
    def truncated_tool_args(cls) -> Fault:
        return cls("truncated_tool_args")

    @classmethod
    def malformed_chunk(cls) -> Fault:
        return cls("malformed_chunk")

    @classmethod
    def hang(cls) -> Fault:
        """No response at all (not even headers) until the server closes."""
        return cls("hang")

    @classmethod
    def stall(cls, after_chunks: int = 1) -> Fault:
        """Send the headers and ``after_chunks`` events, then nothing more until the server closes
        (streamed replies; a non-streamed one answers normally)."""
        return cls("stall", after_chunks=after_chunks)

    @classmethod
    def trickle(cls, interval: float = 0.5, after_chunks: int = 1, duration: float = 3600.0) -> Fault:
        """After ``after_chunks`` events, an SSE keep-alive comment every ``interval`` seconds for
        ``duration`` seconds (bytes keep coming, the reply does not), then the rest of the reply."""
        return cls("trickle", after_chunks=after_chunks, interval=interval, duration=duration)


@dataclass
class Reply:
    """One model turn: what a single /chat/completions request is answered with."""

    content: str = ""
    reasoning: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    usage: dict[str, Any] | None = None
    delay: float = 0.0  # seconds before the response starts
    chunk_delay: float = 0.0  # seconds between streamed chunks
    chunk_size: int = 6  # characters of content / reasoning / arguments per delta
    fault: Fault | None = None
    finish_reason: str | None = None

    def __post_init__(self) -> None:
        if self.chunk_size < 1:
            raise ValueError(f"Reply.chunk_size must be at least 1, got {self.chunk_size}")
        if self.fault is not None and not isinstance(self.fault, Fault):
            raise TypeError(f"Reply.fault must be a Fault, got {type(self.fault).__name__}")

    def default_finish_reason(self) -> str:
        if self.finish_reason is not None:
            return self.finish_reason
        return "tool_calls" if self.tool_calls else "stop"


def format_seconds(seconds: float) -> str:
    """1.0 -> "1", 0.5 -> "0.5": the shortest exact text, as Retry-After carries it."""
    return f"{seconds:g}"


def fault_from_json(spec: str | dict[str, Any]) -> Fault:
    """`"hang"` or `{"kind": "rate_limit", "retry_after": 2}` -> the Fault its class method builds."""
    if isinstance(spec, str):
        kind, params = spec, {}
    else:
        params = dict(spec)
        kind = params.pop("kind", None)
        if not isinstance(kind, str):
            raise ValueError(f"fault needs a 'kind' naming a Fault method, got {spec!r}")
    builder = getattr(Fault, kind, None)
    if kind.startswith("_") or not callable(builder):
        raise ValueError(f"unknown fault kind {kind!r}")
    return builder(**params)


def reply_from_json(spec: dict[str, Any]) -> Reply:
    params = dict(spec)
    params["tool_calls"] = [ToolCall(**call) for call in params.get("tool_calls", [])]
    if params.get("fault") is not None:
        params["fault"] = fault_from_json(params["fault"])
    return Reply(**params)


def replies_from_json(specs: list[dict[str, Any]]) -> list[Reply]:
    if not isinstance(specs, list):
        raise ValueError("a script is a JSON list of replies")
    return [reply_from_json(spec) for spec in specs]
