"""What an edit call would write, worked out without running it: the whole file before and after, with the
file's own line endings, as kimicode.tools.filewrite would write them. Approvals show it (the REPL's
numbered diff, ACP's diff content), so what the user allows is what lands on disk.
"""

from __future__ import annotations

from typing import Any

from kimicode.tools.fileio import Splice, TextFile, count_lines, restore_endings


def preview_edit(tool: str, args: dict[str, Any], like: TextFile | None, buffer: str | None = None) -> tuple[str | None, str] | None:
    """(before, after) for an edit call, or None when the call would fail (no unique match, a bad line).

    ``like``: the file as read from disk (None: it does not exist); ``buffer``: an editor's unsaved text for
    it, which the edit would apply to instead."""
    if tool == "createfile":
        content = args.get("content")
        if not isinstance(content, str):
            return None
        return (buffer if buffer is not None else _on_disk(like)), content
    if buffer is None and like is None:
        return None
    text = buffer.replace("\r\n", "\n") if buffer is not None else like.text if like is not None else ""
    edit = _apply(tool, args, text)
    if edit is None:
        return None
    after, splice = edit
    if buffer is not None:
        crlf = buffer.count("\r\n") * 2 > buffer.count("\n")
        return buffer, after.replace("\n", "\r\n") if crlf else after
    assert like is not None
    if like.newline == "\r\n":
        return restore_endings(like.text, like), restore_endings(after, like, splice)
    return like.text, after


def _on_disk(like: TextFile | None) -> str | None:
    if like is None:
        return None
    return restore_endings(like.text, like) if like.newline == "\r\n" else like.text


def _apply(tool: str, args: dict[str, Any], text: str) -> tuple[str, Splice] | None:
    """The edited text (newlines as "\\n") and where it changed, as the tool itself would compute them."""
    from kimicode.tools.insert import insert_after_line, insertion_offset
    from kimicode.tools.strreplace import match_starts

    if tool == "strreplace":
        old, new = args.get("old_str"), args.get("new_str")
        if not isinstance(old, str) or not isinstance(new, str) or not old:
            return None
        old, new = old.replace("\r\n", "\n"), new.replace("\r\n", "\n")
        starts = match_starts(text, old)
        if len(starts) != 1:
            return None
        start = starts[0]
        return text[:start] + new + text[start + len(old) :], (start, len(old), len(new))
    if tool == "insert":
        line, new = args.get("insert_line"), args.get("new_str")
        if not isinstance(line, int) or not isinstance(new, str) or not new or not 0 <= line <= count_lines(text):
            return None
        edited = insert_after_line(text, line, new.replace("\r\n", "\n"))
        return edited, (insertion_offset(text, line), 0, len(edited) - len(text))
    return None
