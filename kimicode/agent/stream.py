"""A run that pushes its events (``emit``) read as an async iterator that is pulled.

Invariants:
- Every event is handed over in order, the last one ``Done``; nothing after it.
- Closing the iterator early cancels the run and waits for it to finish cancelling.
- A run that dies without ``Done`` re-raises its exception to the reader once its events are read.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Callable, Coroutine
from typing import Any

from kimicode.agent import events as ev
from kimicode.agent.callbacks import Emit


async def pulled(drive: Callable[[Emit], Coroutine[Any, Any, None]]) -> AsyncGenerator[ev.Event, None]:
    """Start ``drive(emit)`` and yield what it emits until ``Done``."""
    queue: asyncio.Queue[ev.Event] = asyncio.Queue()
    driver = asyncio.create_task(drive(queue.put_nowait))
    getter: asyncio.Future[ev.Event] | None = None
    try:
        while True:
            getter = asyncio.ensure_future(queue.get())
            done, _ = await asyncio.wait({getter, driver}, return_when=asyncio.FIRST_COMPLETED)
            if getter in done:
                event = getter.result()
                yield event
                if isinstance(event, ev.Done):
                    return
                continue
            getter.cancel()
            driver.result()  # the driver died without Done: re-raise its exception
            while not queue.empty():
                event = queue.get_nowait()
                yield event
                if isinstance(event, ev.Done):
                    return
            return
    finally:
        if getter is not None and not getter.done():
            getter.cancel()  # a cancelled wait leaves it pending otherwise
        if not driver.done():
            driver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await driver
