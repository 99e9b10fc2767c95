"""`kimicode mcp login NAME` / `kimicode mcp logout NAME`: OAuth sign-in to remote MCP servers."""

from __future__ import annotations

import asyncio
import sys
from typing import Annotated

import typer

from kimicode.config import kimicode_home
from kimicode.manage.common import fail as _fail

EXIT_FAILED = 1


def add_login_commands(mcp_app: typer.Typer) -> None:
    """Add `login` and `logout` to the `kimicode mcp` group."""
    mcp_app.command("login")(login)
    mcp_app.command("logout")(logout)


def _remote_server(name: str):  # -> McpServerConfig
    from kimicode.mcp.store import McpStoreError, load_servers

    try:
        servers = load_servers(kimicode_home())
    except McpStoreError as exc:
        raise _fail(str(exc)) from exc
    server = next((s for s in servers if s.name == name), None)
    if server is None:
        known = ", ".join(s.name for s in servers) or "none"
        raise _fail(f"no MCP server named '{name}' (configured: {known})")
    if server.transport == "stdio":
        raise _fail(f"MCP server '{name}' runs as a command on this machine; only remote (HTTP/SSE) servers sign in")
    if any(key.lower() == "authorization" for key in server.headers):
        raise _fail(f"MCP server '{name}' has an Authorization header in mcp.json; remove it to sign in with OAuth")
    return server


def login(
    name: Annotated[str, typer.Argument(help="Name of the remote server to sign in to.")],
    no_browser: Annotated[
        bool, typer.Option("--no-browser", help="Only print the sign-in address (paste back where the browser ends).")
    ] = False,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait for the browser.")] = 300.0,
) -> None:
    """Sign in to a remote MCP server with OAuth (browser); tokens go to KIMICODE_HOME/mcp-tokens/."""
    from kimicode.mcp.login import LoginError, can_open_browser
    from kimicode.mcp.login import login as sign_in

    server = _remote_server(name).expanded()
    home = kimicode_home()

    def say(text: str) -> None:
        typer.echo(text)

    paste = sys.stdin if sys.stdin is not None and not sys.stdin.closed else None
    try:
        count = asyncio.run(sign_in(server, home, say, not no_browser and can_open_browser(), paste, timeout))
    except LoginError as exc:
        raise _fail(f"could not sign in to MCP server '{name}': {exc}", EXIT_FAILED) from exc
    except KeyboardInterrupt:
        raise _fail(f"sign-in to MCP server '{name}' interrupted", EXIT_FAILED) from None
    from kimicode.mcp.token_store import sign_in_state

    if not sign_in_state(home, server.name, server.url):
        typer.echo(f"MCP server '{name}' did not ask for a sign-in: it works without one ({count} tools)")
        return
    typer.echo(f"signed in to MCP server '{name}' ({count} tools)")


def logout(name: Annotated[str, typer.Argument(help="Name of the remote server to sign out of.")]) -> None:
    """Forget the sign-in (tokens and registration) kept for a remote MCP server."""
    from kimicode.mcp.token_store import forget

    server = _remote_server(name).expanded()
    if forget(kimicode_home(), server.name, server.url):
        typer.echo(f"signed out of MCP server '{name}' (its tokens are deleted)")
    else:
        typer.echo(f"MCP server '{name}' was not signed in")
