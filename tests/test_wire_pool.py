"""The model client's connections (llm/wire.py), as the endpoint sees them: one kept connection carries a
run's requests, requests at once each get one, idle ones are kept up to a bound, a kept connection the server
ended is not used (or, found dead before any answer byte, its request goes once more on a new one, and never
after a byte came), the request goes out in one write, and closing the client closes every connection."""

from __future__ import annotations

import asyncio
import gc
import socket
import subprocess
import sys
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from kimicode.llm import wire
from kimicode.llm.client import ChatClient
from kimicode.llm.errors import LLMError
from kimicode.llm.profiles import profile_for
from kimicode.llm.reply import Reply
from tests.clirun import cli_env
from tests.fake_llm import FakeLLM
from tests.fake_llm import Reply as Scripted
from tests.wireserver import Answer, Posted, WireServer, answer_chunked, answer_length, ask, asked, client_config


@pytest.fixture
def server() -> Iterator[WireServer]:
    made = WireServer()
    yield made
    made.close()


def client_of(server: WireServer | FakeLLM) -> ChatClient:
    config = client_config(server.base_url)
    return ChatClient(config, profile_for(config.model))


def test_a_run_of_ten_requests_uses_one_connection_of_kimicodes_transport() -> None:
    with FakeLLM() as fake:
        accepted: list[object] = []
        take = fake._httpd.get_request

        def counted() -> tuple[socket.socket, object]:
            made = take()
            accepted.append(made)
            return made

        fake._httpd.get_request = counted  # type: ignore[method-assign]
        fake.script(*[Scripted(content=f"answer {n}") for n in range(10)])

        async def run() -> list[object]:
            client = client_of(fake)
            try:
                results = [await ask(client) for _ in range(10)]
                assert type(client._client()._client._transport).__module__ == wire.__name__
                return results
            finally:
                await client.aclose()

        results = asyncio.run(run())
    assert [r.content for r in results if isinstance(r, Reply)] == [f"answer {n}" for n in range(10)]
    chat_connections = len(accepted) - len([r for r in fake.all_requests if r.path.endswith("/models")])
    assert chat_connections == 1


def test_the_request_head_and_body_go_out_in_one_write(server: WireServer, monkeypatch: pytest.MonkeyPatch) -> None:
    server.answers[:] = [answer_chunked()]
    writes: list[int] = []
    send = socket.socket.send

    def counted(sock: socket.socket, data: bytes, *flags: int) -> int:
        if sock.family == socket.AF_INET and sock.getpeername()[1] == server.port:
            writes.append(len(data))
        return send(sock, data, *flags)

    monkeypatch.setattr(socket.socket, "send", counted)

    async def run() -> object:
        client = client_of(server)
        try:
            return await ask(client)
        finally:
            await client.aclose()

    assert isinstance(asyncio.run(run()), Reply)
    (posted,) = server.posts
    assert writes == [len(posted.head) + 4 + len(posted.body)] and b'"messages"' in posted.body


def held_until(server: WireServer, count: int) -> Answer:
    """An answer sent once ``count`` POSTs arrived in all (so they are all in flight at once)."""

    def send(conn: socket.socket, posted: Posted) -> bool:
        assert server.wait_for(lambda: len(server.posts) >= count)
        return answer_length()(conn, posted)

    return send


def test_requests_at_once_each_get_a_connection_and_idle_ones_are_kept_up_to_the_bound(
    server: WireServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wire, "MAX_IDLE", 3)
    server.answers[:] = [held_until(server, 5)] * 5 + [held_until(server, 10)] * 5

    async def run() -> list[object]:
        client = client_of(server)
        try:
            first = await asyncio.gather(*(ask(client) for _ in range(5)))
            return first + await asyncio.gather(*(ask(client) for _ in range(5)))
        finally:
            await client.aclose()

    assert all(isinstance(r, Reply) for r in asyncio.run(run()))
    assert {p.connection for p in server.posts[:5]} == {1, 2, 3, 4, 5}
    assert server.connections == 5 + 2  # three kept, two new ones


def half_closes_after(answer: Answer, closed: threading.Event) -> Answer:
    """``answer``, as if the connection were kept; then the server ends its side of the connection, but
    would still read (and record) a request sent on it."""

    def send(conn: socket.socket, posted: Posted) -> bool:
        answer(conn, posted)
        conn.shutdown(socket.SHUT_WR)
        closed.set()
        return True

    return send


def test_a_kept_connection_the_server_ended_is_not_used(server: WireServer) -> None:
    closed = threading.Event()
    server.answers[:] = [half_closes_after(answer_length(), closed), answer_length("second"), answer_length("third")]

    async def run() -> list[object]:
        client = client_of(server)
        try:
            first = await ask(client)
            await asyncio.to_thread(closed.wait, 10)
            return [first, await ask(client)]
        finally:
            await client.aclose()

    first, second = asyncio.run(run())
    assert isinstance(first, Reply) and isinstance(second, Reply) and second.content == "second"
    assert [p.connection for p in server.posts] == [1, 2]


