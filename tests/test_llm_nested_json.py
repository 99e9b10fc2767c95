"""A hostile endpoint's JSON nested deeper than the parser's stack (an error body, a model list) is one clear
error, like any other bad answer, never a RecursionError escaping the run."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from kimicode.llm.errors import LLMError
from kimicode.llm.models import ModelsError, fetch_models
from tests.wireserver import Posted, WireServer, asked

DEPTH = 50_000  # past the recursion limit of every supported Python (3.13 parses 5,000 levels)
NESTED = b'{"error": ' + b"[" * DEPTH + b"]" * DEPTH + b"}"


def nested_error(conn: socket.socket, posted: Posted) -> bool:
    conn.sendall(
        b"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(NESTED) + NESTED
    )
    return True


def test_an_error_body_nested_past_the_stack_is_the_status_error() -> None:
    server = WireServer()
    server.answers[:] = [nested_error]
    try:
        [error] = asked(server)
    finally:
        server.close()
    assert isinstance(error, LLMError)
    assert str(error).startswith("the model endpoint answered 400")
    assert "\n" not in str(error)


@pytest.fixture()
def nested_models() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(NESTED)))
            self.end_headers()
            self.wfile.write(NESTED)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def test_a_model_list_nested_past_the_stack_is_not_a_model_list(nested_models: str) -> None:
    with pytest.raises(ModelsError, match="did not answer a JSON model list"):
        fetch_models(nested_models)


def empty_stream(conn: socket.socket, posted: Posted) -> bool:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: 0\r\n\r\n")
    return True


def json_answer(body: bytes) -> Callable[[socket.socket, Posted], bool]:
    def send(conn: socket.socket, posted: Posted) -> bool:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        return True

    return send


@pytest.mark.parametrize("body", [b'{"choices": ' + b"[" * DEPTH + b"]" * DEPTH + b"}", b"{not json"], ids=["nested", "not-json"])
def test_an_unstreamed_answer_that_is_no_json_is_one_clear_error(body: bytes) -> None:
    # An empty stream is asked again unstreamed; that answer's body is then not a JSON completion.
    server = WireServer()
    server.answers[:] = [empty_stream, json_answer(body)]
    try:
        [error] = asked(server)
    finally:
        server.close()
    assert isinstance(error, LLMError)
    assert "not a JSON completion" in str(error) and "\n" not in str(error)
    assert len(server.posts) >= 2 and b'"stream":false' in server.posts[1].body.replace(b" ", b"")
