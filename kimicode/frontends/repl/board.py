"""The swarm board: one line per sub-agent (role, state, steps, last tool), for a live view in the REPL.

It only folds SubAgentUpdate events into rows and renders them as plain text lines; the REPL decides
where to draw them and how often (e.g. a prompt-toolkit window or a rich Live region).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kimicode.agent.events import SubAgentUpdate, TodoUpdate
from kimicode.wording import plural

STATE_MARKS = {"queued": "·", "running": "▶", "done": "✓", "failed": "✗", "cancelled": "⊘"}


@dataclass
class BoardRow:
    agent: str
    role: str
    state: str = "queued"
    steps: int = 0
    last_tool: str = ""
    result: str = ""
    todo: list[dict[str, str]] = field(default_factory=list)

    def detail(self) -> str:
        if self.state in ("done", "failed") and self.result:
            return self.result
        if not self.todo:
            return self.last_tool
        done = sum(item["status"] == "done" for item in self.todo)
        now = next((i["content"] for i in self.todo if i["status"] == "in_progress"), "")
        head = f"[{done}/{len(self.todo)}{': ' + now if now else ''}]"
        return f"{head} {self.last_tool}".strip()


class SwarmBoard:
    def __init__(self) -> None:
        self.rows: dict[str, BoardRow] = {}

    def update(self, event: SubAgentUpdate) -> None:
        row = self.rows.setdefault(event.agent, BoardRow(event.agent, event.role))
        row.role, row.state, row.steps = event.role, event.state, max(row.steps, event.steps)
        row.last_tool = event.last_tool or row.last_tool
        row.result = event.result or row.result

    def update_todo(self, event: TodoUpdate) -> None:
        row = self.rows.get(event.agent)
        if row is not None:
            row.todo = list(event.items)

    def clear(self) -> None:
        self.rows.clear()

    @property
    def active(self) -> bool:
        return any(row.state in ("queued", "running") for row in self.rows.values())

    def summary(self) -> str:
        counts: dict[str, int] = {}
        for row in self.rows.values():
            counts[row.state] = counts.get(row.state, 0) + 1
        order = ("running", "queued", "done", "failed", "cancelled")
        parts = [f"{counts[state]} {state}" for state in order if counts.get(state)]
        return f"swarm: {plural(len(self.rows), 'sub-agent')}" + (f" ({', '.join(parts)})" if parts else "")

    def lines(self, width: int = 100, max_rows: int = 30) -> list[str]:
        """The summary, then one line per sub-agent (running first), each clipped to ``width``."""
        rank = {"running": 0, "queued": 1, "failed": 2, "cancelled": 3, "done": 4}
        rows = sorted(self.rows.values(), key=lambda r: (rank.get(r.state, 5), _number(r.agent)))
        out = [_clip(self.summary(), width)]
        for row in rows[:max_rows]:
            mark = STATE_MARKS.get(row.state, "?")
            out.append(_clip(f"{mark} {row.agent:<7} {row.role[:18]:<18} {row.state:<9} {row.steps:>3} steps  {row.detail()}", width))
        if len(rows) > max_rows:
            out.append(f"  … and {len(rows) - max_rows} more")
        return out


def _number(agent_id: str) -> int:
    tail = agent_id.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def _clip(line: str, width: int) -> str:
    line = line.rstrip()
    return line if len(line) <= width else line[: max(width - 1, 0)] + "…"
