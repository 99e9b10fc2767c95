"""The model client's own HTTP/1.1 transport under the SDK's httpx client: asyncio sockets and h11.

Each model request went through httpx's default transport (httpcore's pool on anyio, h11 underneath): a third
of a step's time in the request layer, and the request's head and body went out as two writes. This
transport is httpx's documented extension point (``handle_async_request(request) -> Response``): the SDK still
builds the request, sets its headers and maps its status errors, httpx still decodes the body and gives the
``Response`` the stream is read from; h11 does all the HTTP/1.1 parsing; only the connections are kept here.

Invariants:
- Connections are kept per origin (scheme, host, port), at most ``MAX_IDLE`` idle each, for ``KEEPALIVE_S``
  seconds (what the SDK's default client kept). Requests at once each get a connection of their own, with
  no cap here: the endpoint's limiter (llm/limiter.py) bounds the requests in flight, so no PoolTimeout.
- A kept connection the server ended, broke or wrote on meanwhile is not used (``Link.idle_and_open``); a
  request whose kept connection turns out dead before any byte of an answer came is sent once more on a new
  connection, never after a byte of the answer came (and never one whose body could not be kept to resend).
- A request of up to ``FIRST_WRITE`` bytes (head and body; a streamed body's first part) goes out as one
  write, a larger one in pieces of that size; the answer's body goes to httpx as it arrives.
- Failures are httpx's own exception classes, of the httpx the SDK uses (ConnectError, ConnectTimeout,
  ReadTimeout, WriteTimeout, ReadError, WriteError, RemoteProtocolError), so the SDK and llm/transport.py
  read them as they read the default transport's. The limits are the request's ``timeout`` extension.
- A hostile server's endless header block or chunk line is cut by h11 at ``MAX_EVENT_BYTES``.
- It is not used where httpx would go through a proxy (its environment variables, as httpx reads them), nor
  when ``KIMICODE_HTTP_TRANSPORT=httpx`` says to keep httpx's own: then nothing changes.
"""

from __future__ import annotations

import asyncio
import functools
import os
import ssl
import sys
from collections import deque
from collections.abc import AsyncIterator
from types import ModuleType
from typing import Any

import h11

from kimicode.llm.wire_link import Link, open_link

ENV = "KIMICODE_HTTP_TRANSPORT"  # "httpx": the SDK's default transport instead of this one
MAX_IDLE = 100  # idle connections kept per origin (the SDK's default client keeps as many)
KEEPALIVE_S = 5.0  # an idle connection older than this is closed rather than used (as httpx's default)
FIRST_WRITE = 256 * 1024  # a request up to this size is one write (and a streamed body's part kept to resend)
MAX_EVENT_BYTES = 100 * 1024  # the longest header block or chunk line taken from a server (as httpcore)

Origin = tuple[str, str, int]
DISCONNECTED = "Server disconnected without sending a response."  # (httpcore's words for it)


class _Dead(Exception):
    """The connection ended before any byte of the answer: a kept one's request may be sent again;
    ``error`` is what is raised when it is not."""

    def __init__(self, error: BaseException) -> None:
        super().__init__()
        self.error = error


class Conn:
    """One connection: its socket and its h11 state."""

    __slots__ = ("h11", "idle_since", "link", "origin")

    def __init__(self, link: Link, origin: Origin) -> None:
        self.link = link
        self.origin = origin
        self.h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_EVENT_BYTES)
        self.idle_since = 0.0

    def usable(self, loop: asyncio.AbstractEventLoop) -> bool:
        return self.link.loop is loop and self.link.idle_and_open() and loop.time() - self.idle_since < KEEPALIVE_S


