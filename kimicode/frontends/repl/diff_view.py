"""An edit waiting for approval as a real diff: line numbers (old and new), three lines of context around
each change, the code coloured by its language (rich), and a long diff folded until the user asks for the
rest. The texts come from kimicode.tools.edit_preview, so the diff shows exactly what the edit will write.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.text import Text

    from kimicode.agent import events as ev
    from kimicode.frontends.repl.render import Renderer

CONTEXT_LINES = 3
FOLDED_ROWS = 40  # rows shown before the rest waits for a key
EDIT_TOOLS = ("createfile", "strreplace", "insert")
_STYLES = {"-": "red", "+": "green", "@": "cyan"}
_BACKGROUNDS = {"-": "on #3a1212", "+": "on #10301a"}


@dataclass(frozen=True)
class DiffRow:
    old: int | None  # 1-based line number before (None: an added line, or a hunk header)
    new: int | None  # 1-based line number after (None: a removed line, or a hunk header)
    marker: str  # " " context, "-" removed, "+" added, "@" hunk header
    text: str


def numbered_diff(before: str | None, after: str, context: int = CONTEXT_LINES) -> list[DiffRow]:
    """The unified diff of two texts as rows with both line numbers."""
    old, new = (before or "").replace("\r\n", "\n").splitlines(), after.replace("\r\n", "\n").splitlines()
    rows: list[DiffRow] = []
    for group in difflib.SequenceMatcher(None, old, new, autojunk=False).get_grouped_opcodes(context):
        first, last = group[0], group[-1]
        header = f"@@ -{first[1] + 1},{last[2] - first[1]} +{first[3] + 1},{last[4] - first[3]} @@"
        rows.append(DiffRow(None, None, "@", header))
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                rows.extend(DiffRow(i1 + k + 1, j1 + k + 1, " ", old[i1 + k]) for k in range(i2 - i1))
                continue
            rows.extend(DiffRow(i + 1, None, "-", old[i]) for i in range(i1, i2) if tag in ("replace", "delete"))
            rows.extend(DiffRow(None, j + 1, "+", new[j]) for j in range(j1, j2) if tag in ("replace", "insert"))
    return rows


class EditDiff:
    """The diff of one pending edit, shown folded first; ``show_rest`` prints what the fold held back."""

    def __init__(self, path: Path, rows: list[DiffRow]) -> None:
        self.path = path
        self.rows = rows
        self._shown = 0

    @classmethod
    def for_request(cls, request: ev.ApprovalRequest, workspace: Path) -> EditDiff | None:
        """The diff the edit of ``request`` would make, or None (not an edit, unreadable, would fail)."""
        from kimicode.tools.base import ToolError
        from kimicode.tools.edit_preview import preview_edit
        from kimicode.tools.fileio import read_text_file

        name = request.args.get("path")
        if request.tool not in EDIT_TOOLS or not isinstance(name, str) or not name.strip():
            return None
        path = Path(name).expanduser()
        path = path if path.is_absolute() else workspace / path
        try:
            like = read_text_file(path) if path.is_file() else None
        except ToolError:
            return None
        texts = preview_edit(request.tool, request.args, like)
        if texts is None:
            return None
        rows = numbered_diff(*texts)
        return cls(path, rows) if rows else None

    @property
    def folded(self) -> int:
        """Rows not shown yet."""
        return len(self.rows) - self._shown

    def show(self, renderer: Renderer, limit: int = FOLDED_ROWS) -> None:
        end = min(len(self.rows), self._shown + limit)
        self._print(renderer, self.rows[self._shown : end])
        self._shown = end
        if self.folded:
            renderer.dim(f"    … {self.folded} more diff lines: [d] shows them")

    def show_rest(self, renderer: Renderer) -> None:
        self.show(renderer, len(self.rows))

    def _print(self, renderer: Renderer, rows: list[DiffRow]) -> None:
        width = len(str(max((r.old or 0 for r in self.rows), default=0) or 1))
        width = max(width, len(str(max((r.new or 0 for r in self.rows), default=0) or 1)), 3)
        highlight = _highlighter(self.path, "\n".join(r.text for r in self.rows if r.marker != "@"))
        for row in rows:
            renderer.console.print(_row_text(row, width, highlight), soft_wrap=True)


def _row_text(row: DiffRow, width: int, highlight: Any) -> Text:
    from rich.text import Text

    if row.marker == "@":
        return Text(f"  {'':>{width}} {'':>{width}}   {row.text}", style="cyan dim")
    old = str(row.old) if row.old is not None else ""
    new = str(row.new) if row.new is not None else ""
    line = Text()
    line.append(f"  {old:>{width}} {new:>{width}} ", style="dim")
    line.append(f"{row.marker} ", style=_STYLES.get(row.marker, ""))
    code = highlight(row.text)
    if row.marker in _BACKGROUNDS:
        code.stylize(_BACKGROUNDS[row.marker])
    line.append_text(code)
    return line


def _highlighter(path: Path, sample: str) -> Any:
    """Colours one line of code by the file's language (plain text when it is not known)."""
    from rich.syntax import Syntax
    from rich.text import Text

    lexer = Syntax.guess_lexer(str(path), code=sample[:2000])
    if lexer in ("default", "text"):
        return lambda text: Text(text)
    syntax = Syntax("", lexer, theme="ansi_dark", background_color="default")

    def highlight(text: str) -> Text:
        coloured = syntax.highlight(text)
        coloured.rstrip()  # (in place) the newline highlight() ends with
        return coloured

    return highlight
