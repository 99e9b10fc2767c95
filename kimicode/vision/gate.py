"""The browser's only way onto the network: a proxy on this machine's loopback that judges every connection.

Chromium is started with this proxy for every host, loopback included, so each request it makes (the
page, its frames, images, scripts, fetches, WebSockets, and every hop of a redirect, which arrives as a
request of its own) names its host here. The host is read by the same parser as the policy's, resolved
once, judged by the same function as ``fetch`` (kimicode/security/urls.py), and connected to at the very
address judged: Chromium itself resolves no names, so a name cannot be re-pointed in between.

Plain http requests are forwarded one per connection: the request and its body (by Content-Length) go
to the server, its answer comes back marked ``Connection: close``, and the connection ends, so a kept-alive
proxy connection cannot carry a second request to a server judged for the first. https and WebSockets go
through CONNECT tunnels, judged by host and port.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass

from kimicode.security import urls

MAX_HEAD_BYTES = 64 * 1024
CONNECT_TIMEOUT_S = 10.0
# Hop-by-hop and proxy headers that must not reach the server.
_DROPPED = {b"proxy-connection", b"proxy-authorization", b"connection", b"keep-alive"}


@dataclass(frozen=True)
class Refusal:
    """One connection the gate refused. Whose it was is not known here: every context of the browser,
    and the browser's own background services, share the gate."""

    shown: str  # the URL of a plain request, host:port of a tunnel, or the text that did not parse
    why: str
    tunnel: bool
    target: urls.Target | None  # None when the request named no readable host

    def __str__(self) -> str:
        return f"{self.shown}: {self.why}"


class Gate:
    """The proxy; ``problem(target, addresses)`` says why a connection is refused ("" lets it through)."""

    def __init__(self, problem: Callable[[urls.Target, tuple[str, ...]], str]) -> None:
        self._problem = problem
        self._server: asyncio.AbstractServer | None = None
        self.port = 0
        # Called with each refusal as it happens; a screenshot listens for the time it runs.
        self.listeners: set[Callable[[Refusal], None]] = set()
        self.unreachable: set[tuple[str, int]] = set()  # (host, port) nothing answered at

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._one(reader, writer)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            writer.close()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        if len(head) > MAX_HEAD_BYTES:
            return
        request_line, _, header_block = head.partition(b"\r\n")
        method, _, rest = request_line.partition(b" ")
        where, _, version = rest.partition(b" ")
        text = where.decode("ascii", "replace")
        tunnel = method == b"CONNECT"
        try:
            target = urls.parse_authority(text) if tunnel else urls.parse(text, ("http", "ws"))
        except urls.UrlError as exc:
            await self._refuse(writer, Refusal(text, str(exc), tunnel, None))
            return
        addresses = await urls.resolve(target)
        problem = self._problem(target, addresses)
        if problem:
            await self._refuse(writer, Refusal(text if tunnel else target.url, problem, tunnel, target))
            return
        length = 0 if tunnel else _body_length(header_block)
        if length < 0:
            writer.write(b"HTTP/1.1 411 Length Required\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            await writer.drain()
            return
        upstream = await self._connect(addresses, target.port)
        if upstream is None:
            self.unreachable.add((target.host, target.port))
            writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            await writer.drain()
            return
        up_reader, up_writer = upstream
        try:
            if tunnel:
                writer.write(b"HTTP/1.1 200 Connection Established\r\n\r\n")
                await writer.drain()
                await _pipe_both(reader, writer, up_reader, up_writer)
                return
            up_writer.write(_origin_request(method, target, version, header_block))
            if length:
                up_writer.write(await reader.readexactly(length))
            await up_writer.drain()
            answer = await up_reader.readuntil(b"\r\n\r\n")
            writer.write(_closing(answer))
            size = _answer_length(method, answer)
            if size is None:
                await _pipe(up_reader, writer)  # ends when the server closes
            else:
                await _pipe(up_reader, writer, size)
            await writer.drain()
        finally:
            up_writer.close()

    async def _connect(
        self, addresses: tuple[str, ...], port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        for address in addresses:  # only the addresses judged, in the resolver's order
            try:
                return await asyncio.wait_for(asyncio.open_connection(address, port), CONNECT_TIMEOUT_S)
            except (OSError, TimeoutError):
                continue
        return None

    async def _refuse(self, writer: asyncio.StreamWriter, refusal: Refusal) -> None:
        for listener in list(self.listeners):
            listener(refusal)
        body = f"kimicode refused to open {refusal}\n".encode()
        writer.write(
            b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode() + body
        )
        await writer.drain()


def _body_length(header_block: bytes) -> int:
    """The request body's length; -1 for a chunked body (not forwarded: its end is not known up front)."""
    length = 0
    for line in header_block.split(b"\r\n"):
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"transfer-encoding":
            return -1
        if name == b"content-length":
            length = int(value.strip())
    return length


def _answer_length(method: bytes, head: bytes) -> int | None:
    """The response body's length when the head says it, so a server that keeps the connection open
    cannot hold the page; None: read to the end."""
    status = head.split(b" ", 2)[1] if head.count(b" ") >= 1 else b""
    if method == b"HEAD" or status in (b"204", b"304") or status.startswith(b"1"):
        return 0
    length: int | None = None
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"transfer-encoding":
            return None
        if name == b"content-length":
            length = int(value.strip())
    return length


def _closing(head: bytes) -> bytes:
    """A response head that tells the browser this connection ends with the response."""
    lines = [line for line in head.split(b"\r\n") if line and line.partition(b":")[0].strip().lower() not in _DROPPED]
    return b"\r\n".join([*lines, b"Connection: close", b"Proxy-Connection: close"]) + b"\r\n\r\n"


def _origin_request(method: bytes, target: urls.Target, version: bytes, header_block: bytes) -> bytes:
    """The proxy request rewritten for the server: origin-form path, one request per connection."""
    lines = [f"{method.decode('ascii', 'replace')} {target.rest or '/'} ".encode() + (version or b"HTTP/1.1")]
    for line in header_block.split(b"\r\n"):
        name = line.partition(b":")[0].strip().lower()
        if line and name not in _DROPPED:
            lines.append(line)
    lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n"


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter, size: int | None = None) -> None:
    """Copy to the end of ``source``, or ``size`` bytes of it."""
    left = size
    try:
        while left is None or left > 0:
            chunk = await source.read(65536 if left is None else min(65536, left))
            if not chunk:
                return
            sink.write(chunk)
            await sink.drain()
            if left is not None:
                left -= len(chunk)
    except OSError:
        pass


async def _pipe_both(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
    up_reader: asyncio.StreamReader, up_writer: asyncio.StreamWriter,
) -> None:
    """A tunnel: both ways until either side ends, then both end."""
    tasks = [asyncio.ensure_future(_pipe(reader, up_writer)), asyncio.ensure_future(_pipe(up_reader, writer))]
    _done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
