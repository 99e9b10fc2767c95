"""A session's events as the server keeps them: numbered, in order, the newest few thousand at hand.

Invariants:
- Ids increase by one per event, per session, from 1; an id is never reused, so ``Last-Event-ID`` names
  one point in the stream and a reader resumed from it gets every later event exactly once.
- The buffer is bounded: a reader that comes back after more than ``limit`` events were published is told
  which ids it missed (one ``gap`` event) rather than silently skipping them.
- ``publish`` never waits: a slow reader never holds the run back.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

# Events kept per session for readers that reconnect (each is one stream-json object, mostly small).
BUFFER_LIMIT = 5000
# A comment line this often keeps proxies and the browser from dropping an idle stream (seconds).
KEEPALIVE = 15.0


class EventLog:
    def __init__(self, limit: int = BUFFER_LIMIT) -> None:
        self._events: deque[tuple[int, str]] = deque(maxlen=limit)
        self._next = 1
        self._wake = asyncio.Event()
        self.closed = False
        self.readers = 0  # streams following the log now

    @property
    def last_id(self) -> int:
        return self._next - 1

    def publish(self, event: dict[str, Any]) -> int:
        event_id = self._next
        self._next += 1
        self._events.append((event_id, json.dumps(event, ensure_ascii=False)))
        self._wake.set()
        self._wake = asyncio.Event()
        return event_id

    def close(self) -> None:
        """No more events: readers get what is buffered and their stream ends."""
        self.closed = True
        self._wake.set()

    def since(self, last: int) -> list[tuple[int, str]]:
        """The buffered events after id ``last``; a ``gap`` first when some of them are gone."""
        if not self._events or last >= self._events[-1][0]:
            return []
        first = self._events[0][0]
        if last + 1 < first:
            gap = json.dumps({"type": "gap", "from": last + 1, "to": first - 1})
            return [(first - 1, gap), *self._events]
        return [item for item in self._events if item[0] > last]

    async def follow(self, last: int) -> AsyncIterator[tuple[int, str] | None]:
        """Every event after ``last`` as it comes; None when KEEPALIVE passed without one."""
        self.readers += 1
        try:
            async for item in self._follow(last):
                yield item
        finally:
            self.readers -= 1

    async def _follow(self, last: int) -> AsyncIterator[tuple[int, str] | None]:
        while True:
            wake = self._wake
            batch = self.since(last)
            for item in batch:
                last = item[0]
                yield item
            if batch:
                continue
            if self.closed:
                return
            try:
                await asyncio.wait_for(wake.wait(), KEEPALIVE)
            except asyncio.TimeoutError:
                yield None


def sse_message(item: tuple[int, str] | None) -> bytes:
    """One server-sent event: ``id:`` then the stream-json object as ``data:`` (json.dumps keeps it on one
    line); None is a comment that only keeps the connection alive."""
    if item is None:
        return b": keepalive\n\n"
    event_id, data = item
    return f"id: {event_id}\ndata: {data}\n\n".encode()


def last_event_id(header: str | None, query: str | None) -> int:
    """Where a reader resumes: the ``Last-Event-ID`` header (the browser's own reconnect), else
    ``?after=N``; 0 (from the start of the buffer) when neither is a number."""
    for value in (header, query):
        if value and value.strip().isdigit():
            return int(value.strip())
    return 0
