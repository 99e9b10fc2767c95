"""Choosing a session: which saved one ``/resume`` (or ``-r`` without an id) continues, and a fork of it
when another kimicode is writing to it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING

from kimicode.frontends.common.sessions import SessionInUse, SessionNotFound, describe_sessions, open_session
from kimicode.wording import plural

if TYPE_CHECKING:
    from kimicode.config import Config
    from kimicode.frontends.common.sessions import OpenedSession
    from kimicode.frontends.repl.control import ReplControl
    from kimicode.frontends.repl.render import Renderer

SHOWN = 15  # saved sessions offered by /resume without an id
OfferFork = Callable[[SessionInUse, str], Awaitable["OpenedSession | None"]]


async def offer_fork(
    config: Config,
    renderer: Renderer,
    paused: Callable[[], AbstractAsyncContextManager[None]],
    busy: SessionInUse,
    otherwise: str,
) -> OpenedSession | None:
    """Another kimicode writes to that session: offer a fork of it (its history, a new log) instead."""
    from kimicode.frontends.common.sessions import fork_session
    from kimicode.frontends.repl.input import ask_choice

    renderer.warn(str(busy))
    async with paused():
        answer = await ask_choice(
            f"  [f] fork: continue in a new session with its history  [q] {otherwise}  › ", {"f": "fork", "q": "quit"}
        )
    if answer != "fork":
        return None
    forked = fork_session(config, busy)
    renderer.dim(f"  → continuing in new session {forked.session.id} (forked from {busy.session.id})")
    return forked


async def resume_session(repl: ReplControl, session_id: str | None, fork: OfferFork) -> None:
    """Continue the saved session ``session_id``; None lists this workspace's sessions and asks which."""
    from kimicode.frontends.common.sessions import session_store

    config, renderer = repl.config, repl.renderer
    if session_id is None:
        infos = session_store(config).list(config.work_dir)
        if not infos:
            renderer.dim("no saved sessions for this workspace")
            return
        for number, line in enumerate(describe_sessions(infos, SHOWN), 1):
            renderer.info(f"  {number:>2}) {line}")
        choice = (await repl.ask_line("  resume which? (number, Enter to cancel) › ")).strip()
        if not choice.isdigit() or not 1 <= int(choice) <= min(len(infos), SHOWN):
            return
        session_id = infos[int(choice) - 1].id
    try:
        opened = open_session(config, resume_id=session_id)
    except SessionNotFound as exc:
        renderer.error(str(exc))
        return
    except SessionInUse as busy:
        if busy.session.id == repl.opened.session.id:
            renderer.dim(f"session {busy.session.id} is the one in use here")
            return
        forked = await fork(busy, f"stay in session {repl.opened.session.id}")
        if forked is None:
            return
        opened = forked
    repl.switch_to(opened)
    from kimicode.frontends.repl.history_view import show_past

    show_past(renderer, opened.session.transcript())
    for warning in opened.warnings:
        renderer.warn(warning)
    renderer.dim(f"resumed session {opened.session.id} ({plural(len(opened.history), 'message')})")
