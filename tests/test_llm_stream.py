"""The model stream read from its bytes: every way an endpoint may cut, end and word its server-sent events
gives the same reply, and every way it can go wrong gives its one error; over a raw HTTP server that sends
exactly the bytes and chunk boundaries a test chose (each chunk of the chunked body is one read), and over the
scripted server's faults."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from kimicode.config import Config
from kimicode.llm.client import ChatClient
from kimicode.llm.errors import ContextOverflowError, LLMError
from kimicode.llm.profiles import profile_for
from kimicode.llm.reply import Reply
from kimicode.llm.sse import MAX_EVENT_BYTES, EventSplitter, MalformedChunk, chunk_of
from tests.fake_llm import FakeLLM, Fault, ToolCall
from tests.fake_llm import Reply as Scripted
from tests.loopback import Listener


def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"id": "c1", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


CHUNKS = [
    chunk({"role": "assistant", "reasoning_content": "think ✓"}),
    chunk({"content": "héllo "}),
    chunk({"tool_calls": [{"index": 0, "id": "call_a", "type": "function", "function": {"name": "bash", "arguments": ""}}]}),
    chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"command": '}}]}),
    chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"true"}'}}]}),
    chunk({}, "tool_calls"),
]


def sse(chunks: list[dict[str, Any]], end: str = "\n", done: bool = True) -> bytes:
    """The stream as servers send it, with ``end`` as every line end."""
    events = [f"data: {json.dumps(c, ensure_ascii=False)}{end}{end}" for c in chunks]
    if done:
        events.append(f"data: [DONE]{end}{end}")
    return "".join(events).encode()


def summary(reply: Reply) -> tuple[str, str, list[tuple[str, str, str]], str]:
    return reply.reasoning, reply.content, [(c.id, c.name, c.arguments) for c in reply.tool_calls], reply.finish_reason


EXPECTED = ("think ✓", "héllo ", [("call_a", "bash", '{"command": "true"}')], "tool_calls")


# -- a raw HTTP/1.1 server: the bytes and the chunks are the test's ------------------------------------------

Answer = list[bytes]  # the body's chunks, each sent as one chunk of the chunked encoding


class RawServer:
    """Answers each POST with the next answer's chunks (then the chunked encoding's end, unless the answer is
    ``endless``: then it repeats its last chunk until the client hangs up); GETs with 404."""

    def __init__(self) -> None:
        self.answers: list[Answer | Callable[[socket.socket], None]] = []
        self.connections = 0  # connections that carried a POST
        self._listener = Listener(self._serve)
        self.base_url = f"http://127.0.0.1:{self._listener.port}/v1"

    def close(self) -> None:
        self._listener.close()

    def _serve(self, conn: socket.socket) -> None:
        try:
            self._answer(conn)
        except OSError:
            return  # the client hung up (as it does on an error mid-stream)

    def _answer(self, conn: socket.socket) -> None:
        reader = conn.makefile("rb")
        posted = False
        with conn, reader:
            while True:
                line = reader.readline()
                if not line:
                    return
                method = line.split(b" ", 1)[0]
                length = 0
                while (header := reader.readline()) not in (b"\r\n", b""):
                    name, _, value = header.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                reader.read(length)
                if method != b"POST":
                    conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    return
                if not posted:
                    posted = True
                    self.connections += 1
                answer = self.answers.pop(0)
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
                )
                if callable(answer):
                    answer(conn)
                    return
                conn.sendall(b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in answer if part) + b"0\r\n\r\n")


def endless_after(first: bytes, more: bytes) -> Callable[[socket.socket], None]:
    def send(conn: socket.socket) -> None:
        conn.sendall(b"%x\r\n%s\r\n" % (len(first), first))
        try:
            while True:
                conn.sendall(b"%x\r\n%s\r\n" % (len(more), more))
        except OSError:
            return  # the client hung up

    return send


@pytest.fixture(scope="module")
def raw() -> Iterator[RawServer]:
    server = RawServer()
    yield server
    server.close()


def ask(server: RawServer, *answers: Answer | Callable[[socket.socket], None]) -> list[Reply | LLMError]:
    """Each answer as the reply to one request of one client (no retries): the replies, or the errors."""
    server.answers[:] = answers
    # (a reader that waited for a body's end that never comes would give up at request_timeout: an error)
    config = Config(base_url=server.base_url, api_key="k", model="kimi-k2.5", max_retries=0, request_timeout=10)
    return complete_each(config, len(answers))


def complete_each(config: Config, rounds: int) -> list[Reply | LLMError]:
    """``rounds`` requests of one client, one after the other: the replies, or the errors."""

    async def run() -> list[Reply | LLMError]:
        client = ChatClient(config, profile_for("kimi-k2.5"))
        results: list[Reply | LLMError] = []
        try:
            for _ in range(rounds):
                try:
                    results.append(await client.complete([{"role": "user", "content": "hi"}], [], thinking=False))
                except LLMError as err:
                    results.append(err)
        finally:
            await client.aclose()
        return results

    return asyncio.run(run())


def one_byte_reads(data: bytes) -> Answer:
    return [data[i : i + 1] for i in range(len(data))]


@pytest.mark.parametrize("end", ["\n", "\r\n", "\r"], ids=["LF", "CRLF", "CR"])
def test_a_stream_read_in_one_piece_or_a_byte_at_a_time_gives_the_same_reply(raw: RawServer, end: str) -> None:
    data = sse(CHUNKS, end)
    whole, split = ask(raw, [data], one_byte_reads(data))
    assert isinstance(whole, Reply) and isinstance(split, Reply)
    assert summary(whole) == summary(split) == EXPECTED


def test_comments_and_other_fields_are_ignored_and_multi_line_data_is_joined(raw: RawServer) -> None:
    first, *rest = [json.dumps(c, ensure_ascii=False) for c in CHUNKS]
    spread = first.replace(', "choices"', '\ndata: , "choices"', 1)  # one chunk's JSON over two data lines
    text = (
        ": keep-alive\n\n"
        "retry: 3000\nid: 7\n: a comment inside an event\nevent: message\ndata:" + spread + "\n\n"
        + "".join(f"data:{c}\r\n\r\n" for c in rest)  # (no space after the colon, CRLF)
        + "unknown: field\n\nevent: ping\n\ndata: [DONE]\n\n"
    )
    (reply,) = ask(raw, [text.encode()])
    assert isinstance(reply, Reply) and summary(reply) == EXPECTED


def test_done_ends_the_reply_and_the_connection_carries_the_next_request(raw: RawServer) -> None:
    after_done = b'data: {"choices": [{"delta": {"content": "NOT PART OF THE REPLY"}}]}\n\n'
    connections = raw.connections
    first, second = ask(raw, [sse(CHUNKS) + after_done], [sse(CHUNKS)])
    assert isinstance(first, Reply) and summary(first) == EXPECTED
    assert isinstance(second, Reply) and summary(second) == EXPECTED
    assert raw.connections == connections + 1


def test_a_server_that_keeps_sending_after_done_does_not_hold_the_reply(raw: RawServer) -> None:
    (reply,) = ask(raw, endless_after(sse(CHUNKS), b": more\n\n" * 100))
    assert isinstance(reply, Reply) and summary(reply) == EXPECTED


@pytest.mark.parametrize(
    "data, message",
    [
        (b"data: {not json\n\n", "the model stream sent a malformed chunk"),
        (b'data: {"choices": [{"delta": {"content": "\xff\xfe"}}]}\n\n', "the model stream sent a malformed chunk"),
        (b"data:\n\n", "the model stream sent a malformed chunk"),  # (empty data is no JSON)
        (b"data: " + b"[" * 200_000 + b"\n\n", "the model stream sent a malformed chunk"),  # (nested past the stack)
        (b'data: {"error": {"message": "boom", "type": "server_error"}}\n\n', "the model stream reported an error: boom"),
        (b'data: {"error": "out of memory"}\n\n', "the model stream reported an error: out of memory"),
        (b'event: error\ndata: {"message": "overloaded"}\n\n', "the model stream reported an error: overloaded"),
        (b"event: error\ndata: {}\n\n", "the model stream reported an error: An error occurred during streaming"),
    ],
    ids=["not-json", "not-utf8", "empty-data", "too-deep", "error-object", "error-string", "error-event", "error-event-bare"],
)
def test_a_bad_or_error_event_is_one_retryable_error(raw: RawServer, data: bytes, message: str) -> None:
    (err,) = ask(raw, [sse(CHUNKS[:2], done=False) + data + sse(CHUNKS[2:])])
    assert isinstance(err, LLMError) and not isinstance(err, ContextOverflowError)
    assert err.message == f"{message} (gave up after 1 attempts)"  # (retryable: with retries, asked again)


def test_an_overflow_reported_inside_a_200_stream_is_a_context_overflow(raw: RawServer) -> None:
    body = {"error": {"message": "This model's maximum context length is 8192 tokens. However, you requested 9000 tokens."}}
    (err,) = ask(raw, [b"event: error\r\ndata: " + json.dumps(body).encode() + b"\r\n\r\n"])
    assert isinstance(err, ContextOverflowError) and err.limit == 8192


def test_a_stream_cut_before_its_last_event_ends_is_not_a_reply(raw: RawServer) -> None:
    data = sse(CHUNKS, done=False)
    unfinished = data[: data.rindex(b"\n\n")] + b"\n"  # the finishing chunk, not ended by its blank line
    (err,) = ask(raw, [unfinished])
    assert isinstance(err, LLMError) and err.message.startswith("the model stream ended before the reply was complete")


def test_an_endpoint_that_never_ends_its_event_gets_one_error_not_all_the_memory(raw: RawServer) -> None:
    piece = b"x" * (1 << 20)
    endless_line = [b"data: "] + [piece] * (MAX_EVENT_BYTES // len(piece) + 1)
    (err,) = ask(raw, endless_line)
    assert isinstance(err, LLMError) and err.message.startswith("the model stream sent a malformed chunk")


# -- the scripted server's faults ----------------------------------------------------------------------------


def client_run(server: FakeLLM, rounds: int = 1) -> list[Reply | LLMError]:
    return complete_each(Config(base_url=server.base_url, api_key="k", model="kimi-k2.5", max_retries=0), rounds)


def test_the_scripted_servers_faults_through_the_client(fake_llm: FakeLLM) -> None:
    fake_llm.script(
        Scripted(reasoning="hmm", content="whole", tool_calls=[ToolCall("bash", {"command": "ls"})], chunk_size=2),
        Scripted(content="slow but whole", fault=Fault.trickle(interval=0.01, duration=0.05)),
        Scripted(content="text", fault=Fault.malformed_chunk()),
        Scripted(content="a long answer that never finishes", chunk_size=3, fault=Fault.drop_mid_stream(3)),
    )
    whole, trickled, malformed, dropped = client_run(fake_llm, 4)
    assert isinstance(whole, Reply)
    assert (whole.reasoning, whole.content, whole.finish_reason) == ("hmm", "whole", "tool_calls")
    assert [(c.name, json.loads(c.arguments)) for c in whole.tool_calls] == [("bash", {"command": "ls"})]
    assert whole.usage.prompt_tokens > 0
    assert isinstance(trickled, Reply) and trickled.content == "slow but whole"
    assert isinstance(malformed, LLMError) and malformed.message.startswith("the model stream sent a malformed chunk")
    assert isinstance(dropped, LLMError) and "broke mid-reply" in dropped.message


# -- the splitter on its own: every place a read may end -----------------------------------------------------


MIXED = (
    b": hello\r\n\r\nevent: delta\rdata: {\"a\":\r\ndata:  1}\n\nid: 3\nretry: x\ndata: [1]\r\n\r\n"
    b"data: \xe2\x9c\x93\n\nevent: error\n\nid: 4\n\nretry: 10\n\ndata:\n\ndata: tail-never-ended\n"
)
# (an event without a data line is no event: the standard's rule, so a named ping is ignored)
MIXED_EVENTS = [("delta", b'{"a":\n 1}'), ("", b"[1]"), ("", "✓".encode()), ("", b"")]


def test_every_cut_of_the_bytes_gives_the_same_events() -> None:
    whole = EventSplitter().feed(MIXED)
    assert whole == MIXED_EVENTS
    for cut in range(len(MIXED) + 1):
        splitter = EventSplitter()
        assert splitter.feed(MIXED[:cut]) + splitter.feed(MIXED[cut:]) == MIXED_EVENTS, cut
    splitter = EventSplitter()
    assert [e for i in range(len(MIXED)) for e in splitter.feed(MIXED[i : i + 1])] == MIXED_EVENTS


def test_the_limit_is_on_each_event_however_it_comes() -> None:
    with pytest.raises(MalformedChunk):
        splitter = EventSplitter(limit=100)
        for _ in range(11):
            splitter.feed(b"0123456789")  # one line, never ended
    with pytest.raises(MalformedChunk):
        EventSplitter(limit=100).feed(b"data: 0123456789\n" * 10)  # one event of many lines
    splitter = EventSplitter(limit=100)
    events = [e for _ in range(50) for e in splitter.feed(b'data: "0123456789"\n\n')]  # many small events
    assert events == [("", b'"0123456789"')] * 50
    splitter = EventSplitter(limit=100)
    assert splitter.feed(b"data: " + b"1" * 40) + splitter.feed(b"1" * 40 + b"\n\n") == [("", b"1" * 80)]


@pytest.mark.parametrize(
    "data",
    [b'{"a": [1, 2.5, true, null, "\\u00e9 \xe2\x9c\x93"]}', b' {"a": 1}', b'{"a": 1} \r\n\t', b"\xef\xbb\xbf{}",
     b'{"a": 1}{"b": 2}', b'{"a": 1} x', b"[1, 2", b"", b" ", b"NaN", b"-Infinity", b'"text"', b"12 13", b"1e400"],
)
def test_a_chunk_is_read_as_json_loads_reads_it(data: bytes) -> None:
    try:
        expected: Any = json.loads(data.decode("utf-8"))
    except ValueError:
        with pytest.raises(MalformedChunk):
            chunk_of("", data)
    else:
        assert repr(chunk_of("", data)) == repr(expected)  # (repr: NaN is not equal to itself)


EVENT_READS = [
    b'data: {"a": 1}\n\n', b"id: 3\n", b'data: {"b": 2}\n\n', b"event: delta\n", b'data: {"c": 3}\n\n',
    b"data: x\r", b"\n\n", b'data: {"d": 4}\n\n', b"data: part", b"ial\n\n", b": ping\n\n", b"data: a\ndata: b\n\n",
    b"data: \xe2\x9c\x93\n\n", b"data: [DONE]\n\n",
]


def test_reads_of_one_whole_event_each_give_the_events_the_whole_stream_gives() -> None:
    whole = EventSplitter().feed(b"".join(EVENT_READS))
    assert whole == [("", b'{"a": 1}'), ("", b'{"b": 2}'), ("delta", b'{"c": 3}'), ("", b"x"), ("", b'{"d": 4}'),
                     ("", b"partial"), ("", b"a\nb"), ("", "✓".encode()), ("", b"[DONE]")]
    splitter = EventSplitter()
    assert [event for read in EVENT_READS for event in splitter.feed(read)] == whole
    with pytest.raises(MalformedChunk):
        EventSplitter(limit=10).feed(b"data: 0123456789\n\n")  # (one whole event in one read is held to the limit too)
