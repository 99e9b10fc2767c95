"""Markdown for streamed answers, one line at a time.

A reply is rendered as its lines complete, so nothing already on screen is ever repainted (no flicker, a
clean scrollback) while headings, lists, emphasis, inline code and fenced code blocks still read as such.
"""

from __future__ import annotations

import re
from typing import Any

from rich.cells import cell_len
from rich.text import Text

_INLINE = re.compile(r"(`[^`]+`|\*\*[^*]+\*\*|__[^_]+__|(?<![\w*])\*[^*\s][^*]*\*(?!\w)|\[[^\]]+\]\([^)]+\))")
_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
_BULLET = re.compile(r"^(\s*)[-*+]\s+(.*)$")
_NUMBERED = re.compile(r"^(\s*)(\d+)[.)]\s+(.*)$")
_TABLE_RULE = re.compile(r"^\s*:?-{1,}:?\s*$")
# Columns a fenced code line loses to its "  │ " frame.
CODE_FRAME = 4


def screen_cut(line: str, width: int) -> int:
    """Where a line wider than ``width`` cells is cut so that its first part fills one screen line: at the
    last space that fits (words are never split), or mid-word only for a word longer than the screen."""
    width = max(width, 1)
    if line.isascii():
        fit = width
    else:  # wide characters (CJK) take two cells
        fit, cells = 0, 0
        while fit < len(line) and cells + cell_len(line[fit]) <= width:
            cells += cell_len(line[fit])
            fit += 1
    if fit >= len(line):
        return len(line)
    if line[fit] == " ":
        return fit
    space = line.rfind(" ", 0, fit)
    return space if space > 0 else max(fit, 1)


def table_cells(row: str) -> list[str]:
    inner = row.strip()
    inner = inner[1:] if inner.startswith("|") else inner
    inner = inner[:-1] if inner.endswith("|") else inner
    return [cell.strip() for cell in inner.split("|")]


def table(rows: list[str]) -> Any:
    """A rich Table for markdown table rows (header, rule, body), or None when they are not one."""
    if len(rows) < 2 or not all(_TABLE_RULE.match(cell) for cell in table_cells(rows[1])):
        return None
    from rich import box
    from rich.table import Table

    header, rule = table_cells(rows[0]), table_cells(rows[1])
    grid = Table(box=box.ROUNDED, show_lines=False, header_style="bold")
    for index, name in enumerate(header):
        marks = rule[index] if index < len(rule) else ""
        justify = "center" if marks.startswith(":") and marks.endswith(":") else "right" if marks.endswith(":") else "left"
        grid.add_column(inline(name), justify=justify)  # type: ignore[arg-type]
    for row in rows[2:]:
        cells = table_cells(row)
        grid.add_row(*(inline(cell) for cell in (cells + [""] * len(header))[: len(header)]))
    return grid


def inline(text: str, base: str = "") -> Text:
    """Inline markdown (code, bold, italic, links) as styled text."""
    out = Text(style=base)
    position = 0
    for match in _INLINE.finditer(text):
        out.append(text[position : match.start()])
        token = match.group(0)
        if token.startswith("`"):
            out.append(token[1:-1], style="cyan")
        elif token.startswith(("**", "__")):
            out.append(token[2:-2], style="bold")
        elif token.startswith("["):
            label, url = token[1:].split("](", 1)
            out.append(label, style="underline")
            out.append(f" ({url[:-1]})", style="dim")
        else:
            out.append(token[1:-1], style="italic")
        position = match.end()
    out.append(text[position:])
    return out


class MarkdownLines:
    """Turns a stream of text into styled lines; keeps the state that spans lines (code fences)."""

    def __init__(self) -> None:
        self._pending = ""
        self._in_code = False
        self._syntax: Any = None  # the open code block's highlighter (its fence named a language)

    def feed(self, text: str) -> list[Text]:
        """Styled lines completed by this piece of text."""
        self._pending += text
        *complete, self._pending = self._pending.split("\n")
        return [self.line(line) for line in complete]

    def flush(self) -> list[Text]:
        """The unfinished last line, if any; the state resets for the next reply."""
        rest, self._pending = self._pending, ""
        lines = [self.line(rest)] if rest else []
        self._in_code = False
        self._syntax = None
        return lines

    @property
    def in_code(self) -> bool:
        return self._in_code

    def table_row(self, line: str) -> bool:
        """Whether ``line`` belongs to a markdown table (held back until the table is complete)."""
        return not self._in_code and line.lstrip().startswith("|")

    def line(self, line: str) -> Text:
        if line.lstrip().startswith("```"):
            self._in_code = not self._in_code
            language = line.strip()[3:]
            self._syntax = _highlighter(language) if self._in_code and language else None
            return Text(f"  ╭ {language}" if self._in_code and language else ("  ╭" if self._in_code else "  ╰"), style="dim")
        if self._in_code:
            if self._syntax is not None:
                coloured = self._syntax.highlight(line)
                coloured.rstrip()
                return Text.assemble(("  │ ", "dim"), coloured)
            return Text(f"  │ {line}", style="green")
        heading = _HEADING.match(line)
        if heading:
            return inline(heading.group(2), "bold underline" if len(heading.group(1)) <= 2 else "bold")
        bullet = _BULLET.match(line)
        if bullet:
            return Text(f"{bullet.group(1)}• ").append_text(inline(bullet.group(2)))
        numbered = _NUMBERED.match(line)
        if numbered:
            return Text(f"{numbered.group(1)}{numbered.group(2)}. ").append_text(inline(numbered.group(3)))
        if line.startswith(">"):
            return inline(line[1:].lstrip(), "italic dim")
        return inline(line)


def _highlighter(language: str) -> Any:
    """Line-by-line syntax colouring for a fenced block (each line as it completes), None if unknown."""
    from rich.syntax import Syntax

    name = language.split()[0] if language.split() else ""
    syntax = Syntax("", name, theme="ansi_dark", background_color="default")
    return syntax if name and syntax.lexer is not None else None
