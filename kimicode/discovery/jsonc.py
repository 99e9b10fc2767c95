"""JSON with comments and trailing commas (JSONC), as written by Zed and VS Code settings files."""

from __future__ import annotations

import json
from typing import Any


def strip_jsonc(text: str) -> str:
    """Remove // and /* */ comments and trailing commas, leaving string contents untouched."""
    out: list[str] = []
    i = 0
    n = len(text)
    in_string = False
    while i < n:
        char = text[i]
        if in_string:
            out.append(char)
            if char == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 2
                continue
            if char == '"':
                in_string = False
            i += 1
            continue
        if char == '"':
            in_string = True
            out.append(char)
            i += 1
        elif text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end == -1 else end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end == -1 else end + 2
            out.append(" ")
        elif char == ",":
            # A comma followed only by whitespace/comments before a closing bracket is dropped.
            j = _skip_blank_and_comments(text, i + 1)
            if j < n and text[j] in "]}":
                i += 1
            else:
                out.append(char)
                i += 1
        else:
            out.append(char)
            i += 1
    return "".join(out)


def _skip_blank_and_comments(text: str, i: int) -> int:
    n = len(text)
    while i < n:
        if text[i].isspace():
            i += 1
        elif text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end == -1 else end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end == -1 else end + 2
        else:
            break
    return i


def loads_jsonc(text: str) -> Any:
    """Parse JSONC; raises json.JSONDecodeError like json.loads."""
    return json.loads(strip_jsonc(text.lstrip("\ufeff")))
