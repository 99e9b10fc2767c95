"""The protocol's channel: stdin and stdout belong to JSON-RPC, one message per line, and nothing else.

A library that prints, a warning, a child process that inherits fd 1: any of them would corrupt the
stream. So the protocol takes private copies of fds 0 and 1 at start-up and the process's own fd 1 (and
``sys.stdout``) is pointed at stderr, fd 0 at /dev/null. Lines that are not JSON-RPC get a JSON-RPC
error back instead of being dropped, and the connection stays up.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from typing import Any

from kimicode import jsontext

log = logging.getLogger("kimicode.acp")

# The SDK's own default: enough for prompts that carry images.
LINE_LIMIT_BYTES = 50 * 1024 * 1024
PARSE_ERROR, INVALID_REQUEST = -32700, -32600


def claim_stdio() -> tuple[int, int]:
    """Private copies of stdin and stdout for the protocol; fd 0 becomes /dev/null, fd 1 stderr."""
    protocol_in = os.dup(0)
    protocol_out = os.dup(1)  # os.dup's copies are not inherited by child processes
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return protocol_in, protocol_out


async def open_streams(in_fd: int, out_fd: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=LINE_LIMIT_BYTES)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(in_fd, "rb", buffering=0))
    transport, protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, os.fdopen(out_fd, "wb", buffering=0)
    )
    writer = asyncio.StreamWriter(transport, protocol, None, loop)
    return reader, writer


def _error(request_id: Any, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}


def problem(message: Any) -> tuple[Any, str] | None:
    """(id to answer, why) when ``message`` is no JSON-RPC request, notification or response; else None."""
    if not isinstance(message, dict):
        return None, "a JSON-RPC message is one JSON object per line"
    request_id = message.get("id")
    if not isinstance(request_id, (str, int, type(None))) or isinstance(request_id, bool):
        return None, "the id must be a string, a number or null"
    if "method" in message:
        if not isinstance(message["method"], str):
            return request_id, "the method must be a string"
        return None
    if "id" not in message:
        return None, "a message needs a method, or an id and a result or error"
    return None


class JsonRpcLines:
    """The SDK's message transport over newline-delimited JSON, answering what is not JSON-RPC."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        from acp.task import MessageSender, TaskSupervisor

        self._reader = reader
        self._tasks = TaskSupervisor(source="kimicode.acp.stdio")
        self._sender = MessageSender(writer, self._tasks)

    async def send(self, message: dict[str, Any]) -> None:
        await self._sender.send(message)

    async def receive(self) -> dict[str, Any] | None:
        while True:
            line = await self._read_line()
            if not line:
                return None
            line = line.strip()
            if not line:
                continue
            try:
                message = jsontext.loads(line)
            except (ValueError, UnicodeDecodeError) as exc:
                log.warning("not JSON: %s", exc)
                await self.send(_error(None, PARSE_ERROR, f"Parse error: {exc}"))
                continue
            wrong = problem(message)
            if wrong is not None:
                request_id, why = wrong
                log.warning("invalid request: %s", why)
                await self.send(_error(request_id, INVALID_REQUEST, f"Invalid request: {why}"))
                continue
            return message

    async def close(self) -> None:
        await self._sender.close()
        await self._tasks.shutdown()

    async def _read_line(self) -> bytes:
        pieces: list[bytes] = []
        while True:
            try:
                pieces.append(await self._reader.readuntil(b"\n"))
                return b"".join(pieces)
            except asyncio.LimitOverrunError as exc:  # a line longer than the buffer: keep reading it
                pieces.append(await self._reader.readexactly(exc.consumed))
            except asyncio.IncompleteReadError as exc:  # end of input
                pieces.append(exc.partial)
                return b"".join(pieces)
