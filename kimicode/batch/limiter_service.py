"""The fleet's rate limiter as a tiny TCP service on 127.0.0.1 (see kimicode/llm/limiter.py).

Protocol, one connection per model request: the client sends ``{"key", "start"}`` (a line of JSON), the
service answers ``{"grant", "limit", "in_flight"}`` when a slot is free, the client sends
``{"outcome", "retry_after"}`` when the request is over. A connection that closes early releases its
slot (``outcome`` "error"), so an agent killed mid-request never leaks one.

The service decides nothing itself; a backend does: the in-process AIMD state (a local batch) or one
Ray actor that every worker's service forwards to (a batch on Ray).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any, Protocol

from kimicode.llm.limiter import AdaptiveLimiter, LimiterStats, Outcome


class Backend(Protocol):
    async def acquire(self, key: str, start: int) -> dict[str, int]: ...

    async def release(self, key: str, grant: int, outcome: Outcome, retry_after: float | None) -> None: ...


class LocalBackend:
    """AIMD limiters by endpoint, held in this process."""

    def __init__(self) -> None:
        self.limiters: dict[str, AdaptiveLimiter] = {}

    def _limiter(self, key: str, start: int) -> AdaptiveLimiter:
        if key not in self.limiters:
            self.limiters[key] = AdaptiveLimiter(start)
        return self.limiters[key]

    async def acquire(self, key: str, start: int) -> dict[str, int]:
        limiter = self._limiter(key, start)
        grant = await limiter.acquire()
        return {"grant": grant, "limit": limiter.limit, "in_flight": limiter.in_flight}

    async def release(self, key: str, grant: int, outcome: Outcome, retry_after: float | None) -> None:
        limiter = self.limiters.get(key)
        if limiter is not None:
            limiter.release(grant, outcome, retry_after)

    def stats(self) -> dict[str, LimiterStats]:
        return {key: limiter.stats() for key, limiter in self.limiters.items()}


def summarize(stats: dict[str, dict[str, int]]) -> dict[str, int]:
    """One line's worth over every endpoint: the peak reached, the limit now, the 429s."""
    values = list(stats.values())
    return {
        "concurrency_reached": max((s["peak"] for s in values), default=0),
        "concurrency_limit": max((s["limit"] for s in values), default=0),
        "throttled": sum(s["throttled"] for s in values),
        "requests": sum(s["granted"] for s in values),
    }


class LimiterService:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._server: asyncio.Server | None = None
        self.address = ""

    async def start(self, host: str = "127.0.0.1") -> str:
        self._server = await asyncio.start_server(self._handle, host, 0)
        port = self._server.sockets[0].getsockname()[1]
        self.address = f"{host}:{port}"
        return self.address

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = _parse(await reader.readline())
            key, start = str(request.get("key", "")), int(request.get("start", 1))
            acquiring = asyncio.ensure_future(self.backend.acquire(key, start))
            hangup = asyncio.ensure_future(reader.readline())
            await asyncio.wait({acquiring, hangup}, return_when=asyncio.FIRST_COMPLETED)
            if not acquiring.done():  # the client left while waiting
                acquiring.cancel()
                with contextlib.suppress(BaseException):
                    await acquiring
                return
            granted = acquiring.result()
            grant = int(granted["grant"])
            outcome: Outcome = "error"
            retry_after: float | None = None
            try:
                writer.write(json.dumps(granted).encode() + b"\n")
                await writer.drain()
                report = _parse(await hangup)
                if report.get("outcome") in ("ok", "throttled", "error"):
                    outcome = report["outcome"]
                    value = report.get("retry_after")
                    retry_after = float(value) if isinstance(value, (int, float)) else None
            except (OSError, ValueError):
                pass
            finally:
                await self.backend.release(key, grant, outcome, retry_after)
        except (OSError, ValueError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


def _parse(line: bytes) -> dict[str, Any]:
    if not line:
        return {}
    value = json.loads(line)
    return value if isinstance(value, dict) else {}
