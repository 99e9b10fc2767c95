"""A request as the server saw it, with helpers for the questions tests ask about it."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from tests.fake_llm.http11 import parse_json

_UNREAD: Any = object()
_first_read = threading.Lock()


@dataclass
class RecordedRequest:
    path: str  # without the query string
    method: str
    headers: dict[str, str]  # lower-case keys
    raw: bytes
    time: float  # time.time() when the request had been read
    status: int | None = None  # what the server answered, once it has (None while in flight or hung)
    # time.perf_counter() when the body had been read (before it was parsed), and when the answer's last part
    # began to be written (0.0 until the whole answer is out; FakeLLM.wait_for_answers waits for it): what a
    # client does between one answer and its next request is the gap.
    received: float = 0.0
    answered: float = 0.0
    # `body` parsed: while the request is answered, the server's own parse is what a first reader gets (so a
    # responder and a later reader hold the same object); a body nobody read by then is parsed from `raw`
    # when first read. Not keeping the bodies no test reads matters: a test process that held hundreds
    # of long conversations as parsed JSON paid for them in every full collection, inside timed steps.
    _parsed: Any = field(default=_UNREAD, repr=False, compare=False)
    _offered: Any = field(default=_UNREAD, repr=False, compare=False)

    @property
    def body(self) -> Any:
        """The parsed JSON (normally a dict), or None when the body is not JSON."""
        if self._parsed is _UNREAD:
            with _first_read:
                if self._parsed is _UNREAD:
                    offered = self._offered
                    self._parsed = parse_json(self.raw) if offered is _UNREAD else offered
        return self._parsed

    def offer(self, body: Any) -> None:
        """The server's parse of `raw`, for the first reader while the request is answered."""
        self._offered = body

    def withdraw(self) -> None:
        """The request is answered: a first reader from now on parses `raw` itself."""
        self._offered = _UNREAD

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
