"""Helpers to run the demo MCP server in tests: its stdio config, and an HTTP instance on 127.0.0.1."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kimicode.mcp.server_config import McpServerConfig

DEMO_SERVER = Path(__file__).with_name("demo_server.py")


def stdio_config(name: str, *extra: str) -> McpServerConfig:
    """A stdio config for the demo server; a unique --name marks its process for leak checks."""
    marker = f"{name}-{uuid.uuid4().hex[:8]}"
    return McpServerConfig(
        name=name, command=sys.executable, args=[str(DEMO_SERVER), "--name", marker, *extra], source="test"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def http_server(transport: str = "streamable-http", *extra: str) -> Iterator[str]:
    """Run the demo server over HTTP (``extra``: more demo_server flags); yields its URL and stops it afterwards."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(DEMO_SERVER), "--port", str(port), "--transport", transport, *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("demo MCP HTTP server did not start") from None
                time.sleep(0.1)
        path = "/mcp" if transport == "streamable-http" else "/sse"
        yield f"http://127.0.0.1:{port}{path}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def live_processes_with(marker: str) -> list[int]:
    """PIDs of running (non-zombie) processes whose command line contains ``marker``."""
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


@contextmanager
def unauthorized_server() -> Iterator[tuple[str, list[str]]]:
    """An HTTP server on 127.0.0.1 that answers every request 401 with a Bearer challenge, as a remote MCP
    server that wants OAuth does; yields its URL and the Authorization headers it was sent."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    authorizations: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def _refuse(self) -> None:
            authorizations.append(self.headers.get("Authorization", ""))
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            host, port = self.server.server_address[:2]
            metadata = f"http://{host}:{port}/.well-known/oauth-protected-resource/mcp"
            body = b'{"error": "invalid_token"}'
            self.send_response(401)
            self.send_header("WWW-Authenticate", f'Bearer resource_metadata="{metadata}"')
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_DELETE = _refuse

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/mcp", authorizations
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
