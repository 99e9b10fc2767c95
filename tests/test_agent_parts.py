"""The agent loop's pure parts on their own: the reply budget, the context meter, the event stream."""

from __future__ import annotations

import asyncio

import pytest

from kimicode.agent import events as ev
from kimicode.agent.accounting import MIN_REPLY_TOKENS, ContextMeter, approx_chars, reply_budget
from kimicode.agent.callbacks import Emit
from kimicode.agent.stream import pulled
from kimicode.llm.messages import user_message


def test_reply_budget_is_what_the_window_has_left_within_the_models_limits() -> None:
    assert reply_budget(100_000, 8_000, 10_000, 0) == 8_000  # plenty left: the model's own limit
    assert reply_budget(100_000, 8_000, 95_000, 0) == 100_000 - 95_000 - 256
    assert reply_budget(100_000, 8_000, 99_900, 0) == MIN_REPLY_TOKENS  # full: still room to answer
    # Before the endpoint has counted, the tool schemas' estimate is set aside too.
    assert reply_budget(100_000, 8_000, 95_000, 1_000) == 100_000 - 96_000 - 256


def test_the_endpoints_count_replaces_the_estimate_until_more_is_appended() -> None:
    first = user_message("x" * 400)
    meter = ContextMeter([first])
    assert not meter.measured and meter.tokens == approx_chars(first) // 4
    meter.count(5_000)
    assert meter.measured and meter.tokens == 5_000
    meter.add(user_message("y" * 400))
    assert meter.tokens == 5_000 + approx_chars(user_message("y" * 400)) // 4
    meter.restart([first])
    assert not meter.measured and meter.tokens == approx_chars(first) // 4


def _done() -> ev.Done:
    return ev.Done(ev.RunResult("success", "ok", submitted=False, num_steps=1))


def test_events_arrive_in_order_and_end_with_done() -> None:
    async def drive(emit: Emit) -> None:
        emit(ev.StepStart(1))
        emit(ev.TextDelta("hi"))
        emit(_done())

    async def read() -> list[ev.Event]:
        return [event async for event in pulled(drive)]

    events = asyncio.run(read())
    assert [type(e) for e in events] == [ev.StepStart, ev.TextDelta, ev.Done]


def test_closing_the_stream_early_cancels_the_run() -> None:
    cancelled = asyncio.Event()

    async def drive(emit: Emit) -> None:
        emit(ev.StepStart(1))
        try:
            await asyncio.Event().wait()  # a run that would never end by itself
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def read_one_and_close() -> None:
        stream = pulled(drive)
        assert isinstance(await anext(stream), ev.StepStart)
        await stream.aclose()

    asyncio.run(read_one_and_close())
    assert cancelled.is_set()


def test_a_run_that_dies_without_done_hands_over_its_events_then_its_error() -> None:
    async def drive(emit: Emit) -> None:
        emit(ev.StepStart(1))
        raise RuntimeError("broken")

    seen: list[ev.Event] = []

    async def read() -> None:
        async for event in pulled(drive):
            seen.append(event)

    with pytest.raises(RuntimeError, match="broken"):
        asyncio.run(read())
    assert [type(e) for e in seen] == [ev.StepStart]


def test_every_event_queued_before_the_run_died_is_handed_over_before_its_error() -> None:
    async def drive(emit: Emit) -> None:
        for step in range(1, 6):
            emit(ev.StepStart(step))
        await asyncio.sleep(0)  # the reader may take some while the run goes on
        emit(ev.TextDelta("last words"))
        raise RuntimeError("broken")

    seen: list[ev.Event] = []

    async def read() -> None:
        async for event in pulled(drive):
            seen.append(event)

    with pytest.raises(RuntimeError, match="broken"):
        asyncio.run(read())
    assert [getattr(e, "step", None) for e in seen] == [1, 2, 3, 4, 5, None]
    assert isinstance(seen[-1], ev.TextDelta)
