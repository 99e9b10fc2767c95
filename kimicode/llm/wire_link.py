"""One socket of the model client's HTTP transport (llm/wire.py): an asyncio protocol that keeps what arrived
until it is read, with the read, write and connect limits as loop timers.

It knows bytes only; HTTP is h11's (in wire.py). Its failures are the standard library's: ``TimeoutError`` for
a limit that passed, ``OSError`` for a connection that failed or was lost; wire.py says what they mean.

Invariants:
- A read returns everything that arrived since the last one, or waits for more; ``b""`` only once the peer
  ended the stream (an end by an error raises that error instead).
- What arrived and was not read yet is bounded: past ``HIGH_WATER`` bytes the socket is not read until the
  reader catches up (a hostile server cannot fill memory faster than the reader takes it).
- ``idle_and_open()`` is how a kept connection is judged before it carries a request: a connection the
  peer ended, broke, or sent anything on while nothing was asked is not used again.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections import deque

HIGH_WATER = 1 << 20  # bytes received and not read yet before the socket is paused


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


def _wake(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)


class Link(asyncio.Protocol):
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self._received: deque[bytes] = deque()
        self._size = 0
        self._paused = False  # reading from the socket paused (the reader is behind)
        self._ended = False  # the peer ended the stream, or the connection was lost
        self._error: OSError | None = None  # why the connection was lost, when it was an error
        self._reader: asyncio.Future[None] | None = None
        self._write_paused = False  # the transport's buffer is full
        self._drainer: asyncio.Future[None] | None = None

    # -- asyncio's side ---------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self._received.append(data)
        self._size += len(data)
        if self._size > HIGH_WATER and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        _wake(self._reader)

    def eof_received(self) -> bool | None:
        self._ended = True
        _wake(self._reader)
        return None  # (the transport closes itself: nothing is sent after a response)

    def connection_lost(self, exc: Exception | None) -> None:
        self._ended = True
        if exc is not None and self._error is None:
            self._error = exc if isinstance(exc, OSError) else ConnectionResetError(str(exc))
        _wake(self._reader)
        _wake(self._drainer)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        _wake(self._drainer)

    # -- the transport's side ---------------------------------------------------------------------------

    def idle_and_open(self) -> bool:
        transport = self.transport
        return not self._ended and not self._received and transport is not None and not transport.is_closing()

    async def read(self, timeout: float | None) -> bytes:
        """What arrived since the last read, waiting up to ``timeout`` s for something to arrive."""
        while not self._received:
            if self._ended:
                if self._error is not None:
                    raise self._error
                return b""
            waiter = self._reader = self.loop.create_future()
            timer = self.loop.call_later(timeout, _expire, waiter) if timeout is not None else None
            try:
                await waiter  # (woken by data, an end, or an error)
            finally:
                self._reader = None
                if timer is not None:
                    timer.cancel()
        data = self._received.popleft() if len(self._received) == 1 else b"".join(self._received)
        self._received.clear()
        self._size = 0
        if self._paused and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        return data

    async def write(self, data: bytes | memoryview, timeout: float | None) -> None:
        """Hands ``data`` to the socket as one write; waits (up to ``timeout`` s) only when its buffer is full."""
        transport = self.transport
        if transport is None or transport.is_closing():
            raise self._error or ConnectionResetError("the connection was closed")
        transport.write(data)
        while self._write_paused and not self._ended:
            waiter = self._drainer = self.loop.create_future()
            timer = self.loop.call_later(timeout, _expire, waiter) if timeout is not None else None
            try:
                await waiter
            finally:
                self._drainer = None
                if timer is not None:
                    timer.cancel()
        if self._ended and self._error is not None:
            raise self._error

    def close(self) -> None:
        if self.transport is not None and not self.loop.is_closed():
            self.transport.close()
        # (a connection kept from an event loop that has ended has no loop left to close it on: the socket
        # closes when the transport is collected)


async def open_link(host: str, port: int, tls: ssl.SSLContext | None, timeout: float | None) -> Link:
    """A connection to ``host:port`` (TLS with ``tls``, the host as SNI and the name checked), within
    ``timeout`` s for the whole of it: name lookup, connect and handshake. A name's addresses are tried in
    turn; when none takes the connection, the first one's error is raised (a refusal stays a refusal)."""
    loop = asyncio.get_running_loop()
    sni = host if tls is not None else None
    async with asyncio.timeout(timeout):
        if _numeric(host):
            addresses = [host]
        else:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        errors: list[OSError] = []
        for address in addresses:
            link = Link(loop)
            try:
                await loop.create_connection(lambda made=link: made, address, port, ssl=tls, server_hostname=sni)
            except ssl.SSLError:
                raise  # (the server was reached: another address of it would not change its certificate)
            except OSError as exc:
                errors.append(exc)
                continue
            return link
        raise errors[0] if errors else OSError(f"{host} has no address")


def _numeric(host: str) -> bool:
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
        except OSError:
            continue
        return True
    return False
