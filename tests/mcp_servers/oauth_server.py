"""A protected MCP server and its OAuth authorization server, on one loopback HTTP server, for the tests.

- ``/.well-known/oauth-protected-resource/mcp``: protected-resource metadata naming the issuer ``/auth``;
- ``/.well-known/oauth-authorization-server/auth``: authorization-server metadata (RFC 8414 path form);
- ``/auth/register``: dynamic client registration; ``/auth/authorize``: approves at once and redirects
  back (the "browser" step); ``/auth/token``: code exchange with PKCE verification, and refresh;
- ``/mcp``: a minimal streamable-HTTP MCP server (JSON responses) with one tool, ``whoami``, and the same
  server over the SSE transport at ``/sse`` (+ ``/messages``); without a live access token both answer 401
  with a ``resource_metadata`` challenge.

Everything a client did wrong is kept in ``problems`` (a test asserts it stays empty).
"""

from __future__ import annotations

import base64
import hashlib
import json
import queue
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit


@dataclass
class AuthState:
    base: str = ""
    access_ttl: int = 3600
    deny: bool = False  # the user says no on the sign-in page
    clients: dict[str, dict[str, Any]] = field(default_factory=dict)
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    access: dict[str, float] = field(default_factory=dict)  # token -> expiry time
    refresh: dict[str, str] = field(default_factory=dict)  # token -> client id
    registrations: int = 0
    grants: list[str] = field(default_factory=list)  # grant_type of each successful token request
    client_auth: list[str] = field(default_factory=list)  # how each token request authenticated
    mcp_tokens: list[str] = field(default_factory=list)  # bearer token of each /mcp request ("" if none)
    problems: list[str] = field(default_factory=list)
    streams: dict[str, queue.Queue[dict[str, Any]]] = field(default_factory=dict)  # SSE session -> its outbox
    stopping: threading.Event = field(default_factory=threading.Event)

    @property
    def resource(self) -> str:
        return f"{self.base}/mcp"

    @property
    def sse(self) -> str:
        return f"{self.base}/sse"

    @property
    def resources(self) -> tuple[str, str]:
        return (self.resource, self.sse)

    @property
    def issuer(self) -> str:
        return f"{self.base}/auth"

    def revoke_access(self) -> None:
        self.access.clear()

    def revoke_everything(self) -> None:
        self.access.clear()
        self.refresh.clear()

    def issue(self, client_id: str) -> dict[str, Any]:
        access, refresh = f"at-{secrets.token_urlsafe(24)}", f"rt-{secrets.token_urlsafe(24)}"
        self.access[access] = time.time() + self.access_ttl
        self.refresh[refresh] = client_id
        return {"access_token": access, "token_type": "Bearer", "expires_in": self.access_ttl, "refresh_token": refresh}


def _challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")


