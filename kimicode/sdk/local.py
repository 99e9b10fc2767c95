"""The SDK without a server: sessions run in this process (scripts, notebooks), with the same API and
events as ``kimicode.sdk.Client`` and the same trust, policy, sandbox and approvals as every front end.

    async with LocalClient() as client:
        session = await client.create("/path/to/project")
        async for event in session.send("Explain main.py"):
            ...

The workspaces a LocalClient may open are the folders it is given (default: the current one) and the
folders the user trusts. Settings, key and endpoint come from the environment and KIMICODE_HOME as for any
run; ``flags`` takes the command line's options by name (``{"model": ..., "sandbox": ...}``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from kimicode.sdk import KimicodeError
from kimicode.sdk.events import Done, Event, event_from

__all__ = ["LocalClient", "LocalSession"]


class LocalClient:
    def __init__(self, workspaces: Sequence[str | Path] = (), flags: dict[str, Any] | None = None) -> None:
        from kimicode.frontends.web.hub import Hub

        folders = [Path(path) for path in workspaces] or [Path.cwd()]
        self._hub = Hub(dict(flags or {}), folders)

    async def __aenter__(self) -> LocalClient:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Every session closed: turns cancelled, their commands killed, logs closed."""
        await self._hub.close_all()

    async def create(self, workspace: str | Path, resume: str | None = None) -> LocalSession:
        from kimicode.frontends.web.session import SessionError

        try:
            return LocalSession(self, await self._hub.create(str(workspace), resume))
        except SessionError as exc:
            raise KimicodeError(exc.status, str(exc)) from None

    async def sessions(self) -> list[dict[str, Any]]:
        return self._hub.listing()


class LocalSession:
    def __init__(self, client: LocalClient, session: Any) -> None:
        self.client = client
        self._session = session
        self.id: str = session.id

    @property
    def info(self) -> dict[str, Any]:
        return dict(self._session.describe())

    def _call(self, method: str, *args: Any) -> Any:
        from kimicode.frontends.web.session import SessionError

        try:
            return getattr(self._session, method)(*args)
        except SessionError as exc:
            raise KimicodeError(exc.status, str(exc)) from None

    async def send(self, text: str, images: Sequence[str] = ()) -> AsyncIterator[Event]:
        first = self._call("send", text, self._call("images_of", list(images)))
        async for item in self._session.events.follow(first - 1):
            if item is None:
                continue
            event = event_from(_loads(item[1]), item[0])
            yield event
            if isinstance(event, Done):
                return

    async def approve(self, call_id: str, decision: str = "allow", reason: str = "") -> None:
        self._call("answer", call_id, decision, reason)

    async def deny(self, call_id: str, reason: str = "") -> None:
        await self.approve(call_id, "deny", reason)

    async def steer(self, text: str) -> None:
        self._call("steer", text)

    async def cancel(self) -> bool:
        return bool(self._call("cancel"))

    async def _acall(self, method: str, *args: Any) -> Any:
        from kimicode.frontends.web.session import SessionError

        try:
            return await getattr(self._session, method)(*args)
        except SessionError as exc:
            raise KimicodeError(exc.status, str(exc)) from None

    async def set_mode(self, mode: str) -> None:
        await self._acall("set_mode", mode)

    async def set_model(self, model: str) -> None:
        await self._acall("set_model", model)

    async def transcript(self) -> list[dict[str, Any]]:
        return list(self._session.transcript())

    async def changes(self) -> dict[str, Any]:
        return dict(self._session.changes())

    async def close(self) -> None:
        await self.client._hub.delete(self.id)


def _loads(text: str) -> dict[str, Any]:
    import json

    data = json.loads(text)
    return data if isinstance(data, dict) else {"type": "unknown", "value": data}
