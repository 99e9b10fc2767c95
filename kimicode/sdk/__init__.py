"""Drive kimicode sessions from Python: over HTTP from a running ``kimicode serve`` (``Client``), or in this
process without a server (``kimicode.sdk.local``). Both give the same sessions and the same typed events.

    async with Client("http://127.0.0.1:5494") as client:  # the token: KIMICODE_HOME/serve.token
        session = await client.create("/path/to/project")
        async for event in session.send("Add a test for parse_date"):
            if event.type == "approval_request":
                await session.approve(event.call_id)

Invariants:
- ``send`` yields the turn's events in order, each once, and ends with its ``Done``; a dropped connection
  is resumed from the last event seen (``Last-Event-ID``).
- A refusal of the server's is one ``KimicodeError`` with its message and status, never a bare HTTP error.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from types import TracebackType
from typing import Any

from kimicode.sdk.events import ApprovalRequest, Done, Event, TextDelta, event_from

__all__ = ["ApprovalRequest", "Client", "Done", "Event", "KimicodeError", "Session", "TextDelta"]

# Reconnections of one turn's event stream before send() gives up.
RECONNECTS = 5
# Where `kimicode serve` keeps its token for local clients, in KIMICODE_HOME (0600).
TOKEN_FILE = "serve.token"


class KimicodeError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def default_token() -> str:
    from kimicode.config import kimicode_home

    try:
        return (kimicode_home() / TOKEN_FILE).read_text(encoding="utf-8").strip()
    except OSError:
        raise KimicodeError(0, "no token given and none saved: start `kimicode serve`, or pass Client(url, token)") from None


class Client:
    def __init__(self, url: str, token: str | None = None, timeout: float = 60.0) -> None:
        import httpx2

        self.url = url.rstrip("/")
        self._http = httpx2.AsyncClient(
            base_url=self.url, headers={"authorization": f"Bearer {token or default_token()}"}, timeout=timeout
        )

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = await self._http.request(method, path, json=body)
        try:
            data = response.json()
        except ValueError:
            data = {"error": response.text[:200]}
        if response.status_code >= 400:
            raise KimicodeError(response.status_code, str(data.get("error", data)) if isinstance(data, dict) else str(data))
        return data

    async def create(self, workspace: str, resume: str | None = None) -> Session:
        """A new session in ``workspace`` (a folder the server was started for), or ``resume`` one by id."""
        body: dict[str, Any] = {"workspace": str(workspace)}
        if resume:
            body["resume"] = resume
        return Session(self, await self.request("POST", "/sessions", body))

    async def sessions(self) -> list[dict[str, Any]]:
        return list((await self.request("GET", "/sessions"))["sessions"])

    async def events(self, session_id: str, after: int) -> AsyncIterator[Event]:
        """The session's events after id ``after``, reconnecting where a dropped stream stopped."""
        import httpx2

        failures = 0
        while True:
            try:
                async with self._http.stream(
                    "GET", f"/sessions/{session_id}/events", headers={"last-event-id": str(after)}
                ) as response:
                    if response.status_code >= 400:
                        await response.aread()
                        raise KimicodeError(response.status_code, response.text[:200])
                    event_id = after
                    async for line in response.aiter_lines():
                        if line.startswith("id: "):
                            event_id = int(line[4:])
                        elif line.startswith("data: "):
                            after = event_id
                            failures = 0
                            yield event_from(json.loads(line[6:]), event_id)
                return
            except (httpx2.TransportError, httpx2.StreamError):
                failures += 1
                if failures > RECONNECTS:
                    raise


class Session:
    def __init__(self, client: Client, info: dict[str, Any]) -> None:
        self.client = client
        self.info = info
        self.id: str = info["id"]

    def _path(self, tail: str = "") -> str:
        return f"/sessions/{self.id}{tail}"

    async def send(self, text: str, images: Sequence[str] = ()) -> AsyncIterator[Event]:
        """Start a turn (images as data URLs) and yield its events up to its ``Done``."""
        accepted = await self.client.request("POST", self._path("/messages"), {"text": text, "images": list(images)})
        async for event in self.client.events(self.id, int(accepted["first_event_id"]) - 1):
            yield event
            if isinstance(event, Done):
                return

    async def approve(self, call_id: str, decision: str = "allow", reason: str = "") -> None:
        """Answer an ``approval_request``: "allow", "allow_session" (this kind of call, for the session) or "deny"."""
        await self.client.request("POST", self._path(f"/approvals/{call_id}"), {"decision": decision, "reason": reason})

    async def deny(self, call_id: str, reason: str = "") -> None:
        await self.approve(call_id, "deny", reason)

    async def steer(self, text: str) -> None:
        await self.client.request("POST", self._path("/steer"), {"text": text})

    async def cancel(self) -> bool:
        return bool((await self.client.request("POST", self._path("/cancel")))["cancelled"])

    async def set_mode(self, mode: str) -> None:
        self.info = await self.client.request("POST", self._path("/mode"), {"mode": mode})

    async def set_model(self, model: str) -> None:
        self.info = await self.client.request("POST", self._path("/model"), {"model": model})

    async def transcript(self) -> list[dict[str, Any]]:
        return list((await self.client.request("GET", self._path("/transcript")))["messages"])

    async def changes(self) -> dict[str, Any]:
        return dict(await self.client.request("GET", self._path("/changes")))

    async def fork(self) -> Session:
        return Session(self.client, await self.client.request("POST", self._path("/fork")))

    async def close(self) -> None:
        await self.client.request("DELETE", self._path())
