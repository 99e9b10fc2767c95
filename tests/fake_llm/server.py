"""A scripted OpenAI/Moonshot-compatible HTTP server on 127.0.0.1, standard library only.

Each POST /v1/chat/completions takes the next scripted Reply (or asks `responder`) and answers it in the
wire format of the real services, streamed over chunked SSE or as one JSON object, optionally with an
injected fault. Every request is recorded so tests can assert what a client really sent.
"""

from __future__ import annotations

import itertools
import json
import socket
import sys
import threading
import time
import traceback
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from tests.fake_llm import http11, vendors, wire
from tests.fake_llm.recorded import RecordedRequest
from tests.fake_llm.script import Fault, Reply, format_seconds

SCRIPT_EXHAUSTED = "fake_llm: script exhausted"
CHAT_PATH = "/v1/chat/completions"
Responder = Callable[[RecordedRequest], Reply]


@dataclass
class UploadedFile:
    id: str
    filename: str
    purpose: str
    data: bytes
    content_type: str
    created_at: int

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "file",
            "bytes": len(self.data),
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
        }


class _ClientGone(Exception):
    """The server is closing or the connection was cut on purpose; stop answering."""


class FakeLLM:
    """Starts serving at construction; `close()` (or leaving a `with` block) stops it."""

    def __init__(
        self,
        model: str = "kimi-k2.5",
        usage_style: str = "moonshot",
        api_key: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        verbose: bool = False,
        strict: str | None = None,
        accepted_fields: frozenset[str] = vendors.STANDARD_FIELDS,
        accepted_message_fields: frozenset[str] | None = None,
        models_style: str = "moonshot",
        context_window: int | None = None,
        overflow_style: str = "moonshot",
        require_key: bool | None = None,
        text_only: str | None = None,
        renames_tool_call_ids: bool = False,
    ) -> None:
        if usage_style not in wire.USAGE_STYLES:
            raise ValueError(f"usage_style must be one of {wire.USAGE_STYLES}, got {usage_style!r}")
        if strict is not None and strict not in vendors.STRICT_STYLES:
            raise ValueError(f"strict must be one of {vendors.STRICT_STYLES}, got {strict!r}")
        if text_only is not None and text_only not in vendors.IMAGE_REFUSAL:
            raise ValueError(f"text_only must be one of {sorted(vendors.IMAGE_REFUSAL)}, got {text_only!r}")
        if models_style not in wire.MODELS_STYLES or overflow_style not in vendors.OVERFLOW:
            raise ValueError(f"unknown models_style {models_style!r} or overflow_style {overflow_style!r}")
        self.model = model
        self.usage_style = usage_style
        self.api_key = api_key
        self.verbose = verbose
        # A strict server answers a request carrying a field outside these sets with a 400 (or 422) naming
        # it, worded as the `strict` vendor words it; `rejections` counts such answers.
        self.strict = strict
        self.accepted_fields = accepted_fields
        self.accepted_message_fields = accepted_message_fields
        self.rejections = 0
        # A model without vision: a request with an image or video part is refused as `text_only` refuses
        # it (vendors.IMAGE_REFUSAL), without taking a scripted reply; `image_refusals` counts them.
        self.text_only = text_only
        self.image_refusals = 0
        # A proxy in front of the model that gives every tool call an id of its own on the way out and does
        # not map it back on the way in: the model is then sent its calls and their results under ids it
        # never produced (a responder that matches results to its calls, as CompetentModel does, cannot).
        self.renames_tool_call_ids = renames_tool_call_ids
        # GET /v1/models as this server software lists a model, with this window (None: its default).
        self.models_style = models_style
        # More models GET /v1/models lists after ``model``: (id, window or None for the style's default).
        self.extra_models: list[tuple[str, int | None]] = []
        self.lists_models = True  # False: GET /v1/models answers 404, as some proxies and servers do
        # Requests estimated over this many tokens (body bytes / 4, plus the reply room asked for) are
        # refused as `overflow_style` refuses them, without taking a scripted reply.
        self.context_window = context_window
        self.overflow_style = overflow_style
        # Hosted APIs want a key; servers on a machine (llama.cpp, Ollama, vLLM ... started without
        # --api-key) take requests with none. `api_key`, when set, is always checked.
        self.require_key = require_key if require_key is not None else models_style in ("moonshot", "openai")
        self.responder: Responder | None = None
        # Every request the server saw, any path (GET /models, /files, token estimates ...); see ``requests``.
        self.all_requests: list[RecordedRequest] = []
        self.files: dict[str, UploadedFile] = {}
        self.in_flight = 0
        self.max_in_flight = 0
        # A rate limit on concurrency: a chat request arriving while this many are being answered gets a
        # 429 (rate_limit_reached_error, Retry-After: throttle_retry_after) instead; `throttled` counts them.
        self.concurrency_limit: int | None = None
        self.throttle_retry_after: float | None = 0.05
        self.throttled = 0
        self._queue: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._request_arrived = threading.Condition(self._lock)
        self._closing = threading.Event()
        self._closed = False
        self._connections: set[socket.socket] = set()
        self._tool_call_numbers = itertools.count()
        self._httpd = _HTTPServer((host, port), _Handler, self)
        self.port: int = self._httpd.server_address[1]
        self.base_url = f"http://{host}:{self.port}/v1"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-llm", daemon=True
        )
        self._thread.start()

    # ---- scripting -------------------------------------------------------------------------------------

    def script(self, *replies: Reply) -> None:
        for reply in replies:
            if not isinstance(reply, Reply):
                raise TypeError(f"script() takes Reply objects, got {type(reply).__name__}")
        with self._lock:
            self._queue.extend(replies)

    @property
    def remaining(self) -> int:
        """Scripted replies not yet consumed."""
        with self._lock:
            return len(self._queue)

    @property
    def requests(self) -> list[RecordedRequest]:
        """The chat completion requests, in arrival order: what a test means by "what the model was sent"
        (a run may ask GET /models first; those are in ``all_requests``)."""
        with self._lock:
            return [r for r in self.all_requests if r.path == CHAT_PATH]

    chat_requests = requests

    def wait_for_requests(self, n: int, timeout: float = 10.0, path: str | None = CHAT_PATH) -> bool:
        """Wait until ``n`` requests to ``path`` (chat completions; None = any path) have arrived."""
        with self._request_arrived:
            return self._request_arrived.wait_for(
                lambda: sum(1 for r in self.all_requests if path is None or r.path == path) >= n, timeout
            )

    def wait_for_answers(self, n: int, timeout: float = 10.0, path: str | None = CHAT_PATH) -> bool:
        """Wait until ``n`` requests to ``path`` have had their answer's last byte written (a client may
        move on as soon as it has read what it needs, before the server has noted that it finished)."""
        with self._request_arrived:
            return self._request_arrived.wait_for(
                lambda: sum(1 for r in self.all_requests if (path is None or r.path == path) and r.answered) >= n,
                timeout,
            )

    def _answered(self, recorded: RecordedRequest, ended: float) -> None:
        with self._request_arrived:
            recorded.answered = ended
            self._request_arrived.notify_all()

    # ---- lifecycle -------------------------------------------------------------------------------------

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._closing.set()  # releases hung and delayed responses
        self._httpd.shutdown()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:  # unblocks handlers waiting on idle keep-alive connections
            _shutdown_quietly(connection)
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeLLM:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"FakeLLM({self.base_url!r}, requests={len(self.all_requests)}, remaining={self.remaining})"

    # ---- used by the handler ---------------------------------------------------------------------------

    def _record(self, request: RecordedRequest) -> None:
        with self._request_arrived:
            self.all_requests.append(request)
            self._request_arrived.notify_all()

    def _next_reply(self, request: RecordedRequest) -> Reply | None:
        responder = self.responder
        if responder is not None:
            return responder(request)
        with self._lock:
            return self._queue.popleft() if self._queue else None

    def _tool_call_id(self, name: str) -> str:
        with self._lock:
            return f"{name}:{next(self._tool_call_numbers)}"

    def _enter_chat(self) -> bool:
        """Count a chat request in; False (and counted as throttled) when it is over concurrency_limit."""
        with self._lock:
            if self.concurrency_limit is not None and self.in_flight >= self.concurrency_limit:
                self.throttled += 1
                return False
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            return True

    def _leave_chat(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def _track(self, connection: socket.socket, open_: bool) -> None:
        with self._lock:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def _pause(self, seconds: float) -> None:
        """Sleep, but give up at once when the server closes."""
        if seconds > 0 and self._closing.wait(seconds):
            raise _ClientGone


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512  # many sub-agents connect at once
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], app: FakeLLM) -> None:
        self.app = app
        super().__init__(address, handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, _ClientGone, TimeoutError)):
            return  # clients hanging up are part of the job, not a server failure
        super().handle_error(request, client_address)


