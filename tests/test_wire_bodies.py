"""Every way a server frames, ends and breaks an answer, read through kimicode's transport (llm/wire.py): the
same reply, or the same one-line error, as through httpx's own transport (KIMICODE_HTTP_TRANSPORT=httpx)."""

from __future__ import annotations

import asyncio
import errno
import gzip
import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from kimicode.llm import wire
from kimicode.llm.client import ChatClient
from kimicode.llm.profiles import profile_for
from kimicode.llm.reply import Reply
from tests.wireserver import (
    HEAD,
    Answer,
    Posted,
    WireServer,
    answer_chunked,
    answer_length,
    answer_until_close,
    ask,
    chunked,
    client_config,
    reply_events,
)

TRANSPORTS = ["wire", "httpx"]


@pytest.fixture
def server() -> Iterator[WireServer]:
    made = WireServer()
    yield made
    made.close()


def results(server: WireServer, *answers: Answer, **settings: Any) -> list[Any]:
    """Each answer for one request of one client, in turn: the replies' contents, or the errors' lines."""
    server.answers[:] = answers
    config = client_config(server.base_url, **settings)

    async def run() -> list[Any]:
        client = ChatClient(config, profile_for(config.model))
        try:
            return [await ask(client) for _ in answers]
        finally:
            await client.aclose()

    return [r.content if isinstance(r, Reply) else str(r) for r in asyncio.run(run())]


def both(server: WireServer, monkeypatch: pytest.MonkeyPatch, *answers: Answer, **settings: Any) -> list[Any]:
    """``results`` through kimicode's transport, checked to be what httpx's own gives."""
    ours = results(server, *answers, **settings)
    monkeypatch.setenv(wire.ENV, "httpx")
    try:
        assert results(server, *answers, **settings) == ours
    finally:
        monkeypatch.delenv(wire.ENV)
    return ours


def test_length_chunked_and_close_delimited_bodies_give_the_reply(server: WireServer) -> None:
    answers = [answer_length("one"), answer_chunked("two"), answer_until_close("three"), answer_chunked("four")]
    assert results(server, *answers) == ["one", "two", "three", "four"]
    # (the close-delimited answer ended its connection: the fourth request came on a new one)
    assert [p.connection for p in server.posts] == [1, 1, 1, 2]


def test_connection_close_from_the_server_puts_the_next_request_on_a_new_connection(server: WireServer) -> None:
    answers = [answer_chunked("one", b"Connection: close\r\n"), answer_chunked("two"), answer_chunked("three")]
    assert results(server, *answers) == ["one", "two", "three"]
    assert [p.connection for p in server.posts] == [1, 2, 2]


def informational_first(conn: socket.socket, posted: Posted) -> bool:
    conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n")
    return answer_chunked("after hints")(conn, posted)


