"""A run that pushes its events (``emit``) read as an async iterator that is pulled.

Invariants:
- Every event is handed over in order, the last one ``Done``; nothing after it.
- Closing the iterator early cancels the run and waits for it to finish cancelling.
- A run that dies without ``Done`` re-raises its exception to the reader once its events are read.
- An event already queued is handed over without another turn of the event loop (a step emits about ten):
  the reader waits only when the queue is empty, and the run's end arrives through the same queue.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Callable, Coroutine
from typing import Any

from kimicode.agent import events as ev
from kimicode.agent.callbacks import Emit

_ENDED = object()  # queued when the run's task finishes, after every event it emitted


async def pulled(drive: Callable[[Emit], Coroutine[Any, Any, None]]) -> AsyncGenerator[ev.Event, None]:
    """Start ``drive(emit)`` and yield what it emits until ``Done``."""
    queue: asyncio.Queue[Any] = asyncio.Queue()
    driver = asyncio.create_task(drive(queue.put_nowait))
    driver.add_done_callback(lambda _: queue.put_nowait(_ENDED))
    try:
        while True:
            event = await queue.get()
            if event is _ENDED:
                driver.result()  # the driver died without Done: re-raise its exception
                return
            yield event
            if isinstance(event, ev.Done):
                return
    finally:
        if not driver.done():
            driver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await driver