def _shutdown_quietly(connection: socket.socket) -> None:
    try:
        connection.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class _Handler(http11.PlainHeadHandler):
    protocol_version = "HTTP/1.1"
    # Streams are many small writes; with Nagle on, each waits ~40 ms for the client's delayed ACK.
    disable_nagle_algorithm = True
    server: _HTTPServer
    server_version = "fake-llm/1"
    rbufsize = 1 << 16  # a request of a long conversation in one read, not one per 8 KB

    # ---- plumbing --------------------------------------------------------------------------------------

    @property
    def app(self) -> FakeLLM:
        return self.server.app

    def setup(self) -> None:
        super().setup()
        self.app._track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.app._track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:
        if self.app.verbose:
            sys.stderr.write("fake_llm: " + (format % args) + "\n")

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def _read_body(self) -> bytes:
        if "chunked" in self.first_fields.get("transfer-encoding", "").lower():
            parts: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.first_fields.get("content-length") or 0)
        return self.rfile.read(length) if length else b""

    def _abort(self) -> None:
        """Cut the connection with no proper end of message."""
        self.close_connection = True
        _shutdown_quietly(self.connection)

    def _send_json(self, status: int, payload: Any, headers: Iterable[tuple[str, str]] = ()) -> None:
        self._send_bytes(status, json.dumps(payload, ensure_ascii=False).encode(), headers)

    def _send_bytes(
        self, status: int, data: bytes, headers: Iterable[tuple[str, str]] = (), content_type: str = "application/json"
    ) -> None:
        self._record_status(status)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        ended = time.perf_counter()  # (before the write: the client may act on the bytes before this thread runs on)
        self.wfile.write(data)
        self.app._answered(self.recorded, ended)

    def _send_error(self, status: int, message: str, error_type: str, headers: Iterable[tuple[str, str]] = ()) -> None:
        self._send_json(status, wire.error_body(message, error_type), headers)

    def _record_status(self, status: int) -> None:
        self.recorded.status = status

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    # ---- routing ---------------------------------------------------------------------------------------

    def _dispatch(self) -> None:
        raw = self._read_body()
        received = time.perf_counter()
        self.recorded = RecordedRequest(
            path=urlsplit(self.path).path,
            method=self.command,
            headers=self.last_fields,
            raw=raw,
            time=time.time(),
            received=received,
        )
        self.body: Any = http11.parse_json(raw)
        self.recorded.offer(self.body)
        self.app._record(self.recorded)
        try:
            self._route()
        except (_ClientGone, ConnectionError, TimeoutError):
            self._abort()
        except Exception as error:  # a bug in a responder or here: fail the request loudly, not silently
            traceback.print_exc()
            self.close_connection = True
            if self.recorded.status is None:
                self._send_error(500, f"fake_llm: {type(error).__name__}: {error}", "server_error")
        finally:
            self.recorded.withdraw()
            self.body = None

    def _route(self) -> None:
        if not self._authorized():
            return
        path, method = self.recorded.path, self.command
        if path == CHAT_PATH and method == "POST":
            self._chat_completions()
        elif path == "/v1/models" and method == "GET" and not self.app.lists_models:
            self._send_error(404, "Not Found", "not_found_error")
        elif path == "/v1/models" and method == "GET":
            body = wire.models_body(self.app.model, self.app.models_style, self.app.context_window, self.app.extra_models)
            self._send_json(200, body)
        elif path == "/v1/files" and method == "POST":
            self._upload_file()
        elif path.startswith("/v1/files/") and method in ("GET", "DELETE"):
            self._file(path.removeprefix("/v1/files/"), method)
        elif path == "/v1/tokenizers/estimate-token-count" and method == "POST":
            self._send_json(200, {"data": {"total_tokens": len(self.recorded.raw) // 4}})
        else:
            self._send_error(404, f"fake_llm: no route for {method} {path}", "not_found_error")

    def _authorized(self) -> bool:
        header = self.recorded.headers.get("authorization", "")
        if not header and not self.app.require_key and self.app.api_key is None:
            return True
        scheme, _, key = header.partition(" ")
        if scheme != "Bearer" or not key.strip():
            self._send_error(401, "Invalid Authentication: no API key given", "invalid_authentication_error")
            return False
        if self.app.api_key is not None and key.strip() != self.app.api_key:
            self._send_error(401, "Invalid Authentication", "invalid_authentication_error")
            return False
        return True

    # ---- /v1/chat/completions --------------------------------------------------------------------------

    def _chat_completions(self) -> None:
        if not self.app._enter_chat():
            fault = Fault.rate_limit(self.app.throttle_retry_after or 0)
            retry = self.app.throttle_retry_after
            headers = [] if retry is None else [("Retry-After", format_seconds(retry))]
            self._send_error(fault.status, fault.message, fault.error_type, headers)
            return
        try:
            self._answer_chat()
        finally:
            self.app._leave_chat()

    def _answer_chat(self) -> None:
        body = self.body
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            self._send_error(400, "Invalid request: body must be JSON with a messages list", "invalid_request_error")
            return
        if self._refuse_unknown_fields(body) or self._refuse_images(body) or self._refuse_over_window(body):
            return
        try:
            reply = self.app._next_reply(self.recorded)
        except Exception as error:
            traceback.print_exc()
            self._send_error(500, f"fake_llm: responder raised {type(error).__name__}: {error}", "server_error")
            return
        if reply is None:
            self._send_error(500, SCRIPT_EXHAUSTED, "server_error")
            return
        self.app._pause(reply.delay)
        fault = reply.fault
        if fault is not None and fault.kind == "http":
            headers = [] if fault.retry_after is None else [("Retry-After", format_seconds(fault.retry_after))]
            self._send_error(fault.status, fault.message, fault.error_type, headers)
            return
        if fault is not None and fault.kind == "hang":
            self.app._closing.wait()
            raise _ClientGone
        if fault is not None and fault.kind == "context_overflow":
            if self._overflow(fault.message, body) == "again":
                with self.app._lock:  # the same request unstreamed must fail the same way
                    self.app._queue.appendleft(reply)
            return
        ids = [call.id or self.app._tool_call_id(call.name) for call in reply.tool_calls]
        if self.app.renames_tool_call_ids:
            ids = [f"call_{uuid.uuid4().hex[:24]}" for _ in ids]  # stable within the reply, never the model's
        turn = wire.make_turn(
            reply,
            model=str(body.get("model") or self.app.model),
            tool_call_ids=ids,
            prompt_bytes=len(self.recorded.raw),
            usage_style=self.app.usage_style,
        )
        if body.get("stream") is True:
            self._stream(turn, body)
        else:
            self._complete(turn)

    def _refuse_images(self, body: dict[str, Any]) -> bool:
        app = self.app
        if app.text_only is None or not _has_media(body.get("messages")):
            return False
        status, payload = vendors.IMAGE_REFUSAL[app.text_only]
        with app._lock:
            app.image_refusals += 1
        self._send_bytes(status, vendors.dumps(payload))
        return True

    def _refuse_unknown_fields(self, body: dict[str, Any]) -> bool:
        app = self.app
        if app.strict is None:
            return False
        unknown = [name for name in body if name not in app.accepted_fields]
        if app.accepted_message_fields is not None:
            for number, message in enumerate(body["messages"]):
                if isinstance(message, dict):
                    unknown += [f"messages.{number}.{k}" for k in message if k not in app.accepted_message_fields]
        if not unknown:
            return False
        if app.strict in ("openai-unknown", "groq"):
            unknown = unknown[:1]  # these name one field per answer
        status, payload = vendors.rejection(app.strict, unknown)
        with app._lock:
            app.rejections += 1
        self._send_bytes(status, vendors.dumps(payload))
        return True

    def _refuse_over_window(self, body: dict[str, Any]) -> bool:
        window = self.app.context_window
        if window is None:
            return False
        room = body.get("max_tokens") or body.get("max_completion_tokens") or 0
        if len(self.recorded.raw) // 4 + int(room) <= window:
            return False
        self._overflow(self.app.overflow_style, body, window)
        return True

    def _overflow(self, vendor: str, body: dict[str, Any], window: int | None = None) -> str:
        """Answer a request over the window as ``vendor`` does (stating ``window`` where the vendor states
        one); "again" when only the unstreamed form of the same request will show the error."""
        answer = vendors.OVERFLOW[vendor]
        if window is not None and answer.window is not None:
            text = vendors.dumps(answer.body).decode().replace(str(answer.window), str(window))
            answer = vendors.OverflowAnswer(answer.status, json.loads(text), window, answer.streamed)
        streamed = body.get("stream") is True
        if streamed and answer.streamed == "empty":
            self._open_stream()
            self.wfile.write(b"0\r\n\r\n")
            self.close_connection = True  # as llama-cpp-python's server hangs up after the failed stream
            return "again"
        if streamed and answer.streamed == "event":
            self._open_stream()
            self._write_chunk(b"event: error\ndata: " + vendors.dumps(answer.body) + b"\n\n")
            self.wfile.write(b"0\r\n\r\n")
            return "done"
        status = answer.status if answer.status != 200 else 400
        self._send_bytes(status, vendors.dumps(answer.body))
        return "done"

    def _open_stream(self) -> None:
        self._record_status(200)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _stream(self, turn: wire.Turn, body: dict[str, Any]) -> None:
        stream_options = body.get("stream_options") or {}
        include_usage = bool(isinstance(stream_options, dict) and stream_options.get("include_usage"))
        plan = wire.stream_plan(turn, self.app.usage_style, include_usage)
        self._open_stream()
        fault = turn.reply.fault
        events = plan.body + plan.closing
        if fault is not None and fault.kind == "drop_mid_stream":
            events = plan.body[: fault.after_chunks]
        stall_at = fault.after_chunks if fault is not None and fault.kind in ("stall", "trickle") else -1
        delay = turn.reply.chunk_delay
        write = self.connection.sendall  # (what self.wfile.write calls, without its wrapper per event)
        last = len(events) - 1
        ended = 0.0
        for number, event in enumerate(events):
            if number and delay:
                self.app._pause(delay)
            if number == stall_at:
                self._stall_or_trickle(fault)
            if number == last:
                # The last event's write is when the client can have all it needs: noted before it, since
                # the client may act on it (and send its next request) before this thread runs on.
                ended = time.perf_counter()
            write(b"%x\r\n%s\r\n" % (len(event), event))
        if fault is not None and fault.kind == "drop_mid_stream":
            raise _ClientGone
        self.wfile.write(b"0\r\n\r\n")
        self.app._answered(self.recorded, ended or time.perf_counter())

    def _stall_or_trickle(self, fault: Any) -> None:
        self.wfile.flush()
        if fault.kind == "stall":
            self.app._closing.wait()
            raise _ClientGone
        # An SSE comment line: part of the format (servers send them to keep proxies from timing out),
        # and ignored by every client's event parser.
        ends = time.monotonic() + fault.duration
        while time.monotonic() < ends:
            self.app._pause(fault.interval)
            self._write_chunk(wire.KEEP_ALIVE_EVENT)
            self.wfile.flush()

    def _complete(self, turn: wire.Turn) -> None:
        data = wire.dumps(wire.completion_body(turn, self.app.usage_style)).encode()
        fault = turn.reply.fault
        if fault is not None and fault.kind == "malformed_chunk":
            self._send_bytes(200, data[: len(data) // 2])  # declared length matches, content is not JSON
        elif fault is not None and fault.kind == "drop_mid_stream":
            self._record_status(200)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            raise _ClientGone
        else:
            self._send_bytes(200, data)

    # ---- /v1/files -------------------------------------------------------------------------------------

    def _upload_file(self) -> None:
        content_type = self.headers.get("Content-Type", "")
        fields = parse_multipart(content_type, self.recorded.raw)
        if fields is None or "file" not in fields:
            self._send_error(400, "Invalid request: expected multipart/form-data with a file", "invalid_request_error")
            return
        file_field = fields["file"]
        purpose_field = fields.get("purpose")
        uploaded = UploadedFile(
            id="file-" + uuid.uuid4().hex[:20],
            filename=file_field.filename or "upload",
            purpose=purpose_field.data.decode(errors="replace") if purpose_field else "",
            data=file_field.data,
            content_type=file_field.content_type,
            created_at=int(time.time()),
        )
        with self.app._lock:
            self.app.files[uploaded.id] = uploaded
        self._send_json(200, uploaded.describe())

    def _file(self, file_id: str, method: str) -> None:
        with self.app._lock:
            uploaded = self.app.files.get(file_id)
            if uploaded is not None and method == "DELETE":
                del self.app.files[file_id]
        if uploaded is None:
            self._send_error(404, f"file {file_id} not found", "resource_not_found_error")
        elif method == "DELETE":
            self._send_json(200, {"id": file_id, "object": "file", "deleted": True})
        else:
            self._send_json(200, uploaded.describe())


@dataclass
class FormField:
    data: bytes
    filename: str | None
    content_type: str


def parse_multipart(content_type: str, raw: bytes) -> dict[str, FormField] | None:
    """multipart/form-data -> fields by name; None when the body is not multipart. Binary-safe."""
    header = Message()
    header["content-type"] = content_type
    boundary = header.get_param("boundary")
    if header.get_content_type() != "multipart/form-data" or not isinstance(boundary, str):
        return None
    fields: dict[str, FormField] = {}
    segments = (b"\r\n" + raw).split(b"\r\n--" + boundary.encode())
    for segment in segments[1:]:
        if segment.startswith(b"--"):
            break  # closing delimiter
        head, _, data = segment.partition(b"\r\n\r\n")
        part = Message()
        for line in head.split(b"\r\n"):
            name, sep, value = line.decode("utf-8", errors="replace").partition(":")
            if sep:
                part[name.strip()] = value.strip()
        field_name = part.get_param("name", header="content-disposition")
        if isinstance(field_name, str):
            filename = part.get_param("filename", header="content-disposition")
            fields[field_name] = FormField(
                data=data,
                filename=filename if isinstance(filename, str) else None,
                content_type=part.get("content-type", "application/octet-stream"),
            )
    return fields


def _has_media(messages: Any) -> bool:
    """Does any message carry an image or a video part?"""
    for message in messages if isinstance(messages, list) else []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list) and any(
            isinstance(part, dict) and part.get("type") in ("image_url", "video_url") for part in content
        ):
            return True
    return False
