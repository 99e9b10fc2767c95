"""JSON with comments and trailing commas (JSONC), as written by Zed and VS Code settings files."""

from __future__ import annotations

from itertools import pairwise
from typing import Any, Literal

from kimicode import jsontext

PieceKind = Literal["string", "line-comment", "block-comment", "blank", "code"]


def pieces(text: str) -> list[tuple[PieceKind, int, int]]:
    """``text`` cut into (kind, start, end) pieces: strings, comments, runs of blanks, and single
    characters of JSON syntax ("code"). An unterminated string or comment runs to the end."""
    found: list[tuple[PieceKind, int, int]] = []
    i = 0
    n = len(text)
    while i < n:
        char = text[i]
        if char == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            found.append(("string", i, min(j + 1, n)))
            i = j + 1
        elif text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end == -1 else end
            found.append(("line-comment", i, end))
            i = end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end == -1 else end + 2
            found.append(("block-comment", i, end))
            i = end
        elif char.isspace() or char == "\ufeff":
            j = i + 1
            while j < n and (text[j].isspace() or text[j] == "\ufeff"):
                j += 1
            found.append(("blank", i, j))
            i = j
        else:
            found.append(("code", i, i + 1))
            i += 1
    return found


def strip_jsonc(text: str) -> str:
    """Remove // and /* */ comments and trailing commas, leaving string contents untouched."""
    cut = pieces(text)
    code = [index for index, (kind, _, _) in enumerate(cut) if kind in ("code", "string")]
    following = dict(pairwise(code))
    out: list[str] = []
    for index, (kind, start, end) in enumerate(cut):
        if kind == "line-comment":
            continue
        if kind == "block-comment":
            out.append(" ")
        elif kind == "code" and text[start] == ",":
            # A comma followed only by blanks and comments before a closing bracket is dropped.
            nxt = following.get(index)
            if nxt is not None and cut[nxt][0] == "code" and text[cut[nxt][1]] in "]}":
                continue
            out.append(",")
        else:
            out.append(text[start:end])
    return "".join(out)


def loads_jsonc(text: str) -> Any:
    """Parse JSONC; raises json.JSONDecodeError like json.loads."""
    return jsontext.loads(strip_jsonc(text.lstrip("\ufeff")))
