"""The HTTP routes (DESIGN.md B.15) over the Hub: sessions, turns, approvals, events as server-sent events.

Invariants:
- Every answer is JSON (but the event stream and the web UI's files); a bad request is one ``{"error"}``
  with a 4xx status, never a traceback.
- The event stream starts after ``Last-Event-ID`` (or ``?after=N``), else at the oldest buffered event, so
  a client that posts a message and then connects misses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from kimicode import jsontext
from kimicode.frontends.web.eventlog import last_event_id, sse_message
from kimicode.frontends.web.hub import Hub
from kimicode.frontends.web.session import SessionError

STATIC = Path(__file__).with_name("static")
Handler = Callable[[Request], Awaitable[Response]]
# The largest request body taken (a message with a few screenshots as data URLs).
MAX_BODY = 32 * 1024 * 1024
# The page runs only its own scripts: nothing inline, nothing from elsewhere, pictures only as data URLs.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _body(request: Request) -> dict[str, Any]:
    if int(request.headers.get("content-length") or 0) > MAX_BODY:
        raise SessionError(413, f"the request is over {MAX_BODY // 1024 // 1024} MB")
    raw = await request.body()
    if not raw:
        return {}
    try:
        body = jsontext.loads(raw)
    except ValueError:
        raise SessionError(400, "the body is not JSON") from None
    if not isinstance(body, dict):
        raise SessionError(400, "the body must be a JSON object")
    return body


def _text(body: dict[str, Any], key: str, required: bool = True) -> str:
    value = body.get(key, "")
    if not isinstance(value, str) or (required and not value.strip()):
        raise SessionError(400, f"give {key!r} as a non-empty string")
    return value


def build_app(hub: Hub) -> Starlette:
    def handled(handler: Handler) -> Handler:
        async def run(request: Request) -> Response:
            try:
                return await handler(request)
            except SessionError as exc:
                return _error(exc.status, str(exc))

        return run

    def session_of(request: Request) -> Any:
        return hub.get(request.path_params["sid"])

    async def index(request: Request) -> Response:
        headers = {"cache-control": "no-store", "content-security-policy": CSP, "x-frame-options": "DENY"}
        return FileResponse(STATIC / "index.html", headers=headers)

    async def openapi(request: Request) -> Response:
        from kimicode.frontends.web.openapi import document

        return JSONResponse(document())

    async def workspaces(request: Request) -> Response:
        return JSONResponse({"workspaces": [str(path) for path in hub.workspaces]})

    async def list_sessions(request: Request) -> Response:
        return JSONResponse({"sessions": hub.listing()})

    async def create(request: Request) -> Response:
        body = await _body(request)
        resume = body.get("resume")
        if resume is not None and not isinstance(resume, str):
            raise SessionError(400, "'resume' must be a session id")
        session = await hub.create(body.get("workspace", ""), resume)
        return JSONResponse(session.describe(), status_code=201)

    async def get(request: Request) -> Response:
        sid = request.path_params["sid"]
        if sid in hub.sessions:
            return JSONResponse(hub.sessions[sid].describe())
        return JSONResponse(hub.stored(sid))

    async def delete(request: Request) -> Response:
        await hub.delete(request.path_params["sid"])
        return JSONResponse({"deleted": request.path_params["sid"]})

    async def fork(request: Request) -> Response:
        session = await hub.fork(request.path_params["sid"])
        return JSONResponse(session.describe(), status_code=201)

    async def messages(request: Request) -> Response:
        session = session_of(request)
        body = await _body(request)
        text = _text(body, "text", required=False)
        urls = body.get("images") or []
        if not isinstance(urls, list):
            raise SessionError(400, "'images' must be a list of data URLs")
        images = await asyncio.to_thread(session.images_of, urls) if urls else []  # decoding: off the loop
        first = session.send(text, images)
        return JSONResponse({"accepted": True, "first_event_id": first}, status_code=202)

    async def steer(request: Request) -> Response:
        session_of(request).steer(_text(await _body(request), "text"))
        return JSONResponse({"accepted": True}, status_code=202)

    async def cancel(request: Request) -> Response:
        return JSONResponse({"cancelled": session_of(request).cancel()})

    async def approval(request: Request) -> Response:
        body = await _body(request)
        reason = body.get("reason") or ""
        if not isinstance(reason, str):
            raise SessionError(400, "'reason' must be a string")
        session_of(request).answer(request.path_params["call_id"], _text(body, "decision"), reason)
        return JSONResponse({"answered": True})

    async def mode(request: Request) -> Response:
        session = session_of(request)
        await session.set_mode(_text(await _body(request), "mode"))
        return JSONResponse(session.describe())

    async def model(request: Request) -> Response:
        session = session_of(request)
        await session.set_model(_text(await _body(request), "model"))
        return JSONResponse(session.describe())

    async def transcript(request: Request) -> Response:
        return JSONResponse({"messages": session_of(request).transcript()})

    async def changes(request: Request) -> Response:
        return JSONResponse(await asyncio.to_thread(session_of(request).changes))

    async def events(request: Request) -> Response:
        log = session_of(request).events
        after = last_event_id(request.headers.get("last-event-id"), request.query_params.get("after"))

        async def stream() -> AsyncIterator[bytes]:
            async for item in log.follow(after):
                yield sse_message(item)

        headers = {"cache-control": "no-store", "x-accel-buffering": "no"}
        return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)

    sid = "/sessions/{sid}"
    routes = [
        Route("/", index),
        Route("/openapi.json", handled(openapi)),
        Route("/workspaces", handled(workspaces)),
        Route("/sessions", handled(list_sessions), methods=["GET"]),
        Route("/sessions", handled(create), methods=["POST"]),
        Route(sid, handled(get), methods=["GET"]),
        Route(sid, handled(delete), methods=["DELETE"]),
        Route(f"{sid}/fork", handled(fork), methods=["POST"]),
        Route(f"{sid}/messages", handled(messages), methods=["POST"]),
        Route(f"{sid}/steer", handled(steer), methods=["POST"]),
        Route(f"{sid}/cancel", handled(cancel), methods=["POST"]),
        Route(f"{sid}/approvals/{{call_id}}", handled(approval), methods=["POST"]),
        Route(f"{sid}/mode", handled(mode), methods=["POST"]),
        Route(f"{sid}/model", handled(model), methods=["POST"]),
        Route(f"{sid}/transcript", handled(transcript), methods=["GET"]),
        Route(f"{sid}/changes", handled(changes), methods=["GET"]),
        Route(f"{sid}/events", handled(events), methods=["GET"]),
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
    ]
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await hub.close_all()  # turns cancelled, their commands killed, logs closed

    return Starlette(routes=routes, lifespan=lifespan)
