"""The adaptive rate limiter: AIMD on its own, and a crowd of clients against a server that 429s above a
concurrency threshold."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from kimicode.config import Config
from kimicode.llm.client import ChatClient
from kimicode.llm.limiter import AdaptiveLimiter
from kimicode.llm.profiles import profile_for
from tests.fake_llm import FakeLLM, Reply


def test_grows_only_while_callers_wait_and_halves_once_per_window() -> None:
    async def scenario() -> None:
        limiter = AdaptiveLimiter(2)
        grants = [await limiter.acquire(), await limiter.acquire()]
        assert limiter.try_acquire() is None  # full: this window is saturated
        for grant in grants:
            limiter.release(grant, "ok")
        assert limiter.limit == 3  # a window of 2 successes with someone waiting: +1
        for _ in range(3):
            limiter.release(await limiter.acquire(), "ok")
        assert limiter.limit == 3  # nobody waited: no reason to grow

        grants = [await limiter.acquire() for _ in range(3)]
        limiter.release(grants[0], "throttled")
        limiter.release(grants[1], "throttled")  # same burst: not halved again
        assert limiter.limit == 1 and limiter.throttled == 2
        limiter.release(grants[2], "ok")

        limiter.release(await limiter.acquire(), "throttled", retry_after=0.2)
        started = time.monotonic()
        limiter.release(await limiter.acquire(), "ok")
        assert time.monotonic() - started >= 0.15  # Retry-After holds every new request back

    asyncio.run(scenario())


async def until(condition: Callable[[], bool]) -> None:
    """Let the event loop run until ``condition`` holds: ordered by what happened, never by a clock."""
    for _ in range(100):
        if condition():
            return
        await asyncio.sleep(0)  # one turn of the loop
    raise AssertionError("the condition did not hold within 100 turns of the event loop")


def test_a_waiting_caller_gets_the_next_free_slot() -> None:
    async def scenario() -> None:
        limiter = AdaptiveLimiter(1)
        first = await limiter.acquire()
        waiting = asyncio.ensure_future(limiter.acquire())
        await until(lambda: len(limiter._waiters) == 1)  # it has found the limit full and queued
        assert not waiting.done()
        limiter.release(first, "ok")
        await until(waiting.done)
        limiter.release(waiting.result(), "ok")
        assert limiter.in_flight == 0

    asyncio.run(scenario())


def test_a_caller_woken_then_cancelled_passes_its_turn_to_the_next() -> None:
    async def scenario() -> None:
        limiter = AdaptiveLimiter(1, ceiling=1)  # one slot that no success can widen
        held = await limiter.acquire()
        woken = asyncio.ensure_future(limiter.acquire())
        await until(lambda: len(limiter._waiters) == 1)
        behind = asyncio.ensure_future(limiter.acquire())
        await until(lambda: len(limiter._waiters) == 2)  # both suspended, in this order
        limiter.release(held, "ok")  # the one free slot goes to `woken`...
        woken.cancel()  # ...which is cancelled before it runs to take it
        await until(woken.done)
        assert woken.cancelled()
        await until(behind.done)  # without the hand-over nobody would release again: `behind` would wait forever
        limiter.release(behind.result(), "ok")
        assert limiter.in_flight == 0 and not limiter._waiters

    asyncio.run(scenario())


def test_a_crowd_of_clients_finds_the_servers_concurrency_without_a_storm_of_429s() -> None:
    start, server_limit, callers, requests_each = 2, 6, 24, 6
    with FakeLLM() as server:
        server.concurrency_limit = server_limit
        server.throttle_retry_after = 0.05
        server.responder = lambda request: Reply(content="ok", delay=0.03)
        config = Config(api_key="k", base_url=server.base_url, swarm_concurrency=start, max_retries=20,
                        retry_base_delay=0.01)
        client = ChatClient(config, profile_for(config.model))

        async def caller() -> None:
            for _ in range(requests_each):
                reply = await client.complete([{"role": "user", "content": "hi"}], [], thinking=False)
                assert reply.content == "ok"

        async def crowd() -> None:
            await asyncio.gather(*(caller() for _ in range(callers)))

        asyncio.run(crowd())
        stats = client.limiter.stats()
        served = callers * requests_each
        # grew from 2 to what the server allows, and was never allowed far past it
        assert stats.peak >= server_limit
        assert server.max_in_flight == server_limit
        # backed off: every 429 the server sent was seen by the limiter, and they stayed few
        assert stats.throttled == server.throttled
        assert 0 < server.throttled <= served // 6, f"{server.throttled} 429s for {served} requests"

