"""Everything a client can observe of the scripted server, held against a stored transcript.

Each scenario sends raw bytes over a fresh connection (then half-closes it) and records what the server
wrote, one entry per socket write (so the write boundaries are part of what is compared), and what it
recorded of each request. Values that differ run to run (ids, clocks, the Python version in `Server:`) are
masked with strings of the same length, so chunk sizes and Content-Length stay comparable; the status line's
reason phrase, worded by the Python version, is left out.

The transcript was taken from the server as it was before it was made cheaper per request, and retaken
once since, when its JSON became compact as the real services write it (every value, write and recording
the same; only the separators, and so the sizes, changed). Any other change to the bytes, the writes or the
recorded requests fails here. After an intended change to what clients see:
`python -m tests.test_fake_llm_transcript --write` and review the diff of tests/fake_llm_transcript.json.
"""

from __future__ import annotations

import json
import re
import socket
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from tests.fake_llm import FakeLLM, Fault, Reply, ToolCall
from tests.fake_llm.vendors import IMAGE_REFUSAL, OVERFLOW, STRICT_STYLES

TRANSCRIPT = Path(__file__).with_name("fake_llm_transcript.json")
USER = [{"role": "user", "content": "hi ünï ✓"}]
Setup = Callable[[FakeLLM], None]

_MASKS = [
    (re.compile(rb"chatcmpl-[0-9a-f]{24}"), None),
    (re.compile(rb"call_[0-9a-f]{24}"), None),
    (re.compile(rb"file-[0-9a-f]{20}"), None),
    (re.compile(rb'"created(?:_at)?": ?(\d+)'), 1),
    (re.compile(rb"\r\nDate: ([^\r]*)"), 1),
    (re.compile(rb"\r\nServer: ([^\r]*)"), 1),
]


# The status line's reason phrase is the standard library's (http.HTTPStatus), which Python versions word
# differently (422: "Unprocessable Entity" until 3.12, "Unprocessable Content" after RFC 9110): not compared.
_REASON = re.compile(rb"\A(HTTP/1\.[01] \d{3}) [^\r\n]*")


def mask(data: bytes) -> str:
    for pattern, group in _MASKS:
        data = pattern.sub(lambda m, g=group: _same_length(m, g), data)
    return _REASON.sub(rb"\1 <reason>", data).decode("latin-1")


def _same_length(match: re.Match[bytes], group: int | None) -> bytes:
    start, end = match.span(group or 0)
    whole = match.group(0)
    offset = start - match.start()
    return whole[:offset] + b"#" * (end - start) + whole[offset + end - start :]


def request(
    body: dict[str, Any] | bytes | None = None,
    path: str = "/v1/chat/completions",
    method: str = "POST",
    headers: list[tuple[str, str]] | None = None,
    auth: bool = True,
) -> bytes:
    data = b"" if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
    lines = [f"{method} {path} HTTP/1.1", "Host: fake"]
    if auth:
        lines.append("Authorization: Bearer sk-test")
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(data)}"]
    lines += [f"{name}: {value}" for name, value in headers or []]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + data


def chat(stream: bool = True, **extra: Any) -> bytes:
    return request({"model": "kimi-k2.5", "messages": USER, "stream": stream, **extra})


TEXT = Reply(content="Hello, wörld! ✓ some more text to split", reasoning="think first, then answer")
CALLS = Reply(
    content="calling",
    tool_calls=[
        ToolCall("bash", {"command": "ls -la ünï", "timeout": 5}),
        ToolCall("read_file", '{"path": "a.txt"', id="call_given"),
    ],
)


