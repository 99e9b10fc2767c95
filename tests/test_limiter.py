"""The adaptive rate limiter: AIMD on its own, and a crowd of clients against a server that 429s above a
concurrency threshold."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from kimicode.config import Config
from kimicode.llm.client import ChatClient
from kimicode.llm.limiter import SLOW_START_PROBE, AdaptiveLimiter
from kimicode.llm.profiles import profile_for
from tests.fake_llm import FakeLLM, Reply


async def until(condition: Callable[[], bool]) -> None:
    """Let the event loop run until ``condition`` holds: ordered by what happened, never by a clock."""
    for _ in range(100):
        if condition():
            return
        await asyncio.sleep(0)  # one turn of the loop
    raise AssertionError("the condition did not hold within 100 turns of the event loop")


class FakeClock:
    """The limiter's clock, moved by the test: Retry-After is checked by what happens, not by waiting."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def queue_callers(limiter: AdaptiveLimiter, count: int) -> list[asyncio.Future[int]]:
    """``count`` callers asking at once; returns when those beyond the limit are suspended in its queue."""
    callers: list[asyncio.Future[int]] = [asyncio.ensure_future(limiter.acquire()) for _ in range(count)]
    await until(lambda: limiter.in_flight + len(limiter._waiters) == count)
    return callers


async def release_granted(limiter: AdaptiveLimiter, callers: list[asyncio.Future[int]], done: set[int]) -> int:
    """Release every caller granted so far and not yet released, each a success; then let the woken
    callers take their slots. Returns how many were released."""
    window = [i for i, caller in enumerate(callers) if caller.done() and i not in done]
    for i in window:
        limiter.release(callers[i].result(), "ok")
        done.add(i)
    await until(lambda: limiter._woken == 0)
    return len(window)


def test_slow_start_doubles_the_limit_per_saturated_window_until_the_first_429() -> None:
    async def scenario() -> None:
        limiter = AdaptiveLimiter(2, clock=FakeClock())  # no probe time passes: growth by replies alone
        callers = await queue_callers(limiter, 100)
        done: set[int] = set()
        limits, windows = [limiter.limit], []
        for _ in range(4):
            windows.append(await release_granted(limiter, callers, done))
            limits.append(limiter.limit)
        assert limits == [2, 4, 8, 16, 32]  # one more slot per success while callers wait: x2 per window
        assert windows == limits[:-1]  # each window was the whole limit, all of it in flight
        assert limiter.in_flight == 32

        # a 429: the limit halves and slow start is over; from here one more slot per saturated window
        first = next(i for i, caller in enumerate(callers) if caller.done() and i not in done)
        limiter.release(callers[first].result(), "throttled")
        done.add(first)
        assert limiter.limit == 16 and limiter.ssthresh == 16 and not limiter.in_slow_start
        assert limiter._woken == 0  # 31 still in flight: nobody is let in over the halved limit
        assert await release_granted(limiter, callers, done) == 31
        assert limiter.limit == 17  # 31 successes with callers waiting: one window's +1, not x2 per window
        assert limiter.in_flight == 17
        for caller in callers:
            caller.cancel()

    asyncio.run(scenario())


def test_a_swarm_of_the_default_width_has_every_agent_started_after_its_first_window_of_replies() -> None:
    async def scenario() -> None:
        floor = Config(api_key="k").swarm_concurrency
        width = floor * 5 // 2  # 50 agents at the default floor of 20
        limiter = AdaptiveLimiter(floor, clock=FakeClock())  # no probe time passes: growth by replies alone
        requests = await queue_callers(limiter, width)  # every agent's first request, at once
        assert limiter.in_flight == floor

        async def reply(i: int) -> None:
            """Agent ``i``'s request is answered; the agent asks again at once (its next step)."""
            limiter.release(requests[i].result(), "ok")
            requests[i] = asyncio.ensure_future(limiter.acquire())
            # every agent in flight or queued again, and every woken one has taken its slot
            await until(lambda: limiter._woken == 0 and limiter.in_flight + len(limiter._waiters) == width)

        for i in range(floor):  # the first replies: one window
            await reply(i)
        # every agent has started (AIMD alone would have let one more in), and the limit doubled
        assert all(request.done() for request in requests[floor:])
        assert limiter.limit == 2 * floor
        for i in range(floor, 2 * floor):  # the second wave's replies come in: the swarm is at full width
            await reply(i)
        assert limiter.peak == width and limiter.limit >= width and limiter.throttled == 0
        for request in requests:
            request.cancel()

    asyncio.run(scenario())


def test_a_full_window_unrefused_for_the_probe_time_doubles_before_any_reply() -> None:
    async def scenario() -> None:
        clock = FakeClock()
        floor = Config(api_key="k").swarm_concurrency
        width = floor * 5 // 2  # 50 agents at the default floor of 20
        limiter = AdaptiveLimiter(floor, clock=clock)
        requests = await queue_callers(limiter, width)
        full_since = clock.now
        clock.now = full_since + SLOW_START_PROBE / 2
        limiter.probe()
        assert limiter.limit == floor  # not yet held long enough to count as accepted
        clock.now = full_since + SLOW_START_PROBE
        limiter.probe()
        await until(lambda: limiter._woken == 0)
        assert limiter.limit == 2 * floor and limiter.in_flight == 2 * floor  # no reply yet: doubled by time
        limiter.probe()
        assert limiter.limit == 2 * floor  # the new window has not been held for the probe time yet
        clock.now += SLOW_START_PROBE
        limiter.probe()
        await until(lambda: limiter._woken == 0)
        assert limiter.in_flight == width and not limiter._waiters and limiter.throttled == 0
        for request in requests:
            request.cancel()

    asyncio.run(scenario())