class _Handler(BaseHTTPRequestHandler):
    state: AuthState

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass

    def _send(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_GET(self) -> None:
        state, url = self.state, urlsplit(self.path)
        if url.path in ("/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource/sse"):
            resource = state.base + url.path.removeprefix("/.well-known/oauth-protected-resource")
            self._send(200, {"resource": resource, "authorization_servers": [state.issuer]})
        elif url.path == "/.well-known/oauth-authorization-server/auth":
            self._send(200, {
                "issuer": state.issuer,
                "authorization_endpoint": f"{state.issuer}/authorize",
                "token_endpoint": f"{state.issuer}/token",
                "registration_endpoint": f"{state.issuer}/register",
                "response_types_supported": ["code"],
                "grant_types_supported": ["authorization_code", "refresh_token"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
                "authorization_response_iss_parameter_supported": True,
            })
        elif url.path == "/auth/authorize":
            self._authorize({k: v[0] for k, v in parse_qs(url.query).items()})
        elif url.path == "/mcp":
            self._send(405)
        elif url.path == "/sse":
            self._sse()
        else:
            self._send(404, {"error": "not_found"})

    def _authorize(self, query: dict[str, str]) -> None:
        state = self.state
        client = state.clients.get(query.get("client_id", ""))
        wrong = [
            what
            for what, bad in (
                ("unknown client", client is None),
                ("redirect_uri not registered", client is not None and query.get("redirect_uri") not in client["redirect_uris"]),
                ("no S256 PKCE challenge", query.get("code_challenge_method") != "S256" or not query.get("code_challenge")),
                ("wrong resource", query.get("resource") not in state.resources),
                ("no state", not query.get("state")),
            )
            if bad
        ]
        if wrong:
            state.problems.extend(wrong)
            self._send(400, {"error": "invalid_request", "error_description": ", ".join(wrong)})
            return
        code = secrets.token_urlsafe(16)
        state.codes[code] = dict(query)
        back = urlencode({"code": code, "state": query["state"], "iss": state.issuer})
        if state.deny:
            back = urlencode({"error": "access_denied", "error_description": "the user said no", "state": query["state"]})
        self._send(302, headers={"Location": f"{query['redirect_uri']}?{back}"})

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        if path == "/auth/register":
            self._register(json.loads(self._body() or b"{}"))
        elif path == "/auth/token":
            self._token({k: v[0] for k, v in parse_qs(self._body().decode()).items()})
        elif path == "/mcp":
            self._mcp(self._body())
        elif path == "/messages":
            self._post_message(self._body())
        else:
            self._send(404, {"error": "not_found"})

    def _register(self, metadata: dict[str, Any]) -> None:
        state = self.state
        state.registrations += 1
        client_id = f"client-{state.registrations}"
        state.clients[client_id] = {"redirect_uris": metadata.get("redirect_uris") or [], "secret": None}
        self._send(201, {**metadata, "client_id": client_id, "token_endpoint_auth_method": "none"})

    def _client_of(self, form: dict[str, str]) -> str | None:
        header = self.headers.get("Authorization", "")
        if header.startswith("Basic "):
            client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
            how = "client_secret_basic"
        else:
            client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
            how = "client_secret_post" if secret else "none"
        client = self.state.clients.get(client_id)
        if client is None or (client["secret"] is not None and client["secret"] != secret):
            self.state.problems.append(f"bad client authentication ({how})")
            return None
        self.state.client_auth.append(how)
        return client_id

    def _token(self, form: dict[str, str]) -> None:
        state = self.state
        client_id = self._client_of(form)
        if client_id is None:
            self._send(401, {"error": "invalid_client"})
            return
        grant = form.get("grant_type")
        if grant == "authorization_code":
            issued = state.codes.pop(form.get("code", ""), None)
            wrong = issued is None or issued["client_id"] != client_id or issued["redirect_uri"] != form.get("redirect_uri")
            if not wrong and _challenge(form.get("code_verifier", "")) != issued["code_challenge"]:  # type: ignore[index]
                state.problems.append("PKCE verifier does not match the challenge")
                wrong = True
            if wrong or form.get("resource") not in state.resources:
                self._send(400, {"error": "invalid_grant"})
                return
        elif grant == "refresh_token":
            if state.refresh.get(form.get("refresh_token", "")) != client_id:
                self._send(400, {"error": "invalid_grant"})
                return
            state.refresh.pop(form["refresh_token"])
        else:
            self._send(400, {"error": "unsupported_grant_type"})
            return
        state.grants.append(grant)
        self._send(200, state.issue(client_id), {"Cache-Control": "no-store"})

    def _authorized(self) -> bool:
        """Whether the request carries a live access token; answers 401 with the challenge when not."""
        state = self.state
        header = self.headers.get("Authorization", "")
        token = header[7:] if header.startswith("Bearer ") else ""
        state.mcp_tokens.append(token)
        if state.access.get(token, 0) >= time.time():
            return True
        name = "sse" if urlsplit(self.path).path in ("/sse", "/messages") else "mcp"
        challenge = f'Bearer error="invalid_token", resource_metadata="{state.base}/.well-known/oauth-protected-resource/{name}"'
        self._send(401, {"error": "invalid_token"}, {"WWW-Authenticate": challenge})
        return False

    def _mcp(self, body: bytes) -> None:
        if not self._authorized():
            return
        reply = _answer(json.loads(body))
        self._send(202) if reply is None else self._send(200, reply)

    def _sse(self) -> None:
        """The SSE transport: this stream carries the answers to what is posted to /messages?sid=..."""
        if not self._authorized():
            return
        sid = secrets.token_hex(8)
        outbox: queue.Queue[dict[str, Any]] = queue.Queue()
        self.state.streams[sid] = outbox
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        try:
            self.wfile.write(f"event: endpoint\ndata: /messages?sid={sid}\n\n".encode())
            self.wfile.flush()
            while not self.state.stopping.is_set():
                try:
                    message = outbox.get(timeout=0.2)
                except queue.Empty:
                    continue
                self.wfile.write(f"event: message\ndata: {json.dumps(message)}\n\n".encode())
                self.wfile.flush()
        except OSError:
            pass
        finally:
            self.state.streams.pop(sid, None)

    def _post_message(self, body: bytes) -> None:
        if not self._authorized():
            return
        outbox = self.state.streams.get(parse_qs(urlsplit(self.path).query).get("sid", [""])[0])
        if outbox is None:
            self._send(404, {"error": "no such stream"})
            return
        reply = _answer(json.loads(body))
        self._send(202)
        if reply is not None:
            outbox.put(reply)


def _answer(message: dict[str, Any]) -> dict[str, Any] | None:
    """The JSON-RPC answer of the protected MCP server (None for a notification)."""
    method, ident = message.get("method"), message.get("id")
    if ident is None:
        return None
    if method == "initialize":
        result: Any = {
            "protocolVersion": message["params"]["protocolVersion"],
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "wiki", "version": "1"},
        }
    elif method == "tools/list":
        result = {"tools": [{"name": "whoami", "description": "Who is signed in.", "inputSchema": {"type": "object"}}]}
    elif method == "tools/call":
        result = {"content": [{"type": "text", "text": "signed in as alice"}]}
    else:
        result = {}
    return {"jsonrpc": "2.0", "id": ident, "result": result}


@contextmanager
def oauth_server(access_ttl: int = 3600) -> Iterator[AuthState]:
    """Serve the protected MCP server and its authorization server on 127.0.0.1; yields their state."""
    state = AuthState(access_ttl=access_ttl)
    handler = type("Handler", (_Handler,), {"state": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    state.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.stopping.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