def _scenarios() -> Iterator[tuple[str, dict[str, Any], list[Reply], list[bytes], Setup | None]]:
    """(name, FakeLLM arguments, scripted replies, requests sent on one connection, extra setup)."""
    for style in ("moonshot", "openai"):
        kw = {"usage_style": style}
        for stream in (True, False):
            mode = "stream" if stream else "whole"
            yield f"{style} text {mode}", kw, [TEXT], [chat(stream)], None
            yield f"{style} calls {mode}", kw, [CALLS], [chat(stream)], None
            yield f"{style} calls {mode} usage asked", kw, [CALLS], [chat(stream, stream_options={"include_usage": True})], None
        yield f"{style} usage override", kw, [Reply(content="x" * 9, usage={"prompt_tokens": 9, "cached_tokens": 4})], [
            chat(stream_options={"include_usage": True})
        ], None
    yield "empty reply and length", {}, [Reply(), Reply(content="cut", finish_reason="length")], [chat(), chat(False)], None
    yield "chunk sizes", {}, [Reply(content="abcdef", chunk_size=1), Reply(content="abcdef" * 30, chunk_size=100)], [
        chat(),
        chat(),
    ], None
    yield "keep-alive, counted call ids", {}, [CALLS, CALLS], [chat(), chat()], None
    yield "renamed call ids", {"renames_tool_call_ids": True}, [CALLS], [chat()], None
    faults = {
        "http": Fault.http(503),
        "rate limit": Fault.rate_limit(2),
        "overloaded": Fault.overloaded(),
        "auth": Fault.auth(),
        "token limit": Fault.token_limit(),
        "rewritten ids": Fault.rewritten_tool_call_ids(),
        "drop": Fault.drop_mid_stream(2),
        "truncated args": Fault.truncated_tool_args(),
        "malformed": Fault.malformed_chunk(),
    }
    for vendor in OVERFLOW:
        faults[f"overflow {vendor}"] = Fault.context_overflow(vendor)
    for name, fault in faults.items():
        for stream in (True, False):
            reply = Reply(content="text", tool_calls=CALLS.tool_calls, fault=fault)
            yield f"fault {name} {'stream' if stream else 'whole'}", {}, [reply], [chat(stream), chat(stream)], None
    yield "not json", {}, [], [request(b"{not json")], None
    yield "no messages", {}, [], [request({"model": "m"}), request([1, 2])], None
    yield "script exhausted", {}, [], [chat()], None
    yield "no key", {}, [], [request({"model": "m", "messages": USER}, auth=False)], None
    yield "wrong key", {"api_key": "other"}, [], [chat()], None
    yield "no key needed", {"models_style": "vllm"}, [TEXT], [request({"model": "m", "messages": USER}, auth=False)], None
    yield "unknown route", {}, [], [request(path="/v1/nothing", method="GET"), request({}, path="/v1/models")], None
    for style in ("moonshot", "vllm", "llama.cpp", "llama-cpp-python", "ollama", "openai"):
        yield f"models {style}", {"models_style": style, "context_window": 4096}, [], [request(path="/v1/models?x=1", method="GET")], None
    yield "models unlisted", {}, [], [request(path="/v1/models", method="GET")], lambda f: setattr(f, "lists_models", False)
    yield "models extra", {}, [], [request(path="/v1/models", method="GET")], lambda f: f.extra_models.append(("b", 8))
    yield "token estimate", {}, [], [request({"model": "m", "messages": USER}, path="/v1/tokenizers/estimate-token-count")], None
    upload = (
        b"--XyZ\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nfile-extract\r\n"
        b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.pdf\"\r\n"
        b"Content-Type: application/pdf\r\n\r\n%PDF\x00\xff\r\n--XyZ--\r\n"
    )
    upload_request = request(upload, path="/v1/files").replace(
        b"Content-Type: application/json", b"Content-Type: multipart/form-data; boundary=XyZ"
    )
    yield "file upload", {}, [], [upload_request, request(path="/v1/files/file-none", method="DELETE")], None
    yield "file not multipart", {}, [], [request(b"x", path="/v1/files")], None
    for vendor in STRICT_STYLES:
        body = {"model": "m", "messages": [{"role": "user", "content": "x", "name": "n"}], "odd": 1, "odder": 2}
        kw = {"strict": vendor, "accepted_message_fields": frozenset({"role", "content"})}
        yield f"strict {vendor}", kw, [TEXT], [request(body)], None
    image = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:,"}}]}]
    for vendor in sorted(IMAGE_REFUSAL):
        yield f"text only {vendor}", {"text_only": vendor}, [TEXT], [request({"model": "m", "messages": image})], None
    for vendor in OVERFLOW:
        big = {"model": "m", "messages": USER, "max_tokens": 64, "stream": True}
        kw = {"context_window": 10, "overflow_style": vendor}
        yield f"window {vendor}", kw, [TEXT], [request(big), request({**big, "stream": False})], None
    yield "throttled", {}, [TEXT], [chat()], lambda f: setattr(f, "concurrency_limit", 0)
    yield "throttled no retry-after", {}, [TEXT], [chat()], lambda f: (
        setattr(f, "concurrency_limit", 0),
        setattr(f, "throttle_retry_after", None),
    )
    yield from _http_scenarios()


