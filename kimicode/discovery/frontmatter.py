"""A small, lenient reader for the YAML frontmatter of SKILL.md files.

PyYAML is not a dependency, and real skill files are often not strict YAML anyway (unquoted colons
in descriptions are common), so this reads the subset skills use: ``key: value`` pairs with plain or
quoted strings, flow lists ``[a, b]``, block lists (``- item``), one level of nested map (``metadata:``)
and folded (``>``) or literal (``|``) blocks.
"""

from __future__ import annotations

import re
from typing import Any

_KEY_LINE = re.compile(r"^([A-Za-z0-9_][A-Za-z0-9_.-]*)\s*:(?:\s+(.*)|\s*)$")


class FrontmatterError(ValueError):
    """The text has no frontmatter block, or the block cannot be read."""


def split_frontmatter(text: str) -> tuple[str, str]:
    """Return (frontmatter, body). Raises FrontmatterError when the file does not start with ``---``."""
    lines = text.lstrip("\ufeff").splitlines()
    if not lines or lines[0].strip() != "---":
        raise FrontmatterError("no frontmatter (the file must start with a '---' line)")
    for index in range(1, len(lines)):
        if lines[index].strip() in ("---", "..."):
            return "\n".join(lines[1:index]), "\n".join(lines[index + 1 :])
    raise FrontmatterError("frontmatter is not closed (no second '---' line)")


def parse_frontmatter(block: str) -> dict[str, Any]:
    """Parse the frontmatter block into a dict of str / list[str] / dict[str, str]."""
    lines = block.splitlines()
    result: dict[str, Any] = {}
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line[0] in " \t":
            continue  # stray indented line with no owner: ignore rather than fail
        match = _KEY_LINE.match(line.rstrip())
        if not match:
            raise FrontmatterError(f"cannot read frontmatter line: {line.strip()!r}")
        key, raw = match.group(1), (match.group(2) or "").strip()
        nested, index = _indented_block(lines, index)
        if raw[:1] in (">", "|"):
            result[key] = _block_scalar(raw, nested)
        elif raw:
            result[key] = _scalar_or_flow_list(raw)
        else:
            result[key] = _nested_value(nested)
    return result


def _indented_block(lines: list[str], index: int) -> tuple[list[str], int]:
    """Collect the following lines that are indented or blank (they belong to the current key)."""
    block: list[str] = []
    while index < len(lines) and (not lines[index].strip() or lines[index][0] in " \t"):
        block.append(lines[index])
        index += 1
    while block and not block[-1].strip():
        block.pop()
    return block, index


def _block_scalar(indicator: str, lines: list[str]) -> str:
    indents = [len(line) - len(line.lstrip()) for line in lines if line.strip()]
    margin = min(indents) if indents else 0
    body = [line[margin:] if line.strip() else "" for line in lines]
    if indicator.startswith("|"):
        return "\n".join(body).strip("\n")
    # Folded: lines join with spaces, blank lines become newlines.
    paragraphs: list[str] = []
    current: list[str] = []
    for line in body:
        if line.strip():
            current.append(line.strip())
        else:
            paragraphs.append(" ".join(current))
            current = []
    paragraphs.append(" ".join(current))
    return "\n".join(p for p in paragraphs if p)


def _nested_value(lines: list[str]) -> Any:
    items = [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
    if not items:
        return ""
    if all(item.startswith("-") for item in items):
        return [_unquote(item[1:].strip()) for item in items]
    mapping: dict[str, Any] = {}
    plain: list[str] = []
    for item in items:
        match = _KEY_LINE.match(item)
        if match:
            mapping[match.group(1)] = _scalar_or_flow_list((match.group(2) or "").strip())
        else:
            plain.append(item)
    if mapping and not plain:
        return mapping
    # A plain value continued on indented lines (multi-line plain scalar).
    return " ".join(items)


def _scalar_or_flow_list(raw: str) -> Any:
    if raw.startswith("[") and raw.endswith("]"):
        inner = raw[1:-1].strip()
        return [_unquote(part.strip()) for part in _split_commas(inner) if part.strip()] if inner else []
    return _unquote(raw)


def _split_commas(text: str) -> list[str]:
    parts: list[str] = []
    current = ""
    quote = ""
    for char in text:
        if quote:
            current += char
            if char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
            current += char
        elif char == ",":
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return parts


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        inner = value[1:-1]
        return (
            inner.replace('\\"', '"').replace("\\n", "\n").replace("\\t", "\t").replace("\\\\", "\\")
        )
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return value[1:-1].replace("''", "'")
    # A trailing comment on a plain value (" #" only, so "C#" or URLs with "#" stay intact).
    comment = value.find(" #")
    if comment != -1:
        value = value[:comment].rstrip()
    return value
