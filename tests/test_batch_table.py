"""The summary table a batch prints at its end: drawn without rich when that gives the very bytes rich gives."""

from __future__ import annotations

import io
from typing import Any

import pytest

from kimicode.manage import batch_view


def _record(n: int, status: str = "done", text: str = "Wrote done.txt and checked it.", **extra: Any) -> dict[str, Any]:
    record: dict[str, Any] = {"id": f"t{n:03d}", "status": status, "num_steps": n % 7,
                              "usage": {"input_tokens": 1234 * n, "output_tokens": 56, "cost_usd": 0.0013 * n},
                              "duration_ms": 812 * n, **extra}
    record["reason" if status == "failed" else "result"] = text
    return record


def _by_rich(records: list[dict[str, Any]]) -> str:
    """What rich itself prints for these records (the table as it always was)."""
    out = io.StringIO()
    rows = [batch_view._row(r) for r in records]
    done = sum(1 for r in records if r.get("status") == "done")
    tokens = sum(batch_view._tokens(r) for r in records)
    cost = sum(batch_view._cost(r) for r in records)
    caption = f"{done} done, {len(records) - done} failed · {tokens:,} tokens · ${cost:.4f}"
    batch_view._rich_table(rows, batch_view.plural(len(records), "task"), caption, out)
    return out.getvalue()


def _printed(records: list[dict[str, Any]]) -> tuple[str, bool]:
    """The table print_table prints, and whether it was drawn without rich."""
    out = io.StringIO()
    batch_view.print_table(records, out)
    rows = [batch_view._row(r) for r in records]
    return out.getvalue(), batch_view._plain(rows, "x", "x", io.StringIO())


CASES = {
    "none": [],
    "one": [_record(1)],
    "hundred": [_record(n) for n in range(100)],
    "failures": [_record(1), _record(2, "failed", "checkout: /x is not a git repository (fatal)"),
                 _record(3, "failed", "timed out after 30s (during agent)"), _record(4, text="")],
    "multi-line result": [_record(5, text="first line\nsecond line")],
    "long hours": [_record(9999, duration_ms=3 * 3600 * 1000)],
    "too wide": [_record(1, text="y" * 90)],
    "markup": [_record(1, text="[bold]not bold[/bold]")],
    "emoji code": [_record(1, text="done :thumbs_up: ok")],
    "wide characters": [_record(1, text="完成了 ✅")],
    "odd id": [{"id": None, "status": "done", "result": 42}],
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_table_is_the_one_rich_prints(case: str) -> None:
    printed, _ = _printed(CASES[case])
    assert printed == _by_rich(CASES[case])


def test_usual_tables_are_drawn_without_rich_and_the_rest_with_it() -> None:
    assert _printed(CASES["hundred"])[1] and _printed(CASES["failures"])[1]
    for case in ("too wide", "markup", "emoji code", "wide characters"):
        assert not _printed(CASES[case])[1], case


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_rich_as_before() -> None:
    assert not batch_view._plain([batch_view._row(_record(1))], "1 task", "c", _Terminal())
