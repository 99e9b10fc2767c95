"""``--input-format stream-json``: the task and later messages as JSON lines on stdin (DESIGN.md B.10).

Each line is ``{"type": "user", "content": "text"}`` — the shape stream-json output gives a message the user
sent. The first one is the task (unless the task is the argument); every later one steers the running turn:
the model sees it before its next request. EOF ends the input, not the run: the run ends when the agent
finishes. A line that is not such a message is reported on stderr in one line and skipped.

stdin is read by a daemon thread, line by line, so a producer can keep the pipe open as long as it likes
(a file redirected to stdin works the same) and kimicode's exit never waits for it.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from typing import TextIO

from kimicode import jsontext


class NotAUserMessage(ValueError):
    pass


def parse_user_line(line: str) -> str | None:
    """The text of one stream-json input line; None for a blank line; NotAUserMessage (why) otherwise."""
    line = line.strip()
    if not line:
        return None
    try:
        obj = jsontext.loads(line)
    except json.JSONDecodeError as exc:
        raise NotAUserMessage(f"not JSON ({exc.msg} at character {exc.pos})") from None
    if not isinstance(obj, dict) or obj.get("type") != "user":
        raise NotAUserMessage('not a user message: expected {"type": "user", "content": "text"}')
    content = obj.get("content")
    if isinstance(content, list):  # content parts: their text, in order
        content = "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text")
    if not isinstance(content, str) or not content.strip():
        raise NotAUserMessage("its content is empty or not text")
    return content


def first_message(stream: TextIO, report: Callable[[str], None]) -> tuple[str, int]:
    """Read lines until the first user message (the task); returns it and the number of lines read."""
    number = 0
    for line in iter(stream.readline, ""):
        number += 1
        try:
            text = parse_user_line(line)
        except NotAUserMessage as exc:
            report(f"stdin line {number} skipped: {exc}")
            continue
        if text is not None:
            return text, number
    return "", number


def follow(stream: TextIO, on_message: Callable[[str], None], report: Callable[[str], None], first_line: int = 0) -> None:
    """Hand every later user message to ``on_message`` on the running event loop, from a daemon thread."""
    loop = asyncio.get_running_loop()

    def read() -> None:
        number = first_line
        try:
            for line in iter(stream.readline, ""):
                number += 1
                try:
                    text = parse_user_line(line)
                except NotAUserMessage as exc:
                    loop.call_soon_threadsafe(report, f"stdin line {number} skipped: {exc}")
                    continue
                if text is not None:
                    loop.call_soon_threadsafe(on_message, text)
        except (OSError, ValueError, RuntimeError):
            pass  # stdin closed, or the loop is gone: the run is over either way

    threading.Thread(target=read, name="stdin-stream-json", daemon=True).start()
