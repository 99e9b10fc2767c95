"""One adaptive concurrency limit per endpoint, shared by everything that talks to it.

As TCP does it: slow start, then AIMD. The limit starts at ``swarm_concurrency`` (the floor):

- slow start: each successful request adds one slot while a caller is waiting for one (or was turned away
  since the last success), so the limit doubles per window of ``limit`` successes that had demand beyond
  it. A model turn takes seconds, though, and a refusal comes back in one network round trip: so while
  callers wait, a full window the endpoint has held for ``SLOW_START_PROBE`` without refusing any also
  doubles the limit. A swarm of 50 at the default floor of 20 is at full width ~0.2 s in, not one model
  turn later; an endpoint that refuses says so (429) within the probe, which ends slow start as below.
- the first 429 ends slow start for good (``ssthresh`` := the halved limit; slow start also ends when the
  limit reaches ``ssthresh``, the ceiling until then). From there, AIMD: after a window of ``limit``
  successful requests during which callers actually waited for a slot, the limit grows by one.
- a 429 halves the limit (once per window: 429s of requests granted before the last decrease do not halve
  it again) and, with Retry-After, pauses every new request until then. Callers held back by that pause
  are not demand: they never make the limit grow.

Invariants: ``1 <= limit <= ceiling``; ``in_flight`` never exceeds the limit at the moment of the grant;
the limit grows only on a success that saw a caller wanting more, shrinks only on a 429; a caller that is
woken and then cancelled hands its turn to the next. So a fleet finds what the account allows quickly and
without a storm of 429s.

Where the limit lives:
- in-process (one ``AdaptiveLimiter`` per endpoint in this process): swarm sub-agents share it;
- across processes: when ``KIMICODE_LIMITER=host:port`` is set, every request asks a limiter service
  there (kimicode/batch/limiter_service.py) over one TCP connection held for the request's duration; a
  process that dies drops its connection and so its slot. A batch sets it for its agents; on Ray the
  service on each worker forwards to one actor.

``ChatClient`` takes a permit around each model request attempt (kimicode/llm/client.py, one place).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

Outcome = Literal["ok", "throttled", "error"]
LIMITER_ENV = "KIMICODE_LIMITER"
MAX_LIMIT = 1000  # a ceiling only so a runaway count stays printable; accounts cap far lower
# How long a full window must go unrefused before slow start doubles it: a 429 is the endpoint's gateway
# answering at once, one round trip (tens of ms), long before a model turn (seconds) ends.
SLOW_START_PROBE = 0.1


@dataclass
class LimiterStats:
    limit: int  # the limit now
    peak: int  # most requests in flight at once
    throttled: int  # 429s reported
    granted: int  # requests let through

    def as_dict(self) -> dict[str, int]:
        return {"limit": self.limit, "peak": self.peak, "throttled": self.throttled, "granted": self.granted}


class AdaptiveLimiter:
    """The slow-start and AIMD state for one endpoint. ``acquire`` waits for a slot; ``release`` reports how it
    went."""

    def __init__(
        self,
        start: int,
        ceiling: int = MAX_LIMIT,
        clock: Callable[[], float] = time.monotonic,
        probe: float = SLOW_START_PROBE,
    ) -> None:
        self.limit = max(1, min(start, ceiling))
        self.ceiling = ceiling
        self.ssthresh = ceiling  # below it, slow start; the first 429 lowers it to the halved limit
        self.in_flight = 0
        self.peak = 0
        self.throttled = 0
        self.granted = 0
        self._successes = 0
        self._saturated = False  # someone waited for a slot during this window: growing is worth it
        self._turned_away = False  # someone found the limit full since the last success (slow start)
        self._last_decrease = 0  # grant number at the last halving
        self._pause_until = 0.0
        self._clock = clock
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._woken = 0  # waiters handed a slot that have not yet run to take it: the slot is theirs
        self._probe = probe
        self._full_since: float | None = None  # when this window's limit was first found full (slow start)
        self._probe_timer: asyncio.TimerHandle | None = None
        self._probe_loop: asyncio.AbstractEventLoop | None = None  # a timer of a finished loop never fires
        self._probe_due = 0.0  # the loop's time the timer was set for
        self._probed_from = (0, 0)  # (grants made, limit) when the probe last doubled the limit

    def stats(self) -> LimiterStats:
        return LimiterStats(self.limit, self.peak, self.throttled, self.granted)

    @property
    def in_slow_start(self) -> bool:
        return self.limit < self.ssthresh

    def try_acquire(self) -> int | None:
        """A grant number when a slot is free now, else None (and the window counts as saturated)."""
        if self._clock() < self._pause_until:
            return None  # held back by Retry-After: not a sign that the limit is too low
        if self.in_flight + self._woken >= self.limit:
            self._saturated = self._turned_away = True
            if self._full_since is None and self.in_slow_start:
                self._full_since = self._clock()
            return None
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        self.granted += 1
        return self.granted

    async def acquire(self) -> int:
        while True:
            grant = self.try_acquire()
            if grant is not None:
                return grant
            pause = self._pause_until - self._clock()
            if pause > 0:
                await asyncio.sleep(pause)
                continue
            loop = asyncio.get_running_loop()
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.append(waiter)
            self._arm_probe(loop)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._woken -= 1
                    self._wake()  # we were woken but leave: pass the turn on
                raise
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
            self._woken -= 1  # the slot kept for us is taken (or lost to a pause) right below

    def _arm_probe(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._full_since is None or not self.in_slow_start:
            return
        if self._probe_timer is not None and self._probe_loop is loop:
            return
        wait = max(0.0, self._full_since + self._probe - self._clock())
        self._probe_loop = loop
        self._probe_due = loop.time() + wait
        self._probe_timer = loop.call_later(wait, self.probe)

    def probe(self) -> None:
        """Slow start's timed step: double the limit if its full window has gone unrefused for the probe
        time while callers wait (called by a timer; the clock decides, so a test may call it)."""
        self._probe_timer = None
        full_since = self._full_since
        if full_since is None or not self.in_slow_start or not self._waiters:
            return
        if self._clock() < full_since + self._probe or self._clock() < self._pause_until:
            return  # not yet (or the endpoint asked for a pause); the next caller turned away re-arms it
        loop = self._probe_loop
        if loop is not None and loop.is_running() and loop.time() - self._probe_due > self._probe / 2:
            # The timer ran late: this process is busy (still sending the window, say), so a refusal may
            # be waiting unread. Look again once it has kept up for a whole probe time.
            self._full_since = self._clock()
            self._arm_probe(loop)
            return
        self._probed_from = (self.granted, self.limit)
        self._grow(min(self.ssthresh, 2 * self.limit))
        self._wake()
        if self._waiters:  # still wider than the new limit: the next window is full now
            self._full_since = self._clock()
            with contextlib.suppress(RuntimeError):  # no loop: the next caller turned away arms it
                self._arm_probe(asyncio.get_running_loop())

    def _grow(self, limit: int) -> None:
        if limit != self.limit:
            self.limit = limit
            self._full_since = None  # a new window: it must fill and go unrefused again

    def release(self, grant: int, outcome: Outcome, retry_after: float | None = None) -> None:
        self.in_flight = max(0, self.in_flight - 1)
        if outcome == "ok":
            self._successes += 1
            if self.in_slow_start:
                if self._waiters or self._turned_away:
                    self._grow(min(self.ssthresh, self.limit + 1))
                self._turned_away = False
            if self._successes >= self.limit:
                if (self._saturated or self._waiters) and not self.in_slow_start:
                    self.limit = min(self.ceiling, self.limit + 1)
                self._successes = 0
                self._saturated = False
        elif outcome == "throttled":
            self.throttled += 1
            if grant > self._last_decrease:
                granted_then, limit_then = self._probed_from
                # Refused from before the last timed doubling: that doubling came before the refusal was
                # read, so halve what was in force when this request was let through.
                base = limit_then if grant <= granted_then else self.limit
                self._grow(max(1, min(self.limit, base) // 2))
                self._last_decrease = self.granted
                self._successes = 0
            self.ssthresh = min(self.ssthresh, self.limit)
            if retry_after:
                self._pause_until = max(self._pause_until, self._clock() + min(retry_after, 120.0))
        if not self._waiters:
            self._full_since = None  # nobody waits: the window is not full any more
        self._wake()

    def _wake(self) -> None:
        free = self.limit - self.in_flight - self._woken
        while self._waiters and free > 0:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                self._woken += 1
                free -= 1


class Permit(Protocol):
    def done(self, outcome: Outcome, retry_after: float | None = None) -> None: ...


class Limiter(Protocol):
    async def acquire(self) -> Permit: ...

    def stats(self) -> LimiterStats: ...


class _LocalPermit:
    def __init__(self, limiter: AdaptiveLimiter, grant: int) -> None:
        self._limiter = limiter
        self._grant = grant
        self._open = True

    def done(self, outcome: Outcome, retry_after: float | None = None) -> None:
        if self._open:
            self._open = False
            self._limiter.release(self._grant, outcome, retry_after)


class LocalLimiter:
    """The in-process limit: swarm sub-agents of this process share it."""

    def __init__(self, limiter: AdaptiveLimiter) -> None:
        self.limiter = limiter

    async def acquire(self) -> Permit:
        return _LocalPermit(self.limiter, await self.limiter.acquire())

    def stats(self) -> LimiterStats:
        return self.limiter.stats()


class _RemotePermit:
    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer
        self._open = True

    def done(self, outcome: Outcome, retry_after: float | None = None) -> None:
        if not self._open:
            return
        self._open = False
        try:
            self._writer.write(json.dumps({"outcome": outcome, "retry_after": retry_after}).encode() + b"\n")
        except (OSError, RuntimeError):
            pass  # the service is gone: closing the connection releases the slot anyway
        finally:
            self._writer.close()


class RemoteLimiter:
    """Asks a limiter service (``KIMICODE_LIMITER``); falls back to the in-process limit if it is gone."""

    def __init__(self, address: str, key: str, start: int, fallback: LocalLimiter) -> None:
        host, _, port = address.rpartition(":")
        self.host, self.port = host or "127.0.0.1", int(port)
        self.key = key
        self.start = start
        self.fallback = fallback
        self._warned = False
        self._peak_seen = 0
        self._last_limit = start

    async def acquire(self) -> Permit:
        try:
            reader, writer = await asyncio.open_connection(self.host, self.port)
        except OSError as exc:
            return await self._fall_back(exc)
        try:
            writer.write(json.dumps({"key": self.key, "start": self.start}).encode() + b"\n")
            await writer.drain()
            line = await reader.readline()
            granted = json.loads(line) if line else None
        except (OSError, ValueError) as exc:
            writer.close()
            return await self._fall_back(exc)
        except BaseException:
            writer.close()  # cancelled while waiting: the service drops the request
            raise
        if not isinstance(granted, dict):
            writer.close()
            return await self._fall_back(ConnectionError("no grant"))
        self._last_limit = int(granted.get("limit", self._last_limit))
        self._peak_seen = max(self._peak_seen, int(granted.get("in_flight", 0)))
        return _RemotePermit(writer)

    async def _fall_back(self, exc: BaseException) -> Permit:
        if not self._warned:
            self._warned = True
            sys.stderr.write(f"kimicode: rate limiter at {self.host}:{self.port} unreachable ({exc}); limiting locally\n")
        return await self.fallback.acquire()

    def stats(self) -> LimiterStats:
        local = self.fallback.stats()
        return LimiterStats(self._last_limit, max(self._peak_seen, local.peak), local.throttled, local.granted)


_LOCAL: dict[str, AdaptiveLimiter] = {}


def forget_limiters() -> None:
    """Drop this process's limits, so the next run starts from its floor as a fresh process would
    (a benchmark that runs several independent swarms in one process)."""
    _LOCAL.clear()


def limiter_for(endpoint: str, start: int) -> Limiter:
    """This process's limiter for ``endpoint`` (created at ``start`` by its first user)."""
    limiter = _LOCAL.get(endpoint)
    if limiter is None:
        limiter = _LOCAL[endpoint] = AdaptiveLimiter(start)
    local = LocalLimiter(limiter)
    address = os.environ.get(LIMITER_ENV, "").strip()
    if address:
        return RemoteLimiter(address, endpoint, start, local)
    return local
