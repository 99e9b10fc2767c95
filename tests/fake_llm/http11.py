"""A request read as http.server reads it, cheaper: its head without the email parser when plain, its body
parsed as json.loads parses it.

http.server hands every header block to the email package's parser, which is most of what parsing a
request costs (≈ 130 µs of the scripted server's ≈ 700 µs per request in a loop of tool calls). A plain
head, as every HTTP client sends it, needs none of that parser's rules; anything else still goes through
it, so its quirks (folded lines, a line without a colon ending the block, a bare CR splitting a line) are
what a client sees either way.
"""

from __future__ import annotations

import http.client
import io
import json
import re
from http.server import BaseHTTPRequestHandler
from typing import Any, Protocol

# http.client's limits, which http.server answers 431 for.
MAX_LINE: int = http.client._MAXLINE  # type: ignore[attr-defined]  # (not in the stubs)
MAX_HEADERS: int = http.client._MAXHEADERS  # type: ignore[attr-defined]

# `METHOD /path HTTP/1.1`, single spaces, visible ASCII: the request line http.server reads as exactly
# these three words (str.split would also split on the Latin-1 spaces \x85 and \xa0, hence ASCII only).
_PLAIN_REQUEST_LINE = re.compile(rb"([!-~]+) (/[!-~]*) HTTP/1\.1\r?\n")
# `name: value`, a name of visible characters but ':' and no line break but the one ending the line:
# what the email parser takes as one field, its value the rest of the line less leading blanks.
_PLAIN_FIELD = re.compile(rb"[!-9;-~]+:[^\r\n]*\r?\n")
# A block of such lines, each ending in CRLF, then the blank line; and its fields, values less leading blanks.
_PLAIN_BLOCK = re.compile(rb"(?:[!-9;-~]+:[^\r\n]*\r\n)*\r\n")
_FIELDS = re.compile(r"([!-9;-~]+):[ \t]*([^\r\n]*)\r\n")  # (in the block decoded as Latin-1)


class _Lines(Protocol):
    def readline(self, size: int = -1, /) -> bytes: ...

    def read(self, size: int = -1, /) -> bytes: ...


def plain_request_line(raw: bytes) -> tuple[str, str] | None:
    """(command, path) of a plain HTTP/1.1 request line; None for anything http.server must judge."""
    match = _PLAIN_REQUEST_LINE.fullmatch(raw)
    if match is None or match.group(2).startswith(b"//"):  # http.server rewrites a leading "//"
        return None
    return match.group(1).decode("ascii"), match.group(2).decode("ascii")


def read_headers(rfile: _Lines) -> http.client.HTTPMessage:
    """The header block up to its blank line, as http.client.parse_headers returns it (same limits,
    same errors, the same fields in the same order)."""
    block = _buffered_block(rfile)
    if block is not None:
        message = http.client.HTTPMessage()
        for name, value in _FIELDS.findall(block.decode("iso-8859-1")):
            message.set_raw(name, value)
        return message
    lines: list[bytes] = []
    plain = True
    while True:
        line = rfile.readline(MAX_LINE + 1)
        if len(line) > MAX_LINE:
            raise http.client.LineTooLong("header line")
        lines.append(line)
        if len(lines) > MAX_HEADERS:
            raise http.client.HTTPException(f"got more than {MAX_HEADERS} headers")
        if line in (b"\r\n", b"\n", b""):
            break
        plain = plain and _PLAIN_FIELD.fullmatch(line) is not None
    if not plain:
        return http.client.parse_headers(io.BytesIO(b"".join(lines)))
    message = http.client.HTTPMessage()
    for line in lines[:-1]:
        name, _, value = line.decode("iso-8859-1").partition(":")
        message.set_raw(name, value.lstrip(" \t").rstrip("\r\n"))
    return message


def _buffered_block(rfile: _Lines) -> bytes | None:
    """A plain header block already whole in the read buffer, taken from it in one read (rather than a
    readline per field); None, and nothing taken, for anything else."""
    peek = getattr(rfile, "peek", None)
    if peek is None:
        return None
    buffered: bytes = peek(MAX_LINE)  # what is buffered (one read first if nothing is)
    if buffered.startswith(b"\r\n"):
        block = b"\r\n"
    else:
        end = buffered.find(b"\r\n\r\n")
        if end < 0:
            return None
        block = buffered[: end + 4]
    # Within the limits (no line can be too long in a block this short) and plain: else the loop decides.
    if len(block) > MAX_LINE or block.count(b"\r\n") > MAX_HEADERS or not _PLAIN_BLOCK.fullmatch(block):
        return None
    rfile.read(len(block))
    return block


class PlainHeadHandler(BaseHTTPRequestHandler):
    """http.server's handler, reading a plain request's head itself; its fields indexed by lower-case name.
    Answers as HTTP/1.1 (keep-alive unless the client asks to close)."""

    protocol_version = "HTTP/1.1"
    raw_requestline: bytes
    first_fields: dict[str, str]
    last_fields: dict[str, str]

    def parse_request(self) -> bool:
        """A plain HTTP/1.1 request line and head read here; any other request line is http.server's to
        judge, with its own errors."""
        plain = plain_request_line(self.raw_requestline)
        if plain is None:
            parsed = super().parse_request()
            if parsed:
                self._index_headers()
            return parsed
        self.command, self.path = plain
        self.requestline = self.raw_requestline.decode("ascii").rstrip("\r\n")
        self.request_version = "HTTP/1.1"
        self.close_connection = False
        try:
            self.headers = read_headers(self.rfile)
        except http.client.LineTooLong as error:
            self.send_error(431, "Line too long", str(error))
            return False
        except http.client.HTTPException as error:
            self.send_error(431, "Too many headers", str(error))
            return False
        self._index_headers()
        if self.first_fields.get("connection", "").lower() == "close":  # (keep-alive is the HTTP/1.1 default)
            self.close_connection = True
        if self.first_fields.get("expect", "").lower() == "100-continue":
            return self.handle_expect_100()
        return True

    def _index_headers(self) -> None:
        # By lower-case name: the first of a repeated field, as headers.get() finds it (each get is a walk of
        # every field), and the last, as requests are recorded. (raw_items is items here: http.client's
        # values are Latin-1 text, never with the surrogates that items() would wrap.)
        pairs = list(self.headers.raw_items())
        self.last_fields = {name.lower(): value for name, value in pairs}
        self.first_fields = (
            self.last_fields
            if len(self.last_fields) == len(pairs)
            else {name.lower(): value for name, value in reversed(pairs)}
        )


def parse_json(raw: bytes) -> Any:
    """``json.loads(raw)``, or None when ``raw`` is empty or not JSON. UTF-8 that decodes strictly is the
    text json.loads would decode with "surrogatepass", and a strict decoder is the quicker one."""
    if not raw:
        return None
    try:
        if json.detect_encoding(raw) == "utf-8":
            try:
                return json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError:  # maybe encoded surrogates, which json.loads(raw) reads
                pass
        return json.loads(raw)
    except ValueError:
        return None
