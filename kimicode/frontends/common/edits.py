"""What an edit tool's call would leave in its file: shown as a diff with the question that asks to allow it
(in an editor over ACP, in a browser or an HTTP client)."""

from __future__ import annotations

from typing import Any


def edited_text(tool: str, args: dict[str, Any], before: str | None) -> str | None:
    """The text an edit call would leave (None when it would fail: no unique match, a bad line)."""
    from kimicode.tools.insert import insert_after_line
    from kimicode.tools.strreplace import match_starts

    if tool == "createfile":
        content = args.get("content")
        return content if isinstance(content, str) else None
    if before is None:
        return None
    text = before.replace("\r\n", "\n")
    if tool == "strreplace":
        old, new = args.get("old_str"), args.get("new_str")
        if not isinstance(old, str) or not isinstance(new, str) or not old:
            return None
        starts = match_starts(text, old.replace("\r\n", "\n"))
        if len(starts) != 1:
            return None
        return text[: starts[0]] + new.replace("\r\n", "\n") + text[starts[0] + len(old.replace("\r\n", "\n")) :]
    if tool == "insert":
        line, new = args.get("insert_line"), args.get("new_str")
        if not isinstance(line, int) or not isinstance(new, str) or not new:
            return None
        return insert_after_line(text, line, new.replace("\r\n", "\n"))
    return None