class Pool:
    """The connections of one transport: the idle ones per origin, and every one still open."""

    def __init__(self, ssl_context: ssl.SSLContext) -> None:
        self._ssl_context = ssl_context
        self._idle: dict[Origin, deque[Conn]] = {}
        self._open: set[Conn] = set()

    def take(self, origin: Origin) -> Conn | None:
        idle = self._idle.get(origin)
        loop = asyncio.get_running_loop()
        while idle:
            conn = idle.pop()  # the newest: the least likely to have been ended by the server
            if conn.usable(loop):
                return conn
            self.drop(conn)
        return None

    async def connect(self, origin: Origin, timeout: float | None) -> Conn:
        scheme, host, port = origin
        link = await open_link(host, port, self._ssl_context if scheme == "https" else None, timeout)
        conn = Conn(link, origin)
        self._open.add(conn)
        return conn

    def give_back(self, conn: Conn) -> None:
        conn.h11.start_next_cycle()
        conn.idle_since = conn.link.loop.time()
        idle = self._idle.setdefault(conn.origin, deque())
        idle.append(conn)
        if len(idle) > MAX_IDLE:
            self.drop(idle.popleft())

    def drop(self, conn: Conn) -> None:
        self._open.discard(conn)
        conn.link.close()

    def close(self) -> None:
        for conn in list(self._open):
            self.drop(conn)
        self._idle.clear()


def sdk_httpx(openai: ModuleType) -> ModuleType:
    """The httpx module the SDK's client is made of (``httpx2`` for openai 3, ``httpx`` before)."""
    for cls in openai.DefaultAsyncHttpxClient.__mro__:
        top = cls.__module__.partition(".")[0]
        if top.startswith("httpx"):
            return sys.modules[top]
    raise ImportError("the openai SDK's HTTP client is not httpx's")


def proxied(httpx: ModuleType, url: str) -> bool:
    """Whether httpx's client would send a request for ``url`` through a proxy named in the environment
    (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY, less NO_PROXY), read by httpx's own functions, first match wins."""
    utils = httpx._utils
    target = httpx.URL(url)
    patterns = sorted((utils.URLPattern(key), proxy) for key, proxy in utils.get_environment_proxies().items())
    return next((proxy is not None for pattern, proxy in patterns if pattern.matches(target)), False)


def wire_transport(openai: ModuleType, base_url: str, ssl_context: ssl.SSLContext) -> Any:
    """This transport for the SDK's client of ``base_url``, or None where httpx's own is to be used."""
    if os.environ.get(ENV, "").strip().lower() == "httpx":
        return None
    try:
        httpx = sdk_httpx(openai)
        if proxied(httpx, base_url):
            return None
    except (ImportError, AttributeError, TypeError, ValueError):
        return None  # an httpx this was not made for: its own transport, as before
    ssl_context.set_alpn_protocols(["http/1.1"])  # (what httpx's transport sets on it too)
    return _classes(httpx)[0](httpx, ssl_context)