def test_a_429_within_the_probe_time_stops_the_timed_doubling() -> None:
    async def scenario() -> None:
        clock = FakeClock()
        limiter = AdaptiveLimiter(20, clock=clock)
        requests = await queue_callers(limiter, 50)
        limiter.release(requests[0].result(), "throttled", retry_after=1.0)  # the endpoint refuses one
        clock.now += SLOW_START_PROBE
        limiter.probe()
        assert limiter.limit == 10 and not limiter.in_slow_start
        assert limiter.in_flight == 19 and len(limiter._waiters) == 30  # nobody let in over the halved limit
        for request in requests:
            request.cancel()

    asyncio.run(scenario())


def test_a_refusal_read_after_a_timed_doubling_halves_the_limit_it_was_sent_under() -> None:
    async def scenario() -> None:
        clock = FakeClock()
        limiter = AdaptiveLimiter(20, clock=clock)
        requests = await queue_callers(limiter, 50)
        first_window = [request.result() for request in requests if request.done()]
        clock.now += SLOW_START_PROBE
        limiter.probe()  # a busy process: the doubling happens before the first window's 429s are read
        await until(lambda: limiter._woken == 0)
        assert limiter.limit == 40 and limiter.in_flight == 40
        limiter.release(first_window[0], "throttled", retry_after=1.0)
        assert limiter.limit == 10 and limiter.ssthresh == 10  # half of the 20 it was refused under, not of 40
        for request in requests:
            request.cancel()

    asyncio.run(scenario())


def test_the_probe_timer_lets_fifty_callers_in_before_any_reply() -> None:
    """The real clock and the loop's timer: 50 callers, none answered, all granted (the old limiter would
    have kept 30 waiting until the first replies)."""

    async def scenario() -> None:
        floor = Config(api_key="k").swarm_concurrency
        width = floor * 5 // 2
        limiter = AdaptiveLimiter(floor)
        requests = [asyncio.ensure_future(limiter.acquire()) for _ in range(width)]
        # the timeout only stops a broken limiter from hanging the test; nothing is released meanwhile
        done, pending = await asyncio.wait(requests, timeout=30)
        assert not pending and limiter.peak == width and limiter.throttled == 0

    asyncio.run(scenario())


def test_nothing_grows_without_callers_waiting() -> None:
    async def scenario() -> None:
        limiter = AdaptiveLimiter(4, clock=FakeClock())
        for _ in range(20):
            limiter.release(await limiter.acquire(), "ok")
        assert limiter.limit == 4 and limiter.in_slow_start

        held = [await limiter.acquire() for _ in range(4)]
        assert limiter.try_acquire() is None  # one caller turned away: worth one more slot
        for grant in held:
            limiter.release(grant, "ok")
        assert limiter.limit == 5

    asyncio.run(scenario())


def test_a_429_halves_once_per_window_and_retry_after_holds_every_request_back() -> None:
    async def scenario() -> None:
        clock = FakeClock()
        limiter = AdaptiveLimiter(8, clock=clock)
        grants = [await limiter.acquire() for _ in range(8)]
        limiter.release(grants[0], "throttled")
        limiter.release(grants[1], "throttled")  # same burst: not halved again
        assert limiter.limit == 4 and limiter.throttled == 2 and not limiter.in_slow_start
        for grant in grants[2:]:
            limiter.release(grant, "ok")

        limiter.release(await limiter.acquire(), "throttled", retry_after=5.0)
        assert limiter.limit == 2
        assert limiter.try_acquire() is None  # held back although no slot is in use
        assert not limiter._saturated  # and that is not demand: the limit must not grow from it
        clock.now += 4.9
        assert limiter.try_acquire() is None
        clock.now += 0.2  # Retry-After has passed
        limiter.release(await limiter.acquire(), "ok")
        assert limiter.in_flight == 0 and limiter.limit == 2

    asyncio.run(scenario())


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



def test_a_swarm_wide_crowd_at_default_settings_against_a_narrower_server_loses_no_request() -> None:
    floor = Config(api_key="k").swarm_concurrency
    server_limit, callers, requests_each = floor // 2, floor * 5 // 2, 4  # 10 at once, 50 callers
    with FakeLLM() as server:
        server.concurrency_limit = server_limit
        server.throttle_retry_after = 0.05
        server.responder = lambda request: Reply(content="ok", delay=0.03)
        config = Config(api_key="k", base_url=server.base_url)  # default retries and floor
        client = ChatClient(config, profile_for(config.model))

        async def caller() -> None:
            for _ in range(requests_each):
                reply = await client.complete([{"role": "user", "content": "hi"}], [], thinking=False)
                assert reply.content == "ok"

        async def crowd() -> None:
            await asyncio.gather(*(caller() for _ in range(callers)))

        asyncio.run(crowd())  # every caller got every reply: none gave up on a 429
        served = callers * requests_each
        assert client.limiter.stats().throttled == server.throttled  # every 429 reached the limiter
        # the first burst at the floor overshoots once; after that the limit stays near what the server allows
        assert server.throttled <= (floor - server_limit) + served // 10, f"{server.throttled} 429s"
