"""Signals that end a run: SIGINT, SIGTERM and SIGHUP all stop it the same way.

The running turn is cancelled (the running command's whole process group is killed by the bash tool),
the session is saved, and kimicode exits with 128 + the signal number: 130 (SIGINT), 143 (SIGTERM),
129 (SIGHUP), as shells report a process ended by that signal.

A signal that kimicode inherited as ignored stays ignored: a shell starts a script's background jobs with
SIGINT ignored (so Ctrl-C at the terminal is not meant for them) and ``nohup`` ignores SIGHUP. Such a run
still ends cleanly on the signals it did not inherit as ignored, SIGTERM in particular.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def handled_signals(candidates: tuple[signal.Signals, ...] = STOP_SIGNALS) -> list[signal.Signals]:
    """The stop signals this process did not inherit as ignored."""
    return [sig for sig in candidates if signal.getsignal(sig) is not signal.SIG_IGN]


def exit_code_for(signum: int) -> int:
    return 128 + int(signum)


def install(
    on_signal: Callable[[signal.Signals], None], candidates: tuple[signal.Signals, ...] = STOP_SIGNALS
) -> Callable[[], None]:
    """Route the stop signals to ``on_signal`` on the running loop; returns the function that undoes it."""
    loop = asyncio.get_running_loop()
    installed = handled_signals(candidates)
    for sig in installed:
        loop.add_signal_handler(sig, on_signal, sig)

    def remove() -> None:
        for sig in installed:
            loop.remove_signal_handler(sig)

    return remove


async def cancel_on_signals(work: Awaitable[T], received: list[signal.Signals]) -> T:
    """Await ``work``; a stop signal cancels it (recorded in ``received``). The cancellation reaches the
    running tool call, which kills its command; ``work`` may finish cleanly after that (a result saying
    "interrupted") or let the cancellation through."""
    task = asyncio.current_task()
    assert task is not None

    def on_signal(sig: signal.Signals) -> None:
        if not received:
            received.append(sig)
        task.cancel()  # again on a second signal: it cuts short a clean-up that hangs

    remove = install(on_signal)
    try:
        return await work
    finally:
        remove()
