"""How a batch shows itself: live progress for people, one JSON event per state change for machines, and
the summary table (also printed again by `kimicode batch --report OUT`)."""

from __future__ import annotations

import json
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
    from rich.console import Console
    from rich.table import Table

    table = Table(title=plural(len(records), "task"), title_justify="left")
    for name, justify in (("id", "left"), ("status", "left"), ("steps", "right"), ("tokens", "right"),
                          ("cost", "right"), ("time", "right"), ("reason / result", "left")):
        table.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    cost_total, tokens_total = 0.0, 0
    for record in records:
        usage = record.get("usage") or {}
        tokens = int(usage.get("input_tokens", 0) or 0) + int(usage.get("output_tokens", 0) or 0)
        cost = float(usage.get("cost_usd", 0.0) or 0.0)
        tokens_total += tokens
        cost_total += cost
        text = record.get("reason") or str(record.get("result", "")).strip()
        table.add_row(
            str(record.get("id")),
            str(record.get("status")),
            str(record.get("num_steps", 0)),
            f"{tokens:,}",
            f"${cost:.4f}",
            _duration(record.get("duration_ms", 0) / 1000),
            (text.splitlines() or [""])[0][:120],
        )
    done = sum(1 for r in records if r.get("status") == "done")
    table.caption = f"{done} done, {len(records) - done} failed · {tokens_total:,} tokens · ${cost_total:.4f}"
    table.caption_justify = "left"
    Console(file=out, width=max(100, Console(file=out).width), no_color=True).print(table)


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
