"""What the REPL does once before its first prompt: learn what the terminal can do, offer other agents'
MCP servers (first run only), and print the banner."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kimicode.wording import plural

if TYPE_CHECKING:
    from kimicode.config import Config
    from kimicode.frontends.common.sessions import OpenedSession
    from kimicode.frontends.repl.notify import Notifier
    from kimicode.frontends.repl.render import Renderer
    from kimicode.frontends.repl.terminal import Terminal
    from kimicode.security.sandbox import Sandbox


def attach_terminal(config: Config, renderer: Renderer) -> tuple[Terminal, Notifier]:
    """What the terminal can do (environment variables only: cheap): links, notifications, keys."""
    from kimicode.frontends.repl.links import Linker, choose_format
    from kimicode.frontends.repl.notify import Notifier
    from kimicode.frontends.repl.terminal import detect

    terminal = detect()
    pattern = choose_format(terminal, config.hyperlink_format)
    renderer.links = Linker(config.work_dir, pattern) if pattern else None

    def write(sequence: str) -> None:
        renderer.console.file.write(sequence)
        renderer.console.file.flush()

    return terminal, Notifier(terminal, config.notify_after, write)


def offer_mcp_import(config: Config, renderer: Renderer) -> None:
    """First interactive run: offer the MCP servers other agents already use (asked once)."""
    from kimicode.manage.mcp_import import first_run_mcp_offer

    try:
        first_run_mcp_offer(config)
    except Exception as exc:  # noqa: BLE001 - discovery problems must not keep the REPL from starting
        renderer.warn(f"could not look for other agents' MCP servers: {exc}")


def banner(
    config: Config,
    opened: OpenedSession,
    terminal: Terminal,
    sandbox: Sandbox | None,
    renderer: Renderer,
    past: bool = True,
) -> None:
    """The first lines: model and workspace, a resumed session's last turns (``past``), the session."""
    session = opened.session
    state = f"resumed session {session.id} ({plural(len(opened.history), 'message')})" if opened.resumed else f"session {session.id}"
    renderer.info(f"kimicode · {config.model} · {config.work_dir}", "bold")
    if opened.resumed and past:
        from kimicode.frontends.repl.history_view import show_past

        show_past(renderer, session.transcript())
    renderer.dim(f"{state} · /help · Enter sends, {terminal.newline_hint()}")
    from kimicode.security.sandbox import unavailable_notice

    notice = unavailable_notice(sandbox)
    if notice:
        renderer.warn(notice)
