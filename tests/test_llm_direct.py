"""The chat request sent from the SDK's request built once per client (llm/direct.py): what reaches the server
is what the SDK's own ``post`` sends, byte for byte, and the cookies a server sets are sent back as the SDK
sends them; over a raw loopback server that records every request's bytes."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from kimicode.config import Config
from kimicode.llm.client import ChatClient
from kimicode.llm.direct import CHAT_PATH, JSON_HEADERS, template_for
from kimicode.llm.errors import AuthError, LLMError
from kimicode.llm.profiles import profile_for
from kimicode.llm.request import encode
from kimicode.llm.transport import raw_stream_class, stream_once
from tests.fake_llm import FakeLLM, Fault
from tests.fake_llm import Reply as Scripted
from tests.loopback import Listener

STREAM = (
    b'data: {"choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": "stop"}]}\n\n'
    b"data: [DONE]\n\n"
)


class Recorder:
    """Answers every POST with a one-chunk stream (its first answer with ``first_headers`` added) and keeps
    each request's head and body as received; anything else gets 404."""

    def __init__(self, first_headers: bytes = b"") -> None:
        self.heads: list[bytes] = []
        self.bodies: list[bytes] = []
        self.first_headers = first_headers
        self._listener = Listener(self._serve)
        self.base_url = f"http://127.0.0.1:{self._listener.port}/v1"

    def close(self) -> None:
        self._listener.close()

    def _serve(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rb") as reader:
            while line := reader.readline():
                head = [line]
                while (header := reader.readline()) not in (b"\r\n", b""):
                    head.append(header)
                if not line.startswith(b"POST "):  # (the endpoint's GET /models: not known here)
                    conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    return
                length = next(int(h.split(b":")[1]) for h in head if h.lower().startswith(b"content-length:"))
                self.bodies.append(reader.read(length))
                self.heads.append(b"".join(head))
                extra, self.first_headers = self.first_headers, b""
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n" + extra
                    + b"Content-Length: %d\r\n\r\n%s" % (len(STREAM), STREAM)
                )


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    server = Recorder()
    yield server
    server.close()


def config_for(server: Recorder) -> Config:
    return Config(base_url=server.base_url, api_key="sk-test", model="kimi-k2.5", max_retries=0, request_timeout=10)


MESSAGES: list[dict[str, Any]] = [{"role": "user", "content": "héllo"}]


async def through_sdk_post(client: ChatClient) -> None:
    """The same request sent the way every request was sent before: the SDK's post, built anew."""
    payload = json.dumps(client.build_body(MESSAGES, [], thinking=False), ensure_ascii=False,
                         separators=(",", ":")).encode()
    raw = await client._client().post(CHAT_PATH, cast_to=object, content=payload, options={"headers": JSON_HEADERS},
                                      stream=True, stream_cls=raw_stream_class())
    await raw.response.aread()
    await raw.response.aclose()


def test_each_request_is_the_bytes_the_sdks_post_sends(recorder: Recorder) -> None:
    async def run() -> bool:
        client = ChatClient(config_for(recorder), profile_for("kimi-k2.5"))
        try:
            await through_sdk_post(client)
            for _ in range(2):
                reply = await client.complete(MESSAGES, [], thinking=False)
                assert reply.content == "hi"
            return template_for(client._client()) is not None
        finally:
            await client.aclose()

    assert asyncio.run(run())  # (the requests after the first were sent from the template)
    assert len(recorder.heads) == 3
    assert recorder.heads[1] == recorder.heads[0] and recorder.heads[2] == recorder.heads[0]
    assert recorder.bodies[1] == recorder.bodies[0] == recorder.bodies[2]
    assert b"\r\nauthorization: bearer sk-test\r\n" in recorder.heads[0].lower()


def test_a_cookie_the_server_set_is_sent_back_as_the_sdk_sends_it() -> None:
    server = Recorder(first_headers=b"Set-Cookie: affinity=node-7; Path=/\r\n")
    try:
        async def run() -> None:
            client = ChatClient(config_for(server), profile_for("kimi-k2.5"))
            try:
                for _ in range(2):
                    await client.complete(MESSAGES, [], thinking=False)
                await through_sdk_post(client)
            finally:
                await client.aclose()

        asyncio.run(run())
    finally:
        server.close()
    assert b"cookie" not in server.heads[0].lower()
    assert b"\r\ncookie: affinity=node-7\r\n" in server.heads[1].lower()
    assert server.heads[1] == server.heads[2]  # (the second from the SDK's post itself)


def test_status_failures_from_the_template_are_what_they_were_through_the_sdk(fake_llm: FakeLLM) -> None:
    fake_llm.script(
        Scripted(content="first"),
        Scripted(content="never", fault=Fault.auth()),
        Scripted(content="never", fault=Fault.rate_limit(retry_after=7)),
        Scripted(content="never", fault=Fault.http(400, "Unrecognized request argument supplied: prompt_cache_key",
                                                   "invalid_request_error")),
        Scripted(content="whole"),
    )

    async def run() -> list[Any]:
        config = Config(base_url=fake_llm.base_url, api_key="k", model="kimi-k2.5", max_retries=0)
        client = ChatClient(config, profile_for("kimi-k2.5"))
        sdk = client._client()
        results: list[Any] = []
        try:
            for _ in range(4):
                payload = encode(client.build_body(MESSAGES, [], thinking=False, session_id="s1"))
                try:
                    results.append(await stream_once(sdk, config, payload, ["prompt_cache_key"], None, None, None))
                except LLMError as err:
                    results.append(err)
            results.append(template_for(sdk) is not None)
        finally:
            await client.aclose()
        return results

    first, auth, limited, refused, templated = asyncio.run(run())
    assert templated and first.content == "first"
    assert isinstance(auth, AuthError) and auth.status == 401 and "rejected the key" in auth.message
    assert limited.status == 429 and limited.retryable and limited.retry_after == 7
    assert refused.status == 400 and not refused.retryable and refused.rejected == ["prompt_cache_key"]
