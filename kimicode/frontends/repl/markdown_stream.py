"""Markdown for streamed answers, one line at a time.

A reply is rendered as its lines complete, so nothing already on screen is ever repainted (no flicker, a
clean scrollback) while headings, lists, emphasis, inline code and fenced code blocks still read as such.
"""

from __future__ import annotations

import re

from rich.text import Text

_INLINE = re.compile(r"(`[^`]+`|\*\*[^*]+\*\*|__[^_]+__|(?<![\w*])\*[^*\s][^*]*\*(?!\w)|\[[^\]]+\]\([^)]+\))")
_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
_BULLET = re.compile(r"^(\s*)[-*+]\s+(.*)$")
_NUMBERED = re.compile(r"^(\s*)(\d+)[.)]\s+(.*)$")


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
        return lines

    def line(self, line: str) -> Text:
        if line.lstrip().startswith("```"):
            self._in_code = not self._in_code
            language = line.strip()[3:]
            return Text(f"  ╭ {language}" if self._in_code and language else ("  ╭" if self._in_code else "  ╰"), style="dim")
        if self._in_code:
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
