"""A raw HTTP/1.1 server on loopback for the model client's transport tests: each POST is answered by a
function the test gives, which writes exactly the bytes it wants (and may misbehave); GETs get a 404.

It counts what a user's endpoint would see: connections that carried a POST, every POST's bytes, what the
first read of each request got, the TLS name and protocol the client asked for."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.loopback import Listener


@dataclass
class Posted:
    """One POST as the server read it."""

    connection: int  # which connection (in accept order, counting POST-carrying connections from 1)
    head: bytes
    body: bytes
    first_read: bytes  # what the first read of this request got from the socket


# Writes the answer to the POST on the socket; returns False to close the connection after it.
Answer = Callable[[socket.socket, Posted], bool]


def reply_events(text: str = "hello") -> bytes:
    """A whole streamed reply's body: one content delta, a finish, [DONE]."""
    chunks = [
        {"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]},
        {"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
    ]
    return b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"


HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"


def chunked(body: bytes, pieces: int = 3) -> bytes:
    step = max(1, len(body) // pieces)
    parts = [body[i : i + step] for i in range(0, len(body), step)]
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"


def unchunked(data: bytes) -> bytes:
    out = b""
    while data:
        size, _, data = data.partition(b"\r\n")
        n = int(size, 16)
        out, data = out + data[:n], data[n + 2 :]
    return out


def answer_chunked(text: str = "hello", extra_head: bytes = b"") -> Answer:
    def send(conn: socket.socket, posted: Posted) -> bool:
        conn.sendall(HEAD + extra_head + b"Transfer-Encoding: chunked\r\n\r\n" + chunked(reply_events(text)))
        return b"connection: close" not in extra_head.lower()

    return send


def answer_length(text: str = "hello") -> Answer:
    def send(conn: socket.socket, posted: Posted) -> bool:
        body = reply_events(text)
        conn.sendall(HEAD + b"Content-Length: %d\r\n\r\n" % len(body) + body)
        return True

    return send


def answer_until_close(text: str = "hello") -> Answer:
    """A body with neither length nor chunks: it ends where the server closes the connection."""

    def send(conn: socket.socket, posted: Posted) -> bool:
        conn.sendall(HEAD + b"Connection: close\r\n\r\n" + reply_events(text))
        return False

    return send


@dataclass
class WireServer:
    tls: ssl.SSLContext | None = None
    host: str = "127.0.0.1"
    answers: list[Answer] = field(default_factory=list)  # taken in order, one per POST
    posts: list[Posted] = field(default_factory=list)
    connections: int = 0  # connections that carried a POST
    closed: int = 0  # POST-carrying connections the client ended
    sent_bytes: int = 0  # bytes an Answer counted as sent (for the ones that send without end)
    names: list[Any] = field(default_factory=list)  # (SNI, ALPN) of each TLS connection
    lock: threading.Lock = field(default_factory=threading.Lock)
    changed: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self.changed = threading.Condition(self.lock)
        self._listener = Listener(self._serve, self.host)
        self.port = self._listener.port
        scheme = "https" if self.tls is not None else "http"
        self.base_url = f"{scheme}://{'localhost' if self.tls is not None else self.host}:{self.port}/v1"

    def close(self) -> None:
        self._listener.close()

    def wait_for(self, done: Callable[[], bool], timeout: float = 10.0) -> bool:
        with self.changed:
            return self.changed.wait_for(done, timeout)

    def _serve(self, conn: socket.socket) -> None:
        number = 0
        try:
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
                with self.lock:
                    self.names.append((getattr(conn, "sni", None), conn.selected_alpn_protocol()))
            number = self._requests(conn)
        except OSError:
            pass
        finally:
            conn.close()
            if number:
                with self.changed:
                    self.closed += 1
                    self.changed.notify_all()

    def _requests(self, conn: socket.socket) -> int:
        """Answers the requests on ``conn``; the connection's number once it carried a POST (else 0)."""
        number = 0
        pending = b""
        while True:
            first = pending or conn.recv(1 << 20)
            if not first:
                return number
            data = first
            while b"\r\n\r\n" not in data:
                more = conn.recv(1 << 20)
                if not more:
                    return number
                data += more
            head, _, body = data.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if b"transfer-encoding: chunked" in head.lower():
                while b"\r\n0\r\n\r\n" not in b"\r\n" + body:
                    more = conn.recv(1 << 20)
                    if not more:
                        return number
                    body += more
                body, _, pending = body.partition(b"0\r\n\r\n")  # (a test's body holds no such line)
                body = unchunked(body)
            else:
                while len(body) < length:
                    more = conn.recv(1 << 20)
                    if not more:
                        return number
                    body += more
                body, pending = body[:length], body[length:]
            if not head.startswith(b"POST"):
                conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return number
            with self.changed:
                if not number:
                    self.connections += 1
                    number = self.connections
                posted = Posted(number, head, body, first)
                self.posts.append(posted)
                answer = self.answers.pop(0)
                self.changed.notify_all()
            if not answer(conn, posted):
                return number


def client_config(base_url: str, **overrides: Any) -> Any:
    """The run's settings for a client of ``base_url`` that never retries (what the transport does is seen)."""
    from kimicode.config import Config

    settings: dict[str, Any] = {"base_url": base_url, "api_key": "k", "model": "kimi-k2.5", "max_retries": 0, "request_timeout": 10}
    return Config(**{**settings, **overrides})


def asked(server: Any, times: int = 1) -> list[Any]:
    """``times`` requests one after the other from one new client of ``server`` (closed after): each one's
    reply, or the LLMError it ended with."""
    from kimicode.llm.client import ChatClient
    from kimicode.llm.profiles import profile_for

    async def run() -> list[Any]:
        config = client_config(server.base_url)
        client = ChatClient(config, profile_for(config.model))
        try:
            return [await ask(client) for _ in range(times)]
        finally:
            await client.aclose()

    return asyncio.run(run())


async def ask(client: Any) -> Any:
    """One request of ``client``: its reply, or the LLMError it ended with."""
    from kimicode.llm.errors import LLMError

    try:
        return await client.complete([{"role": "user", "content": "hi"}], [], thinking=False)
    except LLMError as err:
        return err
