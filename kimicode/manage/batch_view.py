"""How a batch shows itself: live progress for people, one JSON event per state change for machines, and
the summary table (also printed again by `kimicode batch --report OUT`)."""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from kimicode.batch.driver import BatchSummary
from kimicode.batch.results import RESULTS, read_results
from kimicode.wording import plural

LAST_LINE_CHARS = 80


class _Counts:
    def __init__(self) -> None:
        self.total = 0
        self.skipped = 0
        self.done = 0
        self.failed = 0
        self.cost = 0.0
        self.tokens = 0
        self.running: dict[str, str] = {}  # id -> last line
        self.queued = 0
        self.started = time.monotonic()

    def finished(self, record: dict[str, Any]) -> None:
        self.running.pop(record["id"], None)
        if record["status"] == "done":
            self.done += 1
        else:
            self.failed += 1
        usage = record.get("usage") or {}
        self.cost += float(usage.get("cost_usd", 0.0) or 0.0)
        self.tokens += int(usage.get("input_tokens", 0) or 0) + int(usage.get("output_tokens", 0) or 0)

    def headline(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        finished = self.done + self.failed
        rate = finished / elapsed * 60
        left = self.queued + len(self.running)
        eta = f"ETA {_duration(left / (finished / elapsed))}" if finished and left else "ETA –"
        return (
            f"done {self.done} · failed {self.failed} · running {len(self.running)} · queued {self.queued}"
            f" · {self.tokens:,} tokens · ${self.cost:.4f} · {rate:.1f} tasks/min · {eta}"
        )


class TextReporter:
    """A live board on a terminal; plain lines on stderr otherwise. The summary table goes to stdout."""

    def __init__(
        self, out_dir: Path, out: TextIO = sys.stdout, err: TextIO = sys.stderr, live: bool | None = None
    ) -> None:
        self.out_dir = out_dir
        self.out = out
        self.err = err
        self.counts = _Counts()
        self.live_enabled = err.isatty() if live is None else live
        self._live: Any = None

    def begin(self, total: int, skipped: int, queued: list[str], engine: str) -> None:
        c = self.counts
        c.total, c.skipped, c.queued = total, skipped, len(queued)
        already = f", {skipped} already finished" if skipped else ""
        self._say(f"kimicode batch: {plural(total, 'task')}{already}, {len(queued)} to run ({engine})")
        if self.live_enabled:
            from rich.console import Console
            from rich.live import Live

            self._live = Live(self._render(), console=Console(file=self.err), refresh_per_second=4, transient=True)
            self._live.start()

    def running(self, task_id: str) -> None:
        self.counts.queued -= 1
        self.counts.running[task_id] = ""
        if not self._live:
            self._say(f"running {task_id}")
        self._refresh()

    def line(self, task_id: str, text: str) -> None:
        if task_id in self.counts.running:
            self.counts.running[task_id] = text
            self._refresh()

    def finished(self, record: dict[str, Any]) -> None:
        self.counts.finished(record)
        c = self.counts
        seconds = record.get("duration_ms", 0) / 1000
        cost = float((record.get("usage") or {}).get("cost_usd", 0.0) or 0.0)
        what = "done" if record["status"] == "done" else f"failed: {record.get('reason', '')}"
        position = c.skipped + c.done + c.failed
        line = f"[{position}/{c.total}] {record['id']} {what} ({seconds:.1f}s, ${cost:.4f})"
        if self._live:
            self._live.console.print(line, markup=False, highlight=False)
        else:
            self._say(line)
        self._refresh()

    def end(self, summary: BatchSummary) -> None:
        if self._live:
            self._live.stop()
            self._live = None
        print_table(read_results(self.out_dir / RESULTS), self.out)
        self._say(summary_line(summary))

    def _refresh(self) -> None:
        if self._live:
            self._live.update(self._render())

    def _render(self) -> Any:
        from rich.table import Table

        table = Table.grid(padding=(0, 1))
        table.add_row(self.counts.headline())
        for task_id, last in sorted(self.counts.running.items()):
            table.add_row(f"  {task_id}: {last[:LAST_LINE_CHARS]}")
        return table

    def _say(self, line: str) -> None:
        self.err.write(line + "\n")
        self.err.flush()


class JsonReporter:
    """stdout: one JSON object per task state change, then the summary object."""

    def __init__(self, out: TextIO = sys.stdout) -> None:
        self.out = out

    def _emit(self, obj: dict[str, Any]) -> None:
        self.out.write(json.dumps(obj, ensure_ascii=False) + "\n")
        self.out.flush()

    def begin(self, total: int, skipped: int, queued: list[str], engine: str) -> None:
        for task_id in queued:
            self._emit({"type": "task", "id": task_id, "state": "queued"})

    def running(self, task_id: str) -> None:
        self._emit({"type": "task", "id": task_id, "state": "running"})

    def line(self, task_id: str, text: str) -> None:
        return None  # per-line chatter is the agent's log (OUT/<id>/agent.log), not a state change

    def finished(self, record: dict[str, Any]) -> None:
        self._emit({"type": "task", **record, "state": record["status"]})

    def end(self, summary: BatchSummary) -> None:
        self._emit(summary.as_dict())


def summary_line(summary: BatchSummary) -> str:
    ran = summary.done + summary.failed
    parts = [f"{summary.done} done", f"{summary.failed} failed"]
    if summary.skipped:
        parts.append(f"{summary.skipped} finished earlier")
    if summary.not_run:
        parts.append(f"{summary.not_run} not run")
    rate = ran / summary.elapsed * 60 if summary.elapsed > 0 else 0.0
    parts += [f"{summary.tokens:,} tokens", f"${summary.cost:.4f}", f"{_duration(summary.elapsed)}", f"{rate:.1f} tasks/min"]
    limiter = summary.limiter
    if limiter.get("requests"):
        parts.append(
            f"concurrency reached {limiter['concurrency_reached']} (limit now {limiter['concurrency_limit']}, "
            f"{limiter['throttled']} × 429)"
        )
    line = "kimicode batch: " + ", ".join(parts)
    if summary.interrupted:
        line += "; interrupted: rerun the same command to finish"
    elif summary.stopped:
        line += f"; stopped: {summary.stopped}"
    return line


def print_table(records: list[dict[str, Any]], out: TextIO) -> None:
    """The summary table. Drawn here when it is plain text that fits 100 columns and ``out`` is no terminal
    (a batch's usual end: rich costs ~0.1 s of CPU to import and lay out 100 rows, all of it after the last
    task); by rich otherwise, whose output the plain drawing matches byte for byte."""
    rows = [_row(record) for record in records]
    done = sum(1 for r in records if r.get("status") == "done")
    tokens = sum(_tokens(record) for record in records)
    cost = sum(_cost(record) for record in records)
    title = plural(len(records), "task")
    caption = f"{done} done, {len(records) - done} failed · {tokens:,} tokens · ${cost:.4f}"
    if not _plain(rows, title, caption, out):
        _rich_table(rows, title, caption, out)


_COLUMNS = (("id", "left"), ("status", "left"), ("steps", "right"), ("tokens", "right"), ("cost", "right"),
            ("time", "right"), ("reason / result", "left"))
_PLAIN_WIDTH = 100  # the narrowest table rich is given (see _rich_table): within it rich neither folds nor wraps


def _tokens(record: dict[str, Any]) -> int:
    usage = record.get("usage") or {}
    return int(usage.get("input_tokens", 0) or 0) + int(usage.get("output_tokens", 0) or 0)


def _cost(record: dict[str, Any]) -> float:
    return float((record.get("usage") or {}).get("cost_usd", 0.0) or 0.0)


def _row(record: dict[str, Any]) -> list[str]:
    text = record.get("reason") or str(record.get("result", "")).strip()
    return [
        str(record.get("id")),
        str(record.get("status")),
        str(record.get("num_steps", 0)),
        f"{_tokens(record):,}",
        f"${_cost(record):.4f}",
        _duration(record.get("duration_ms", 0) / 1000),
        (text.splitlines() or [""])[0][:120],
    ]


def _plain(rows: list[list[str]], title: str, caption: str, out: TextIO) -> bool:
    """Draw the table as rich would, if it is simple enough to be sure of that; False when not drawn."""
    cells = [cell for row in rows for cell in row]
    # On a terminal rich adds styles; markup (`[`), emoji codes (`:x:`) and wide or control characters change
    # what it prints: all left to rich.
    if _isatty(out) or not all(cell.isascii() and cell.isprintable() and "[" not in cell for cell in cells):
        return False
    if any(":" in cell and _EMOJI_CODE.search(cell) for cell in cells):
        return False
    widths = [max([len(name), *(len(row[n]) for row in rows)]) + 2 for n, (name, _j) in enumerate(_COLUMNS)]
    width = sum(widths) + len(widths) + 1
    if width > _PLAIN_WIDTH or len(title) > width or len(caption) > width:
        return False

    def line(left: str, fill: str, middle: str, right: str) -> str:
        return left + middle.join(fill * w for w in widths) + right

    def cells_line(values: list[str], bar: str) -> str:
        parts = [f" {v.ljust(w - 2) if j == 'left' else v.rjust(w - 2)} "
                 for v, w, (_n, j) in zip(values, widths, _COLUMNS, strict=True)]
        return bar + bar.join(parts) + bar

    lines = [title.ljust(width), line("┏", "━", "┳", "┓"), cells_line([n for n, _j in _COLUMNS], "┃"),
             line("┡", "━", "╇", "┩"), *(cells_line(row, "│") for row in rows), line("└", "─", "┴", "┘"),
             caption.ljust(width)]
    out.write("\n".join(lines) + "\n")
    return True


_EMOJI_CODE = re.compile(r":\S*?:")


def _isatty(out: TextIO) -> bool:
    try:
        return out.isatty()
    except (AttributeError, ValueError):  # a closed or file-like stream: rich decides
        return True


def _rich_table(rows: list[list[str]], title: str, caption: str, out: TextIO) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for name, justify in _COLUMNS:
        table.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for row in rows:
        table.add_row(*row)
    table.caption = caption
    table.caption_justify = "left"
    Console(file=out, width=max(_PLAIN_WIDTH, Console(file=out).width), no_color=True).print(table)


def report(out_dir: Path, stream: TextIO = sys.stdout) -> int:
    path = out_dir / RESULTS
    if not path.is_file():
        sys.stderr.write(f"kimicode: no {RESULTS} in {out_dir}: run a batch with --out {out_dir} first\n")
        return 2
    print_table(read_results(path), stream)
    return 0


def _duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