def drops_unanswered(conn: socket.socket, posted: Posted) -> bool:
    return False  # the request was read; the connection is closed without a byte of answer


def test_a_request_whose_kept_connection_dies_before_any_answer_byte_is_sent_once_more(server: WireServer) -> None:
    server.answers[:] = [answer_length(), drops_unanswered, answer_length("again")]

    first, second = asked(server, 2)
    assert isinstance(second, Reply) and second.content == "again"
    assert [p.connection for p in server.posts] == [1, 1, 2]
    assert server.posts[1].body == server.posts[2].body


def half_a_status_line(conn: socket.socket, posted: Posted) -> bool:
    conn.sendall(b"HTTP/1.1 20")
    return False


def test_a_request_is_never_sent_again_once_a_byte_of_its_answer_came(server: WireServer) -> None:
    server.answers[:] = [answer_length(), half_a_status_line]

    first, second = asked(server, 2)
    assert isinstance(first, Reply) and isinstance(second, LLMError)
    assert str(second).startswith(f"connection to {server.base_url} failed or broke mid-reply")
    assert len(server.posts) == 2


def test_closing_the_client_closes_every_connection_without_a_resource_warning(server: WireServer) -> None:
    server.answers[:] = [held_until(server, 3)] * 3

    async def run() -> None:
        client = client_of(server)
        await asyncio.gather(*(ask(client) for _ in range(3)))
        await client.aclose()

    gc.collect()  # (what earlier tests in this process left for the collector is not this client's)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        asyncio.run(run())
        gc.collect()
    assert server.wait_for(lambda: server.closed == 3)
    # A socket's warning names its peer: only those to this server are this client's.
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)
                and ("raddr" not in str(w.message) or f", {server.port})" in str(w.message))]


def test_the_escape_hatch_keeps_httpx_own_transport(server: WireServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(wire.ENV, "httpx")
    server.answers[:] = [answer_length("plain")]

    async def run() -> tuple[object, str]:
        client = client_of(server)
        try:
            return await ask(client), type(client._client()._client._transport).__module__
        finally:
            await client.aclose()

    reply, module = asyncio.run(run())
    assert isinstance(reply, Reply) and reply.content == "plain"
    assert module.startswith("httpx")


def test_a_client_used_again_on_another_event_loop_opens_a_new_connection(server: WireServer) -> None:
    server.answers[:] = [answer_length("first loop"), answer_length("second loop")]
    client = client_of(server)
    first = asyncio.run(ask(client))  # (its connection is kept, on a loop that then ends)

    async def again() -> object:
        try:
            return await ask(client)
        finally:
            await client.aclose()

    second = asyncio.run(again())
    assert isinstance(first, Reply) and isinstance(second, Reply) and second.content == "second loop"
    assert [p.connection for p in server.posts] == [1, 2]


@pytest.mark.parametrize("flag", ["--version", "--help"])
def test_version_and_help_do_not_load_the_transport(flag: str, tmp_path: Path) -> None:
    env = cli_env(tmp_path / "home", PYTHONPROFILEIMPORTTIME="1")
    done = subprocess.run([sys.executable, "-m", "kimicode", flag], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert "kimicode.cli" in imported or "kimicode" in imported  # (the import log is there to look at)
    assert not {wire.__name__, "kimicode.llm.wire_link", "h11"} & imported


def test_a_connection_idle_past_the_keep_alive_is_not_used(server: WireServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wire, "KEEPALIVE_S", 0.0)  # every kept connection is too old by its next request
    server.answers[:] = [answer_length("one"), answer_length("two")]

    assert all(isinstance(r, Reply) for r in asked(server, 2))
    assert [p.connection for p in server.posts] == [1, 2]
    assert server.wait_for(lambda: server.closed == 2)  # (the old one was closed, not left open)


def test_the_request_sent_once_more_goes_on_a_new_connection_not_another_kept_one(server: WireServer) -> None:
    def only_new_connections(conn: socket.socket, posted: Posted) -> bool:
        return posted.connection > 2 and answer_length("fresh")(conn, posted)  # (the first two die unanswered)

    server.answers[:] = [held_until(server, 2)] * 2 + [only_new_connections] * 3

    async def run() -> object:
        client = client_of(server)
        try:
            await asyncio.gather(ask(client), ask(client))  # two connections kept
            return await ask(client)
        finally:
            await client.aclose()

    reply = asyncio.run(run())
    assert isinstance(reply, Reply) and reply.content == "fresh"
    assert [p.connection for p in server.posts[2:]] in ([1, 3], [2, 3])
