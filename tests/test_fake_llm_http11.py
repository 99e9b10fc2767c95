"""The scripted server's own header reader gives what http.client's email-based one gives, byte for byte."""

from __future__ import annotations

import http.client
import io
import json
import random

import pytest

from tests.fake_llm import http11


def ours(block: bytes, buffered: bool) -> object:
    """Read line by line (buffered=False) or, as the server reads, from a buffered reader that has the
    block at hand; and what is left to read after it."""
    stream = io.BufferedReader(io.BytesIO(block), 1 << 16) if buffered else io.BytesIO(block)
    try:
        return http11.read_headers(stream).items(), stream.read()
    except http.client.HTTPException as error:
        return (type(error), str(error))


def reference(block: bytes) -> object:
    stream = io.BytesIO(block)
    try:
        return http.client.parse_headers(stream).items(), stream.read()
    except http.client.HTTPException as error:
        return (type(error), str(error))


BLOCKS = [
    b"\r\n",
    b"",
    b"Host: a\r\nContent-Length: 5\r\n\r\nbody!",
    b"Host: a\nX: b\n\n",
    b"x-dup: a\r\nX-Dup: b\r\nX-Empty:\r\nx-TAB:\tt \t\r\nX-Colon: a:b: c\r\n\r\n",
    b"X-Folded: one\r\n two\r\n\tthree\r\n\r\n",
    b" First: folded\r\nX: 1\r\n\r\n",
    b"Broken header line\r\nX-After: 1\r\n\r\n",
    b": nameless\r\nX-B:  spaced  \r\n\r\n",
    b"X Bad: 1\r\nX-C: 2\r\n\r\n",
    b"From me: 1\r\nX-D: 2\r\n\r\n",
    b"From: me\r\nX-D: 2\r\n\r\n",
    b"X-R: a\rb\r\n\r\n",
    b"X-Name: caf\xc3\xa9 \xff\x85\xa0\r\n\r\n",
    b"X-Cut: no end of line",
    b"X: 1\r\n",
    b"X-Long: " + b"a" * http11.MAX_LINE + b"\r\n\r\n",
    b"X-Long: " + b"a" * (http11.MAX_LINE - 10) + b"\r\n\r\n",
    b"X-A: 1\r\n" * http11.MAX_HEADERS + b"\r\n",
    b"X-A: 1\r\n" * (http11.MAX_HEADERS - 1) + b"\r\n",
    b"X-A: 1\r\n" * (http11.MAX_HEADERS - 2) + b"\r\n",
    b"\r\nX: not a header but the body\r\n\r\n",
    b"\nX: 1\r\n\r\n",
    b"X: 1\r\nY: 2\r\n\r\nZ: body\r\n\r\n",
    b"X: " + b"a" * (http11.MAX_LINE - 9) + b"\r\n\r\n",
]


@pytest.mark.parametrize("buffered", [False, True])
@pytest.mark.parametrize("block", BLOCKS)
def test_a_header_block_reads_as_http_client_reads_it(block: bytes, buffered: bool) -> None:
    assert ours(block, buffered) == reference(block)


def test_random_header_blocks_read_as_http_client_reads_them() -> None:
    rng = random.Random(7)
    alphabet = [b"a", b"X", b"-", b":", b" ", b"\t", b"\r", b"\n", b"\r\n", b"\xe9", b"\x00", b"From ", b"\x7f"]
    for _ in range(3000):
        block = b"".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 30))) + b"\r\n\r\n"
        assert ours(block, False) == ours(block, True) == reference(block), block


def test_a_plain_block_at_hand_is_taken_in_one_piece() -> None:
    stream = io.BufferedReader(io.BytesIO(b"Host: a\r\nX-B:\t b \r\n\r\nbody"), 1 << 16)
    assert http11._buffered_block(stream) == b"Host: a\r\nX-B:\t b \r\n\r\n"
    assert stream.read() == b"body"
    folded = io.BufferedReader(io.BytesIO(b"Host: a\r\n b\r\n\r\n"), 1 << 16)
    assert http11._buffered_block(folded) is None and folded.read(4) == b"Host"  # left to the line reader


def test_the_rest_of_the_stream_is_left_unread() -> None:
    stream = io.BytesIO(b"X: 1\r\n\r\nthe body")
    http11.read_headers(stream)
    assert stream.read() == b"the body"


@pytest.mark.parametrize(
    ("line", "plain"),
    [
        (b"POST /v1/chat/completions HTTP/1.1\r\n", ("POST", "/v1/chat/completions")),
        (b"GET /v1/models?x=1 HTTP/1.1\n", ("GET", "/v1/models?x=1")),
        (b"GET //v1/models HTTP/1.1\r\n", None),  # http.server rewrites the path
        (b"GET /v1/models HTTP/1.0\r\n", None),
        (b"GET /v1/models HTTP/2.0\r\n", None),
        (b"GET  /v1/models HTTP/1.1\r\n", None),
        (b"GET /v1/\xa0models HTTP/1.1\r\n", None),
        (b"GET /v1/models HTTP/1.1 x\r\n", None),
        (b"GET /v1/models HTTP/1.1", None),
        (b"GARBAGE\r\n", None),
    ],
)
def test_only_plain_request_lines_skip_http_server(line: bytes, plain: tuple[str, str] | None) -> None:
    assert http11.plain_request_line(line) == plain


def loads_or_none(raw: bytes) -> object:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b'{"model": "m", "messages": [{"role": "user", "content": "h\xc3\xa9 \xe2\x9c\x93"}]}',
        b'{"s": "\xed\xa0\x80"}',  # a surrogate encoded in UTF-8: json.loads(bytes) takes it
        b'{"s": "\\ud800"}',
        b'{"bad": "\xff"}',
        b"\xef\xbb\xbf{}",
        '{"u": "é"}'.encode("utf-16"),
        '{"u": "é"}'.encode("utf-16-le"),
        '{"u": "é"}'.encode("utf-32"),
        b"null",
        b"[1, 2]",
        b"NaN",
        b"{not json",
        b"{} trailing",
        b" \n{}",
    ],
)
def test_a_body_parses_as_json_loads_parses_it(raw: bytes) -> None:
    assert repr(http11.parse_json(raw)) == repr(loads_or_none(raw))  # (repr: NaN != NaN)
