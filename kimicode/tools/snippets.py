"""``cat -n`` style numbering, shared by view and the editing tools' result snippets."""

from __future__ import annotations

from kimicode.tools.base import MAX_OUTPUT_CHARS, clip_line, truncate_middle

# Lines of context shown around an edit.
SNIPPET_CONTEXT = 4


def numbered(lines: list[str], first_line: int) -> str:
    """Each line as ``%6d\\t<line>``, numbered from ``first_line``."""
    return "\n".join(f"{n:6d}\t{line}" for n, line in enumerate(lines, start=first_line))


def snippet(
    text: str, first_line: int, last_line: int, context: int = SNIPPET_CONTEXT, focus: int | None = None
) -> str:
    """Lines ``first_line``..``last_line`` (1-based) of ``text`` with ``context`` lines around them.

    Bounded whatever the file: long lines are cut (the one holding offset ``focus``, where the edit is,
    around that spot), and a long region keeps its start and end.
    """
    lines = text.split("\n")
    if text.endswith("\n"):
        lines.pop()
    start = max(1, first_line - context)
    end = min(len(lines), max(last_line, first_line) + context)
    offset = sum(len(line) + 1 for line in lines[: start - 1])  # where line ``start`` begins in ``text``
    shown: list[str] = []
    for line in lines[start - 1 : end]:
        around = focus - offset if focus is not None and offset <= focus <= offset + len(line) else None
        shown.append(clip_line(line, around=around))
        offset += len(line) + 1
    return truncate_middle(numbered(shown, start), MAX_OUTPUT_CHARS - 200, "view the file for the whole region")