def gzipped(conn: socket.socket, posted: Posted) -> bool:
    body = gzip.compress(reply_events("unzipped"))
    conn.sendall(HEAD + b"Content-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(body))
    return True


def test_informational_answers_are_passed_over_and_a_compressed_body_is_decoded(server: WireServer) -> None:
    assert results(server, informational_first, gzipped) == ["after hints", "unzipped"]


def cut_mid_body(conn: socket.socket, posted: Posted) -> bool:
    body = reply_events("never whole")
    conn.sendall(HEAD + b"Content-Length: %d\r\n\r\n" % len(body) + body[:40])
    return False


def cut_mid_chunk(conn: socket.socket, posted: Posted) -> bool:
    conn.sendall(HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + chunked(reply_events())[:60])
    return False


def no_answer(conn: socket.socket, posted: Posted) -> bool:
    return False


def not_http(conn: socket.socket, posted: Posted) -> bool:
    conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
    return False


def switches_protocols(conn: socket.socket, posted: Posted) -> bool:
    conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x00")
    return False


@pytest.mark.parametrize("answer", [cut_mid_body, cut_mid_chunk, no_answer, not_http, switches_protocols])
def test_a_broken_answer_is_the_same_one_line_error_as_through_httpx(
    server: WireServer, monkeypatch: pytest.MonkeyPatch, answer: Answer
) -> None:
    (line,) = both(server, monkeypatch, answer)
    assert line.startswith(f"connection to {server.base_url} failed or broke mid-reply") and "\n" not in line


def whole_then_broken(conn: socket.socket, posted: Posted) -> bool:
    """The whole reply, [DONE] included, in one write with many chunks, then a chunk line that is not HTTP."""
    conn.sendall(HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + chunked(reply_events("whole"), 12)[:-5] + b"zz\r\n")
    return False


def test_a_reply_whole_before_the_answer_breaks_stands_as_through_httpx(
    server: WireServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """(Pieces that arrive together go up as one: a break right after them does not lose the ones before it.)"""
    assert both(server, monkeypatch, whole_then_broken) == ["whole"]


def stalls_after(data: bytes) -> Answer:
    def send(conn: socket.socket, posted: Posted) -> bool:
        conn.sendall(data)
        conn.recv(1)  # (until the client hangs up)
        return False

    return send


@pytest.mark.parametrize("sent", [b"", HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + chunked(reply_events())[:60]])
def test_a_server_that_stops_sending_is_the_stall_error(
    server: WireServer, monkeypatch: pytest.MonkeyPatch, sent: bytes
) -> None:
    (line,) = both(server, monkeypatch, stalls_after(sent), stream_stall_timeout=0.2)
    assert line.startswith("no data from the endpoint for 0.2 s")


def test_a_refused_connection_is_the_same_one_line_error_as_through_httpx(monkeypatch: pytest.MonkeyPatch) -> None:
    spare = socket.create_server(("127.0.0.1", 0))
    port = spare.getsockname()[1]
    spare.close()
    config = client_config(f"http://127.0.0.1:{port}/v1")

    async def run() -> str:
        client = ChatClient(config, profile_for(config.model))
        try:
            return str(await ask(client))
        finally:
            await client.aclose()

    ours = asyncio.run(run())
    monkeypatch.setenv(wire.ENV, "httpx")
    assert asyncio.run(run()) == ours and "connection refused" in ours


def endless(start: bytes, more: bytes, server: WireServer) -> Answer:
    """Sends ``start``, then ``more`` again and again until the client hangs up (counted in sent_bytes)."""

    def send(conn: socket.socket, posted: Posted) -> bool:
        conn.sendall(start)
        try:
            while True:
                conn.sendall(more)
                server.sent_bytes += len(more)
        except OSError:
            return False

    return send


@pytest.mark.parametrize(
    "start, more",
    [
        (b"HTTP/1.1 200 OK\r\n", b"X-Padding: " + b"a" * 1000 + b"\r\n"),  # a header block without end
        (HEAD + b"Transfer-Encoding: chunked\r\n\r\n", b"f" * 1000),  # a chunk-size line without end
    ],
    ids=["headers", "chunk-line"],
)
def test_an_endless_header_block_or_chunk_line_is_cut_short(server: WireServer, start: bytes, more: bytes) -> None:
    (line,) = results(server, endless(start, more, server))
    assert line.startswith(f"connection to {server.base_url} failed or broke mid-reply")
    # the client hung up after h11's bound, not after filling memory (a socket's buffers are a few MB at most)
    assert server.sent_bytes < 64 * wire.MAX_EVENT_BYTES


def test_a_streamed_request_body_arrives_whole(server: WireServer) -> None:
    import openai

    from kimicode.llm.tls import shared_tls_context

    httpx = wire.sdk_httpx(openai)
    server.answers[:] = [answer_length("streamed")]
    parts = [bytes([65 + n]) * (wire.FIRST_WRITE // 3) for n in range(5)]  # past the first write

    async def body() -> Any:
        for part in parts:
            yield part

    async def run() -> Any:
        transport = wire.wire_transport(openai, server.base_url, shared_tls_context())
        async with httpx.AsyncClient(transport=transport) as client:
            response = await client.post(server.base_url + "/chat/completions", content=body())
            return response.status_code, await response.aread()

    status, answer = asyncio.run(run())
    assert status == 200 and b"streamed" in answer
    (posted,) = server.posts
    assert b"transfer-encoding: chunked" in posted.head.lower() and posted.body == b"".join(parts)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_server_that_never_reads_the_request_is_a_write_timeout(transport: str) -> None:
    import openai

    from kimicode.llm.tls import shared_tls_context

    httpx = wire.sdk_httpx(openai)
    deaf = socket.create_server(("127.0.0.1", 0))  # connections wait in its backlog: nothing is ever read
    deaf.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    url = f"http://127.0.0.1:{deaf.getsockname()[1]}/v1/chat/completions"

    async def run() -> BaseException | None:
        ours = wire.wire_transport(openai, url, shared_tls_context()) if transport == "wire" else None
        async with httpx.AsyncClient(transport=ours, timeout=0.3) as client:
            try:
                await client.post(url, content=b"x" * (64 << 20))  # more than any socket buffers hold
            except httpx.TransportError as exc:
                return exc
        return None

    try:
        error = asyncio.run(run())
    finally:
        deaf.close()
    assert isinstance(error, httpx.WriteTimeout)


def test_a_request_larger_than_one_write_arrives_whole(server: WireServer) -> None:
    server.answers[:] = [answer_length("big")]
    config = client_config(server.base_url)
    history = "é" * (3 * wire.FIRST_WRITE)

    async def run() -> Any:
        client = ChatClient(config, profile_for(config.model))
        try:
            return await client.complete([{"role": "user", "content": history}], [], thinking=False)
        finally:
            await client.aclose()

    reply = asyncio.run(run())
    assert isinstance(reply, Reply) and reply.content == "big"
    (posted,) = server.posts
    assert json.loads(posted.body)["messages"][-1]["content"] == history


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_server_whose_queue_is_full_is_a_connect_timeout(transport: str) -> None:
    import openai

    from kimicode.llm.tls import shared_tls_context

    httpx = wire.sdk_httpx(openai)
    full = socket.socket()
    full.bind(("127.0.0.1", 0))
    full.listen(0)
    port = full.getsockname()[1]
    waiting = [socket.socket() for _ in range(3)]  # never accepted: the queue fills, later SYNs are dropped
    for sock in waiting:
        sock.setblocking(False)
        assert sock.connect_ex(("127.0.0.1", port)) in (0, errno.EINPROGRESS)
    url = f"http://127.0.0.1:{port}/v1/chat/completions"

    async def run() -> BaseException | None:
        ours = wire.wire_transport(openai, url, shared_tls_context()) if transport == "wire" else None
        async with httpx.AsyncClient(transport=ours, timeout=0.3) as client:
            try:
                await client.post(url, content=b"{}")
            except httpx.TransportError as exc:
                return exc
        return None

    try:
        error = asyncio.run(run())
    finally:
        for sock in [*waiting, full]:
            sock.close()
    assert isinstance(error, httpx.ConnectTimeout)
