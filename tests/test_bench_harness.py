"""The benchmarks' shared harness: rounds interleave the configurations, the warm-up is dropped, fewer than
three runs are refused, and verdicts hold the median to the target in the right direction."""

from __future__ import annotations

import asyncio

import pytest

from benchmarks.harness import MIN_RUNS, check_runs, interleaved, interleaved_async, stats, target_line, verdict


def test_configurations_take_turns_and_the_warm_up_round_is_dropped() -> None:
    calls: list[str] = []
    counter = {"a": 0.0, "b": 100.0}

    def measure(name: str) -> float:
        calls.append(name)
        counter[name] += 1
        return counter[name]

    got = interleaved({"a": lambda: measure("a"), "b": lambda: measure("b")}, runs=3, warmup=1)

    assert calls == ["a", "b"] * 4
    assert got["a"].samples == (2.0, 3.0, 4.0)  # 1.0 was the warm-up
    assert got["b"].samples == (102.0, 103.0, 104.0)


def test_the_async_rounds_interleave_too() -> None:
    calls: list[str] = []

    async def measure(name: str) -> float:
        calls.append(name)
        return float(len(calls))

    got = asyncio.run(interleaved_async({"x": lambda: measure("x"), "y": lambda: measure("y")}, runs=3, warmup=0))

    assert calls == ["x", "y"] * 3
    assert got["x"].samples == (1.0, 3.0, 5.0)


def test_fewer_than_three_runs_are_refused() -> None:
    with pytest.raises(SystemExit, match=f"at least {MIN_RUNS}"):
        check_runs(MIN_RUNS - 1)
    with pytest.raises(SystemExit):
        interleaved({"a": lambda: 1.0}, runs=2)
    assert check_runs(MIN_RUNS) == MIN_RUNS


def test_median_and_spread() -> None:
    figures = stats([0.004, 0.001, 0.003])

    assert figures.median == 0.003
    assert figures.show(1000, 1, "ms") == "median 3.0 ms (min–max 1.0–4.0, n=3)"


def test_verdicts_face_the_right_way() -> None:
    assert verdict(2.0, 2.0) == "PASS"
    assert verdict(2.1, 2.0) == "MISS"
    assert verdict(25.0, 25.0, higher_is_better=True) == "PASS"
    assert verdict(11.7, 25.0, higher_is_better=True) == "MISS"
    assert target_line("speedup", 11.7, 25.0, "x", higher_is_better=True) == "speedup: 11.7 x, target ≥ 25.0 x: MISS"