def _http_scenarios() -> Iterator[tuple[str, dict[str, Any], list[Reply], list[bytes], Setup | None]]:
    """Requests at the edges of HTTP/1.1: how they are parsed shows in the answer and in the recording."""
    body = json.dumps({"model": "m", "messages": USER}).encode()
    head = f"POST /v1/chat/completions HTTP/1.1\r\nAuthorization: Bearer k\r\nContent-Length: {len(body)}\r\n"
    http_cases: dict[str, bytes] = {
        "bad request line": b"GARBAGE\r\n\r\n",
        "empty request line": b"\r\n",
        "http/2": b"GET /v1/models HTTP/2.0\r\n\r\n",
        "bad version": b"GET /v1/models HTTP/1.x\r\n\r\n",
        "four words": b"GET /v1/models HTTP/1.1 extra\r\n\r\n",
        "http/0.9 post": b"POST /v1/models\r\n\r\n",
        "http/1.0": b"GET /v1/models HTTP/1.0\r\nAuthorization: Bearer k\r\n\r\n",
        "double slash path": b"GET //v1/models HTTP/1.1\r\nAuthorization: Bearer k\r\n\r\n",
        "long header": b"GET /v1/models HTTP/1.1\r\nX-Long: " + b"a" * 70000 + b"\r\n\r\n",
        "101 headers": b"GET /v1/models HTTP/1.1\r\n" + b"X-A: 1\r\n" * 101 + b"\r\n",
        "100 headers": b"GET /v1/models HTTP/1.1\r\nAuthorization: Bearer k\r\n" + b"X-A: 1\r\n" * 98 + b"\r\n",
        "header without colon": (head + "Broken header line\r\nX-After: 1\r\n\r\n").encode() + body,
        "folded header": (head + "X-Folded: one\r\n two\r\n\tthree\r\n\r\n").encode() + body,
        "first header folded": (head.replace("\r\nAuth", "\r\n Auth") + "\r\n").encode() + body,
        "empty header name": (head + ": nameless\r\nX-B:  spaced  \r\n\r\n").encode() + body,
        "header with space in name": (head + "X Bad: 1\r\nX-C: 2\r\n\r\n").encode() + body,
        "duplicate and odd headers": (
            head + "x-dup: a\r\nX-Dup: b\r\nX-Empty:\r\nx-TAB:\tt \t\r\nX-Colon: a:b: c\r\n\r\n"
        ).encode() + body,
        "latin-1 header": (head + "X-Name: ").encode() + "café ünï".encode() + b"\r\n\r\n" + body,
        "bare newlines": (head.replace("\r\n", "\n") + "X-N: 1\n\n").encode() + body,
        "carriage return in value": (head + "X-R: a\rb\r\n\r\n").encode() + body,
        "from line": (head + "From me: 1\r\nX-D: 2\r\n\r\n").encode() + body,
        "connection close": (head + "Connection: close\r\n\r\n").encode() + body + request(path="/v1/models", method="GET"),
        "connection keep-alive 1.0": b"GET /v1/models HTTP/1.0\r\nConnection: keep-alive\r\nAuthorization: Bearer k\r\n\r\n"
        + request(path="/v1/models", method="GET"),
        "expect continue": (head + "Expect: 100-continue\r\n\r\n").encode() + body,
        "chunked body": b"POST /v1/chat/completions HTTP/1.1\r\nAuthorization: Bearer k\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"%x;ext=1\r\n%s\r\n0\r\nTrailer: x\r\n\r\n" % (len(body), body),
        "query string": request({"model": "m", "messages": USER}, path="/v1/chat/completions?a=1&b=2"),
        "put": request({}, method="PUT"),
    }
    for name, data in http_cases.items():
        yield f"http {name}", {}, [TEXT, TEXT], [data], None


def run_scenario(
    kwargs: dict[str, Any], replies: list[Reply], requests: list[bytes], setup: Setup | None
) -> dict[str, Any]:
    with FakeLLM(**kwargs) as fake, _server_writes(fake) as writes:
        if setup is not None:
            setup(fake)
        fake.script(*replies)
        with socket.create_connection(("127.0.0.1", fake.port)) as client:
            client.sendall(b"".join(requests))
            client.shutdown(socket.SHUT_WR)
            received, reset = b"", False
            try:
                while chunk := client.recv(65536):
                    received += chunk
            except ConnectionResetError:  # the server hung up on a request it did not read whole
                reset = True
        recorded = [
            {
                "path": r.path,
                "method": r.method,
                "headers": r.headers,
                "body": r.body,
                "raw": mask(r.raw),
                "status": r.status,
                "received": r.received > 0,
                "answered": r.answered >= r.received > 0,
            }
            for r in fake.all_requests
        ]
    assert b"".join(writes) == received or reset  # the writes seen are all the client got
    return {"writes": [mask(w) for w in writes], "recorded": recorded, "remaining": fake.remaining}


@contextmanager
def _server_writes(fake: FakeLLM) -> Iterator[list[bytes]]:
    """Every sendall of the server's sockets, in order."""
    writes: list[bytes] = []
    real = socket.socket.sendall

    def sendall(sock: socket.socket, data: Any, *args: Any) -> None:
        try:
            ours = sock.getsockname()[1] == fake.port
        except OSError:
            ours = False
        if ours:
            writes.append(bytes(data))
        real(sock, data, *args)

    with mock.patch.object(socket.socket, "sendall", sendall):
        yield writes


def transcript() -> dict[str, Any]:
    return {name: run_scenario(kw, replies, reqs, setup) for name, kw, replies, reqs, setup in _scenarios()}


@pytest.fixture(scope="module")
def actual() -> dict[str, Any]:
    return transcript()


@pytest.fixture(scope="module")
def expected() -> dict[str, Any]:
    return json.loads(TRANSCRIPT.read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", [scenario[0] for scenario in _scenarios()])
def test_the_server_answers_every_scenario_as_recorded(name: str, actual: dict[str, Any], expected: dict[str, Any]) -> None:
    assert actual[name] == expected.get(name)


def test_every_scenario_is_in_the_transcript(actual: dict[str, Any], expected: dict[str, Any]) -> None:
    assert sorted(actual) == sorted(expected)


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        raise SystemExit("usage: python -m tests.test_fake_llm_transcript --write")
    TRANSCRIPT.write_text(json.dumps(transcript(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
