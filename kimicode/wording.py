"""Counted nouns as people write them: "1 tool", "2 tools", "1 entry", "3 entries"."""

from __future__ import annotations

_IRREGULAR = {"entry": "entries", "this": "these", "matches": "matches", "match": "matches"}


def plural(count: int, noun: str, many: str | None = None) -> str:
    """``count`` and ``noun`` in the form the count asks for; ``many`` when the plural is not noun + "s"."""
    if count == 1:
        return f"{count} {noun}"
    return f"{count} {many or _IRREGULAR.get(noun) or noun + 's'}"
