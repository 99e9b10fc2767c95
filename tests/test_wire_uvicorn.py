"""kimicode's HTTP transport (llm/wire.py) against an HTTP server nobody here wrote: uvicorn serving a
Starlette app that streams OpenAI-style chat chunks (uvicorn frames a streamed body as chunked transfer
encoding, one chunk per piece the app yields). The real CLI runs a bash step and answers; the test checks
what a user sees (the file, the answer, exit 0) and that both requests came over one kept connection."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from tests.clirun import run_cli, write_home_config


def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    body = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "kimi-k2.5",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return b"data: " + json.dumps(body).encode() + b"\n\n"


def tool_call_reply() -> list[bytes]:
    arguments = json.dumps({"command": "echo made > made.txt"})
    return [
        chunk({"role": "assistant", "content": ""}),
        chunk({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                               "function": {"name": "bash", "arguments": ""}}]}),
        # the arguments in two pieces, as endpoints stream them
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": arguments[:10]}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": arguments[10:]}}]}),
        chunk({}, "tool_calls"),
        b"data: [DONE]\n\n",
    ]


def text_reply(text: str) -> list[bytes]:
    return [chunk({"role": "assistant", "content": ""}), chunk({"content": text}), chunk({}, "stop"), b"data: [DONE]\n\n"]


class Endpoint:
    """The app's state: the bodies it was sent and the client address of each request."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.clients: list[tuple[str, int]] = []

    async def chat(self, request: Request) -> StreamingResponse:
        self.bodies.append(json.loads(await request.body()))
        assert request.client is not None
        self.clients.append((request.client.host, request.client.port))
        pieces = tool_call_reply() if len(self.bodies) == 1 else text_reply("all done")

        async def stream() -> AsyncIterator[bytes]:
            for piece in pieces:
                yield piece
                await asyncio.sleep(0)  # (each piece its own write, as a real endpoint's tokens come)

        return StreamingResponse(stream(), media_type="text/event-stream")


@pytest.fixture()
def endpoint() -> Iterator[tuple[Endpoint, str]]:
    app_state = Endpoint()
    app = Starlette(routes=[Route("/v1/chat/completions", app_state.chat, methods=["POST"])])
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="error", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    try:
        for _ in range(500):  # until it serves (bounded so a failure cannot hang)
            if server.started:
                break
            threading.Event().wait(0.01)
        assert server.started, "uvicorn did not start"
        yield app_state, f"http://127.0.0.1:{port}/v1"
    finally:
        server.should_exit = True
        thread.join(10)
        listener.close()


def test_a_run_against_uvicorn_streams_runs_the_command_and_answers_over_one_connection(
    endpoint: tuple[Endpoint, str], tmp_path: Path
) -> None:
    app_state, base_url = endpoint
    home, ws = tmp_path / "home", tmp_path / "ws"
    ws.mkdir()
    write_home_config(home, "")
    done = run_cli(["-p", "-y", "make the file"], home=home, cwd=ws, base_url=base_url)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("all done")
    assert (ws / "made.txt").read_text() == "made\n"
    assert len(app_state.bodies) == 2
    results = [m for m in app_state.bodies[1]["messages"] if m["role"] == "tool"]
    assert results and results[-1]["tool_call_id"] == "call_1" and "exit code: 0" in results[-1]["content"]
    assert app_state.clients[0] == app_state.clients[1]  # the connection was kept for the second request