@functools.cache
def _classes(httpx: ModuleType) -> tuple[type, type]:
    """The transport and body stream classes, subclasses of the given httpx's bases (httpx checks them)."""

    class Transport(httpx.AsyncBaseTransport):  # type: ignore[name-defined]
        def __init__(self, httpx: ModuleType, ssl_context: ssl.SSLContext) -> None:
            self._httpx = httpx
            self._pool = Pool(ssl_context)

        async def handle_async_request(self, request: Any) -> Any:
            return await _exchange(self._httpx, self._pool, request, Body)

        async def aclose(self) -> None:
            self._pool.close()

    class Body(httpx.AsyncByteStream):  # type: ignore[name-defined]
        def __init__(self, pool: Pool, conn: Conn, request: Any, read_timeout: float | None) -> None:
            self._pool, self._conn, self._request, self._timeout = pool, conn, request, read_timeout
            self._over = False

        async def __aiter__(self) -> AsyncIterator[bytes]:
            # The body's pieces that had arrived together go up as one (a streamed answer's events, each a
            # chunk of the chunked encoding, usually arrive several to a read): every piece costs the layers
            # above (httpx's decoders, the SSE reader) a pass of their own. Nothing waits to be joined: what
            # is yielded is what h11 had parsed when it next needed data, ended, or failed.
            conn, link = self._conn, self._conn.link
            pieces: list[bytes] = []
            try:
                with _mapped(httpx, self._request, "read"):
                    while not self._over:
                        try:
                            event = conn.h11.next_event()
                        except h11.ProtocolError:
                            if pieces:
                                yield b"".join(pieces)  # (what came whole before the break, as it came)
                            raise
                        if type(event) is h11.Data:
                            pieces.append(event.data)
                            continue
                        if pieces:
                            yield pieces[0] if len(pieces) == 1 and type(pieces[0]) is bytes else b"".join(pieces)
                            pieces = []
                        if event is h11.NEED_DATA:
                            conn.h11.receive_data(await link.read(self._timeout))
                        elif type(event) is h11.EndOfMessage or type(event) is h11.ConnectionClosed:
                            self._end()
                        else:  # (h11.PAUSED: nothing more will come that is HTTP)
                            raise h11.RemoteProtocolError("the server's answer did not end as HTTP/1.1")
            except BaseException:
                await self.aclose()  # (a broken or abandoned body: its connection is not used again)
                raise

        def _end(self) -> None:
            self._over = True
            conn = self._conn
            if conn.h11.our_state is h11.DONE and conn.h11.their_state is h11.DONE:
                self._pool.give_back(conn)  # the whole answer was read: the connection carries the next
            else:
                self._pool.drop(conn)  # (the server closes it, or said so)

        async def aclose(self) -> None:
            if not self._over:  # closed before its end: what is left of the answer cannot be told apart
                self._over = True
                self._pool.drop(self._conn)

    return Transport, Body


class _mapped:
    """The standard library's and h11's failures in a phase of the request as httpx's exceptions."""

    __slots__ = ("httpx", "phase", "request")

    def __init__(self, httpx: ModuleType, request: Any, phase: str) -> None:
        self.httpx, self.request, self.phase = httpx, request, phase

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        if exc is None or not isinstance(exc, (OSError, h11.ProtocolError)):
            return  # (TimeoutError is an OSError)
        raise _as_httpx(self.httpx, self.phase, exc, self.request) from exc


def _as_httpx(httpx: ModuleType, phase: str, exc: BaseException, request: Any) -> BaseException:
    if isinstance(exc, h11.RemoteProtocolError):
        return httpx.RemoteProtocolError(str(exc) or "the server broke HTTP/1.1", request=request)
    if isinstance(exc, h11.LocalProtocolError):
        return httpx.LocalProtocolError(str(exc), request=request)
    timeout = isinstance(exc, TimeoutError)
    kind = {
        ("connect", True): "ConnectTimeout",
        ("connect", False): "ConnectError",
        ("write", True): "WriteTimeout",
        ("write", False): "WriteError",
        ("read", True): "ReadTimeout",
        ("read", False): "ReadError",
    }[(phase, timeout)]
    return getattr(httpx, kind)(str(exc) or type(exc).__name__, request=request)


async def _body_start(httpx: ModuleType, request: Any) -> tuple[list[bytes], AsyncIterator[bytes] | None]:
    """The request body's first chunks, and what is left of it to stream, if anything: a body in memory (the
    SDK's bytes) is all of it, a streamed one its first ``FIRST_WRITE`` bytes. A body wholly in the first part
    can be sent again."""
    try:
        return [request.content], None
    except httpx.RequestNotRead:
        pass  # (streamed)
    chunks: list[bytes] = []
    size = 0
    stream = request.stream.__aiter__()
    async for chunk in stream:
        chunks.append(chunk)
        size += len(chunk)
        if size >= FIRST_WRITE:
            return chunks, stream
    return chunks, None


