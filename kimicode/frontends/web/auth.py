"""Who may talk to the server: the token, the one-time login link, and the Host and Origin checks.

Invariants:
- Every request but ``/login`` carries the token (``Authorization: Bearer``) or the cookie a login link
  set; tokens and cookies are compared in constant time (hmac.compare_digest).
- A login link works once: its code is spent by the first visit, which gets an HttpOnly, SameSite=Strict
  cookie instead.
- ``Host`` must name the address the server is bound to (or, bound to loopback, a loopback name): a page
  on another site whose name was pointed at 127.0.0.1 (DNS rebinding) is refused. ``Origin``, when a
  browser sends one, must be the server's own; no CORS header is ever sent, so other pages cannot read
  answers either.
- A refusal is one short JSON error with 401, 403 or 421; nothing of the request is echoed.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import os
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from kimicode.sdk import TOKEN_FILE

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

COOKIE = "kimicode_web"
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def write_token(home: Path, token: str) -> Path:
    """The token for local clients (the SDK, scripts), readable by the user alone."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / TOKEN_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(token + "\n")
    os.chmod(path, 0o600)  # a file left from before keeps its mode through O_TRUNC
    return path


class Gate:
    """The server's secrets and the checks every request passes before any route sees it."""

    def __init__(self, host: str, port: int, token: str | None = None) -> None:
        self.token = token or secrets.token_urlsafe(32)
        self.login_code = secrets.token_urlsafe(32)  # spent by the first visit of the login link
        self._cookies: list[str] = []
        self.set_address(host, port)

    def set_address(self, host: str, port: int) -> None:
        self.port = port
        bare = host.strip("[]")
        self.wildcard = bare in ("0.0.0.0", "::")
        shown = f"[{bare}]" if ":" in bare else bare
        self.names = set(LOOPBACK_NAMES) if is_loopback(bare) else {shown}
        self.base_url = f"http://{'127.0.0.1' if self.wildcard else shown}:{port}"

    def host_ok(self, value: str) -> bool:
        """``Host`` names this server: its address, a loopback name when it listens there, or (listening on
        every address) any IP literal. A DNS name is accepted only when it is the one given with --host:
        rebinding needs a name the attacker controls."""
        name, _, port = value.rpartition(":")
        if not name or port != str(self.port):
            return False
        if ":" in name and not (name.startswith("[") and name.endswith("]")):  # an IPv6 literal is bracketed
            return False
        if name in self.names:
            return True
        if self.wildcard:
            try:
                ipaddress.ip_address(name.strip("[]"))
            except ValueError:
                return name == "localhost"
            return True
        return False

    def login_url(self) -> str:
        return f"{self.base_url}/login?token={self.login_code}"

    def _matches(self, given: str, secret: str) -> bool:
        return hmac.compare_digest(given.encode(), secret.encode())

    def authorized(self, headers: dict[str, str]) -> bool:
        bearer = headers.get("authorization", "")
        if bearer[:7].lower() == "bearer " and self._matches(bearer[7:].strip(), self.token):
            return True
        cookie = SimpleCookie()
        try:
            cookie.load(headers.get("cookie", ""))
        except Exception:  # noqa: BLE001 - a malformed cookie header is just no cookie
            return False
        given = cookie.get(COOKIE)
        if given is None:
            return False
        # every cookie is compared, so the time taken does not say which one nearly matched
        found = False
        for value in self._cookies:
            found |= self._matches(given.value, value)
        return found

    def login(self, code: str) -> str | None:
        """A new cookie value for the login link's code (spent now) or the token itself; None otherwise."""
        fresh_code = self._matches(code, self.login_code) if self.login_code else False
        if not fresh_code and not self._matches(code, self.token):
            return None
        if fresh_code:
            self.login_code = ""
        value = secrets.token_urlsafe(32)
        self._cookies.append(value)
        return value

    def wrap(self, app: ASGIApp) -> ASGIApp:
        async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
            host = headers.get("host", "")
            if not self.host_ok(host):
                await _refuse(send, 421, "this server answers only to its own address (Host header)")
                return
            origin = headers.get("origin")
            if origin is not None and origin != f"http://{host}":
                await _refuse(send, 403, "requests from other web pages are not allowed (Origin header)")
                return
            if scope.get("path") == "/login":
                await self._login(scope, send)
                return
            if not self.authorized(headers):
                await _refuse(send, 401, "a token is needed: Authorization: Bearer TOKEN, or the login link kimicode printed")
                return
            await app(scope, receive, send)

        return guarded

    async def _login(self, scope: Scope, send: Send) -> None:
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        cookie = self.login(query.get("token", [""])[0])
        if cookie is None:
            await _refuse(send, 401, "this login link was already used or is wrong: ask kimicode for a new one (restart it)")
            return
        set_cookie = f"{COOKIE}={cookie}; HttpOnly; SameSite=Strict; Path=/"
        await send({
            "type": "http.response.start",
            "status": 303,
            "headers": [(b"location", b"/"), (b"set-cookie", set_cookie.encode()), (b"cache-control", b"no-store")],
        })
        await send({"type": "http.response.body", "body": b""})


async def _refuse(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
    })
    await send({"type": "http.response.body", "body": body})
