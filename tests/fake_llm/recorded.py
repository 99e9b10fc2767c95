"""A request as the server saw it, with helpers for the questions tests ask about it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class RecordedRequest:
    path: str  # without the query string
    method: str
    headers: dict[str, str]  # lower-case keys
    body: Any  # parsed JSON (normally a dict), or None when the body is not JSON
    raw: bytes
    time: float  # time.time() when the request had been read
    status: int | None = None  # what the server answered, once it has (None while in flight or hung)
    # time.perf_counter() when the body had been read (before it was parsed), and when the answer's last part
    # began to be written (0.0 until the whole answer is out; FakeLLM.wait_for_answers waits for it): what a
    # client does between one answer and its next request is the gap.
    received: float = 0.0
    answered: float = 0.0

    @property
    def messages(self) -> list[dict[str, Any]]:
        if isinstance(self.body, dict):
            return list(self.body.get("messages") or [])
        return []

    def last_user_text(self) -> str:
        """Text of the latest user message; text parts of multi-part content are joined by newlines."""
        for message in reversed(self.messages):
            if message.get("role") == "user":
                return content_text(message.get("content"))
        return ""

    def tool_results(self) -> list[dict[str, Any]]:
        return [m for m in self.messages if m.get("role") == "tool"]

    def tool_names(self) -> list[str]:
        if not isinstance(self.body, dict):
            return []
        names: list[str] = []
        for tool in self.body.get("tools") or []:
            function = tool.get("function") if isinstance(tool, dict) else None
            if isinstance(function, dict) and "name" in function:
                names.append(function["name"])
        return names


def content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            part.get("text", "") for part in content if isinstance(part, dict) and part.get("type") == "text"
        )
    return ""
