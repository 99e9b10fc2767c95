"""``cat -n`` style numbering, shared by view and the editing tools' result snippets."""

from __future__ import annotations

# Lines of context shown around an edit.
SNIPPET_CONTEXT = 4


def numbered(lines: list[str], first_line: int) -> str:
    """Each line as ``%6d\\t<line>``, numbered from ``first_line``."""
    return "\n".join(f"{n:6d}\t{line}" for n, line in enumerate(lines, start=first_line))


def snippet(text: str, first_line: int, last_line: int, context: int = SNIPPET_CONTEXT) -> str:
    """Lines ``first_line``..``last_line`` (1-based) of ``text`` with ``context`` lines around them."""
    lines = text.split("\n")
    if text.endswith("\n"):
        lines.pop()
    start = max(1, first_line - context)
    end = min(len(lines), max(last_line, first_line) + context)
    return numbered(lines[start - 1 : end], start)
