"""`kimicode mcp login NAME`: sign in to a remote MCP server in the browser, and keep the tokens.

The browser comes back to a listener on 127.0.0.1 (a loopback redirect, RFC 8252). When the browser runs
on another machine (an SSH session) it cannot reach that listener: the user pastes the address the browser
ended on instead, and whichever of the two arrives first completes the sign-in.

Invariants:
- The listener binds 127.0.0.1 only, answers only its callback path, and is closed when login ends.
- A dynamically registered client is reused only with the redirect address it registered; with another
  (its port is taken) the old registration is dropped and a new one made.
- A login always asks for a new authorization: tokens held before are dropped first.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import parse_qs, urlsplit

from kimicode.mcp.server_config import McpServerConfig
from kimicode.mcp.token_store import FileTokenStorage, token_path

__all__ = ["CallbackListener", "LoginError", "login", "can_open_browser"]

CALLBACK_PATH = "/callback"
_PAGE = (
    b"<!doctype html><meta charset=utf-8><title>kimicode</title>"
    b"<p>kimicode has the answer. You can close this tab and go back to the terminal.</p>"
)


class LoginError(Exception):
    """A sign-in that did not complete; the message says why, on one line."""


class CallbackListener:
    """An HTTP listener on 127.0.0.1 that takes one authorization response."""

    def __init__(self) -> None:
        self.result: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self, preferred_port: int = 0, required: bool = False) -> None:
        """Listen on ``preferred_port`` (0: any); another free port when it is taken, unless ``required``."""
        for port in dict.fromkeys((preferred_port, 0)):
            try:
                self._server = await asyncio.start_server(self._serve, "127.0.0.1", port)
                break
            except OSError as exc:
                if port == 0 or required:
                    raise LoginError(f"cannot listen on 127.0.0.1:{port} for the browser's return: {exc.strerror}") from exc
        assert self._server is not None
        self.port = int(self._server.sockets[0].getsockname()[1])

    @property
    def redirect_uri(self) -> str:
        return f"http://127.0.0.1:{self.port}{CALLBACK_PATH}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = (await asyncio.wait_for(reader.readline(), 10)).decode("latin-1")
            while (await asyncio.wait_for(reader.readline(), 10)).strip():
                pass  # headers: nothing in them matters
            parts = request_line.split()
            target = parts[1] if len(parts) >= 2 else ""
            if parts[:1] == ["GET"] and urlsplit(target).path == CALLBACK_PATH:
                status, body = "200 OK", _PAGE
                if not self.result.done():
                    self.result.set_result(f"http://127.0.0.1:{self.port}{target}")
            else:
                status, body = "404 Not Found", b"not found"
            head = f"HTTP/1.1 {status}\r\nContent-Type: text/html\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            writer.write(head.encode("latin-1") + body)
            await writer.drain()
        except (OSError, asyncio.TimeoutError, UnicodeError):
            pass
        finally:
            writer.close()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


def can_open_browser() -> bool:
    """Whether a browser can be opened on this machine (a display, a desktop OS, or $BROWSER set)."""
    if os.environ.get("BROWSER"):
        return True
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _watch_pasted(source: TextIO, loop: asyncio.AbstractEventLoop, future: asyncio.Future[str]) -> None:
    """Read pasted lines in a thread (stdin cannot be awaited portably); the first URL with a code wins."""

    def deliver(text: str) -> None:
        if not future.done():
            future.set_result(text)

    def run() -> None:
        for line in source:
            text = line.strip()
            if "code=" in text or "error=" in text:
                loop.call_soon_threadsafe(deliver, text)
                return

    threading.Thread(target=run, name="kimicode-login-paste", daemon=True).start()


def parse_callback(address: str) -> Any:
    """The code, state and issuer of the address the browser was sent back to."""
    from mcp.client.auth import AuthorizationCodeResult

    query = parse_qs(urlsplit(address).query)
    if "error" in query:
        detail = query.get("error_description", query["error"])[0]
        raise LoginError(f"the authorization server refused the sign-in: {query['error'][0]} ({detail})")
    first = {key: values[0] for key, values in query.items() if values}
    if not first.get("code"):
        raise LoginError("the address has no authorization code (paste the whole address the browser ended on)")
    return AuthorizationCodeResult(code=first["code"], state=first.get("state"), iss=first.get("iss"))


async def login(
    config: McpServerConfig,
    home: Path,
    say: Callable[[str], None],
    open_browser: bool,
    paste_source: TextIO | None,
    timeout: float,
) -> int:
    """Sign in to ``config`` (expanded) and connect once with the new tokens; returns its tool count."""
    import webbrowser

    from kimicode.mcp.manager import quiet_sdk_logging
    from kimicode.mcp.oauth import make_provider

    quiet_sdk_logging(home / "logs")  # the SDK logs a failed flow with its traceback: to the file, not the screen

    listener = CallbackListener()
    storage = FileTokenStorage(token_path(home, config.name, config.url))
    record = storage.record()
    client_uris = (record.get("client") or {}).get("redirect_uris") or []
    fixed = config.oauth.get("callback_port", "")
    if fixed and not fixed.isdigit():
        raise LoginError(f"oauth.callback_port in mcp.json must be a port number, not {fixed!r}")
    # A client registered by hand knows one redirect address: its port must be the one used.
    await listener.start(int(fixed or _port_of(client_uris) or 0), required=bool(fixed))
    try:
        if config.oauth.get("client_id") or listener.redirect_uri not in client_uris:
            storage.forget_client()  # registered for another address (or replaced by the configured client)
        elif "tokens" in record:
            record.pop("tokens")
            record.pop("expires_at", None)
            storage.path.unlink()
            await storage.set_client_info(_client_model(record["client"]))

        async def redirect(url: str) -> None:
            say(f"Sign in to MCP server '{config.name}' at this address:\n\n  {url}\n")
            opened = False
            if open_browser:
                with contextlib.suppress(Exception):  # noqa: BLE001 - no browser is a normal case here
                    opened = await asyncio.to_thread(webbrowser.open, url)
            if not opened:
                say("Open it in a browser on any machine.")
            say(
                "Waiting for the browser to come back; if it cannot reach this machine, paste the address "
                "it ended on here and press Enter."
            )
            if paste_source is not None:
                _watch_pasted(paste_source, asyncio.get_running_loop(), listener.result)

        async def callback() -> Any:
            try:
                address = await asyncio.wait_for(asyncio.shield(listener.result), timeout)
            except asyncio.TimeoutError:
                raise LoginError(f"no sign-in within {timeout:g} s; run the login again") from None
            return parse_callback(address)

        provider = make_provider(config, home, listener.redirect_uri, redirect, callback)
        try:
            return await _connect(config, provider, timeout)
        except Exception as exc:  # noqa: BLE001 - every failure becomes one line
            raise LoginError(_reason(provider.failure or exc)) from exc
    finally:
        await listener.close()


def _reason(exc: BaseException) -> str:
    from kimicode.mcp.server import flatten

    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, LoginError):
        return str(exc)
    return flatten(exc)


def _port_of(uris: list[str]) -> int:
    for uri in uris:
        parts = urlsplit(str(uri))
        if parts.hostname == "127.0.0.1" and parts.port:
            return parts.port
    return 0


def _client_model(client: dict[str, Any]) -> Any:
    from mcp.shared.auth import OAuthClientInformationFull

    return OAuthClientInformationFull.model_validate(client)


async def _connect(config: McpServerConfig, auth: Any, timeout: float) -> int:
    """Open the server with ``auth`` (the sign-in happens on its first 401) and count its tools."""
    import anyio
    import httpx2
    from mcp.client.session import ClientSession
    from mcp_types import Implementation

    import kimicode
    from kimicode.mcp.server import list_tools

    async with contextlib.AsyncExitStack() as stack:
        if config.transport == "sse":
            from mcp.client.sse import sse_client

            streams = await stack.enter_async_context(sse_client(config.url, headers=config.headers or None, auth=auth))
        else:
            from mcp.client.streamable_http import streamable_http_client

            client = await stack.enter_async_context(
                httpx2.AsyncClient(headers=config.headers or None, auth=auth, timeout=httpx2.Timeout(30.0, read=300.0))
            )
            streams = await stack.enter_async_context(streamable_http_client(config.url, http_client=client))
        session = await stack.enter_async_context(
            ClientSession(streams[0], streams[1], client_info=Implementation(name="kimicode", version=kimicode.__version__))
        )
        # The clock covers the person in the browser too: the sign-in happens inside initialize.
        with anyio.fail_after(timeout + 60):
            await session.initialize()
            tools, held_back = await list_tools(session)
        return len(tools) + len(held_back)
