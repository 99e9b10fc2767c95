"""One conversation's todo list, as the ``todo`` tool replaces it and the front ends show it.

Below ``base``: the tool context holds one, and nothing here needs the tools.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TodoList:
    items: list[dict[str, str]] = field(default_factory=list)
    version: int = 0

    def replace(self, items: list[dict[str, str]]) -> None:
        self.items = [dict(item) for item in items]
        self.version += 1

    def snapshot(self) -> list[dict[str, str]]:
        return [dict(item) for item in self.items]