async def _exchange(httpx: ModuleType, pool: Pool, request: Any, body_class: type) -> Any:
    timeouts = request.extensions.get("timeout", {})
    url = request.url
    scheme = url.scheme
    origin: Origin = (scheme, url.host, url.port or (443 if scheme == "https" else 80))
    if scheme not in ("http", "https"):
        raise httpx.UnsupportedProtocol(f"no transport for {scheme!r} URLs", request=request)
    chunks, rest = await _body_start(httpx, request)
    for attempt in (1, 2):
        conn = pool.take(origin) if attempt == 1 else None  # (once more: on a new connection)
        kept = conn is not None
        if conn is None:
            with _mapped(httpx, request, "connect"):
                conn = await pool.connect(origin, timeouts.get("connect"))
        try:
            head = await _send(httpx, conn, request, chunks, rest, timeouts)
        except _Dead as dead:
            pool.drop(conn)
            if kept and attempt == 1 and rest is None:
                continue  # the server had ended the kept connection: a new one carries the request
            raise dead.error from dead.error.__cause__
        except BaseException:
            pool.drop(conn)
            raise
        break
    return httpx.Response(
        head.status_code,
        headers=head.headers.raw_items(),  # (the names as the server wrote them, as httpx keeps them)
        stream=body_class(pool, conn, request, timeouts.get("read")),
        extensions={"http_version": b"HTTP/" + head.http_version, "reason_phrase": head.reason},
    )


async def _send(
    httpx: ModuleType,
    conn: Conn,
    request: Any,
    chunks: list[bytes],
    rest: AsyncIterator[bytes] | None,
    timeouts: dict[str, float | None],
) -> h11.Response:
    """The request sent on ``conn`` and the head of its answer read; ``_Dead`` when the connection failed
    before any byte of the answer."""
    machine, link = conn.h11, conn.link
    url = request.url
    out: list[bytes] = [machine.send(h11.Request(method=request.method, target=url.raw_path, headers=request.headers.raw)) or b""]
    for chunk in chunks:
        if chunk:  # (passed through: a large body is not copied to be framed)
            out += machine.send_with_data_passthrough(h11.Data(data=chunk)) or []
    if rest is None:
        out.append(machine.send(h11.EndOfMessage()) or b"")
    write_timeout = timeouts.get("write")
    try:
        with _mapped(httpx, request, "write"):
            if sum(map(len, out)) <= FIRST_WRITE:
                await link.write(b"".join(out), write_timeout)
            else:  # in pieces, each waiting for the socket to take the last: the buffer stays small
                for part in out:
                    view = memoryview(part)
                    for start in range(0, len(view), FIRST_WRITE):
                        await link.write(view[start : start + FIRST_WRITE], write_timeout)
            if rest is not None:
                async for chunk in rest:
                    if chunk:
                        await link.write(machine.send(h11.Data(data=chunk)) or b"", write_timeout)
                await link.write(machine.send(h11.EndOfMessage()) or b"", write_timeout)
    except httpx.WriteError as exc:
        raise _Dead(exc) from exc
    read_timeout = timeouts.get("read")
    answered = False  # a byte of the answer came: the request is never sent again from here
    with _mapped(httpx, request, "read"):
        while True:
            event = machine.next_event()
            if event is h11.NEED_DATA:
                try:
                    data = await link.read(read_timeout)
                except TimeoutError:
                    raise
                except OSError as exc:
                    if answered:
                        raise
                    raise _Dead(_as_httpx(httpx, "read", exc, request)) from exc
                if not data and not answered:
                    raise _Dead(httpx.RemoteProtocolError(DISCONNECTED, request=request))
                answered = True
                machine.receive_data(data)
            elif type(event) is h11.Response:
                return event
            elif type(event) is not h11.InformationalResponse:  # (a 1xx is passed over)
                # (ConnectionClosed, or PAUSED after a 101: neither is an answer to this request)
                raise h11.RemoteProtocolError(DISCONNECTED if type(event) is h11.ConnectionClosed else "not HTTP/1.1")
