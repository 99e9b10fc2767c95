"""The events of a chat-completions stream, split from its bytes as they arrive (server-sent events).

The openai SDK's own stream reader decodes every line into a ``str``, builds an event object per event and
passes each parsed chunk through its response processing: on a long session that is a fixed cost per step
paid after the endpoint's last byte, before the reply is whole. kimicode reads the response's bytes itself
(the SDK still makes the request, maps its HTTP status errors and owns the connection) and keeps what
matters of the SDK's reading:

- lines end in LF, CRLF or CR (a CRLF split across two reads is one line end); a blank line ends an event;
- ``data:`` lines of one event are joined with LF; one space after the colon is dropped; a line starting
  with ``:`` is a comment (a keep-alive) and is ignored, as are ``id``, ``retry`` and unknown fields;
- an event is sent only once a blank line ends it, so the bytes of an unfinished last event are dropped, as
  the SDK drops them; and only when it had a ``data`` line (as the SSE standard says: the SDK also sends an
  event that had only a name or an id, whose empty data is then no JSON, and fails the stream on a ping);
- ``data: [DONE]`` ends the stream;
- a chunk that is a JSON object with a non-empty ``error`` is the endpoint reporting an error in a 200
  stream, and so is any event named ``error``; a ``data`` that is not UTF-8 JSON (or nests deeper than the
  parser's stack) is a malformed chunk;
- an event (or a line) that grows past ``MAX_EVENT_BYTES`` is a malformed chunk too, and a line that comes in
  many reads is joined once, when its end arrives: an endpoint that never ends a line costs neither memory
  without bound nor a copy of all it sent so far on every read.

Pure: no I/O, and nothing here imports the SDK.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

DONE = b"[DONE]"
ERROR_EVENT = "error"
# Far beyond any chunk of a reply (a whole tool call's arguments in one chunk is at most the output limit).
MAX_EVENT_BYTES = 32 << 20
UNSPECIFIED_ERROR = "An error occurred during streaming"  # (the SDK's words when the error has no message)


class StreamErrorEvent(Exception):
    """The endpoint reported an error inside the stream: its ``message`` and the error ``body`` it sent."""

    def __init__(self, message: str, body: Any) -> None:
        super().__init__(message)
        self.message = message
        self.body = body


class MalformedChunk(ValueError):
    """An event's data is not UTF-8 JSON."""


class EventSplitter:
    """Splits the bytes of a stream into its events: ``feed`` each read, get the events it completed as
    ``(event name, data)`` pairs (the name is "" when the event had none)."""

    __slots__ = ("_limit", "_tail", "_skip_lf", "_event", "_data", "_held")

    def __init__(self, limit: int = MAX_EVENT_BYTES) -> None:
        self._limit = limit
        self._tail: list[bytes] = []  # the reads since the last line end: the start of a line not ended yet
        self._skip_lf = False  # the last read ended in CR: an LF first in the next read is the same line end
        self._event = ""
        self._data: list[bytes] = []
        self._held = 0  # bytes held for the event being read (its data lines and the unfinished line)

    def feed(self, chunk: bytes) -> list[tuple[str, bytes]]:
        """The events this read completed; raises ``MalformedChunk`` for an event over the limit."""
        # A read that is one whole event of one ``data: `` line, nothing pending before it: what nearly every read
        # of a reply is, split at once (the general reading below gives the same event, a line at a time).
        if (
            chunk[:6] == b"data: "
            and chunk.find(b"\n") == len(chunk) - 2
            and chunk[-1:] == b"\n"
            and not (self._tail or self._data or self._skip_lf or self._event)
            and b"\r" not in chunk
            and len(chunk) <= self._limit
        ):
            self._held = 0
            return [("", chunk[6:-2])]
        if self._skip_lf:
            self._skip_lf = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
        if b"\n" not in chunk and b"\r" not in chunk:  # (still inside a line: kept, joined when it ends)
            self._hold(len(chunk))
            if chunk:
                self._tail.append(chunk)
            return []
        if self._tail:
            self._tail.append(chunk)
            buffer = b"".join(self._tail)
            self._held -= len(buffer) - len(chunk)  # (counted again below, as lines)
        else:
            buffer = chunk
        if b"\r" in buffer:
            self._skip_lf = buffer.endswith(b"\r")
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = buffer.split(b"\n")
        tail = lines.pop()
        self._tail = [tail] if tail else []
        events: list[tuple[str, bytes]] = []
        for line in lines:
            if line.startswith(b"data: "):  # (nearly every line of a stream: tested first)
                self._hold(len(line))
                self._data.append(line[6:])
            elif not line:
                if self._data:
                    events.append((self._event, b"\n".join(self._data)))
                    self._data = []
                self._event = ""
                self._held = 0
            elif not line.startswith(b":"):
                self._hold(len(line))
                self._field(line)
        self._hold(len(tail))
        return events

    def _hold(self, size: int) -> None:
        self._held += size
        if self._held > self._limit:
            raise MalformedChunk(f"an event of more than {self._limit} bytes")

    def _field(self, line: bytes) -> None:
        name, _, value = line.partition(b":")
        if value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            self._data.append(value)
        elif name == b"event":
            self._event = value.decode("utf-8", "replace")


# The C scanner json.loads ends in, called directly: a reply's every event pays json.loads's two Python-level
# frames otherwise, about a third of parsing a chunk.
_scan: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def chunk_of(event: str, data: bytes) -> Any:
    """The JSON chunk an event carries; raises ``StreamErrorEvent`` for an error the endpoint reported and
    ``MalformedChunk`` for data that is not UTF-8 JSON."""
    try:
        text = data.decode("utf-8")
        # A value that spans the whole text from its first character is what json.loads returns for it; any
        # other text (whitespace around the value, more after it, no value) is left to json.loads to judge.
        chunk, end = _scan(text, 0)
        if end != len(text):
            chunk = json.loads(text)
    except (ValueError, StopIteration, RecursionError):  # (StopIteration: no value at the start of the text)
        try:
            chunk = json.loads(data.decode("utf-8"))
        except (ValueError, RecursionError) as exc:  # (JSON and UTF-8 errors alike; nesting past the stack)
            raise MalformedChunk(str(exc)) from exc
    if isinstance(chunk, dict) and chunk.get("error"):
        error = chunk["error"]
        raise StreamErrorEvent(_message(error), error)
    if event == ERROR_EVENT:
        raise StreamErrorEvent(_message(chunk), chunk)
    return chunk


def _message(error: Any) -> str:
    message = error.get("message") if isinstance(error, dict) else error if isinstance(error, str) else None
    return message if isinstance(message, str) and message else UNSPECIFIED_ERROR
