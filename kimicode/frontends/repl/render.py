"""Terminal rendering of the core's events with rich: streamed text, dim thinking, one line per tool call,
coloured diffs for edits, folded long output. NO_COLOR is honoured by rich itself.

Text is written as it streams (no live region that repaints the screen), so nothing flickers and the
scrollback stays a plain record of the session. The one exception is the swarm board: a few lines redrawn
in place while sub-agents run (kimicode.frontends.repl.live_board), then left in the scrollback as they ended.
With ``hold_partial`` (the prompt stays live during a turn) only whole screen lines are written: a line
still being streamed is cut at the terminal's width (at a space) as it grows, each full screen line goes to
the scrollback and the rest is shown by the prompt above its input (``partial``), so a long paragraph
keeps growing on screen and the prompt never lands mid-line. Markdown tables are held back until their
last row and then drawn as a table; fenced code is coloured line by line as each line completes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rich.cells import cell_len
from rich.console import Console
from rich.text import Text

from kimicode.agent import events as ev
from kimicode.frontends.repl.live_board import LiveBoard
from kimicode.frontends.repl.markdown_stream import CODE_FRAME, MarkdownLines, inline, screen_cut, table
from kimicode.security.redact import redact
from kimicode.wording import plural

if TYPE_CHECKING:
    from kimicode.frontends.repl.links import Linker

# Lines of a tool's output shown under its call line; the rest is folded into a count.
OUTPUT_PREVIEW_LINES = 4
DIFF_PREVIEW_LINES = 40
EDIT_TOOLS = ("strreplace", "insert", "createfile")


def make_console() -> Console:
    return Console(highlight=False, emoji=False, soft_wrap=False)


def edit_diff_lines(name: str, args: dict[str, Any]) -> list[tuple[str, str]]:
    """(marker, line) pairs showing what an edit call will change, built from its arguments alone."""
    if name == "strreplace":
        old = str(args.get("old_str", "")).splitlines()
        new = str(args.get("new_str", "")).splitlines()
        return [("-", line) for line in old] + [("+", line) for line in new]
    if name == "insert":
        where = args.get("insert_line", 0)
        return [("@", f"after line {where}")] + [("+", line) for line in str(args.get("new_str", "")).splitlines()]
    if name == "createfile":
        lines = str(args.get("content", "")).splitlines()
        return [("+", line) for line in lines] or [("@", "(empty file)")]
    return []


def fold(lines: list[str], keep: int) -> tuple[list[str], int]:
    """The first ``keep`` lines and how many were left out."""
    return lines[:keep], max(len(lines) - keep, 0)


class Renderer:
    """Turns events into terminal output. One instance per REPL; keeps track of what is mid-line."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or make_console()
        self._streaming: str = ""  # "text", "thinking" or "" (nothing open)
        self.board: LiveBoard | None = None  # while a spawn_agents call runs
        self._markdown = MarkdownLines()
        self.show_thinking = True  # False: thinking collapses to one line; /thinking last shows it
        self.last_thinking = ""
        self._line = ""  # the answer's current line, as streamed so far
        self._line_wrapped = False
        self._table: list[str] = []  # rows of a markdown table being streamed, drawn once it ends
        self._continuing = False  # the line being streamed continues one cut at the screen's width
        self._refused: set[str] = set()  # call ids whose refusal line was shown
        self._progress_shown: dict[str, tuple[int, str]] = {}  # call id -> (tenth of the total, message) last shown
        self.links: Linker | None = None  # file paths as OSC 8 links, where the terminal has them
        self.hold_partial = False  # write whole lines only; the partial one is the prompt's to show
        self.on_partial: Callable[[], None] | None = None  # the partial line changed

    def partial(self) -> tuple[str, str]:
        """("text" or "thinking", the line being streamed) while ``hold_partial``; ("", "") otherwise."""
        if not self.hold_partial or (self._streaming == "thinking" and not self.show_thinking):
            return ("", "")
        if self._table and self._streaming == "text":  # the rows so far, raw, until the table is drawn
            return ("text", "\n".join([*self._table, self._line] if self._line else self._table))
        return (self._streaming, self._line) if self._line else ("", "")

    # -- plain messages ------------------------------------------------------------------------------

    def info(self, message: str, style: str = "") -> None:
        self.close_stream()
        self.console.print(Text(message, style=style))

    def listing(self, line: str, style: str = "") -> None:
        """A line of a listing (paths, commands): never broken by rich; a narrow terminal wraps it whole."""
        self.close_stream()
        self.console.print(Text(line, style=style), soft_wrap=True)

    def dim(self, message: str) -> None:
        self.info(message, "dim")

    def warn(self, message: str) -> None:
        self.info(f"! {redact(message)}", "yellow")

    def error(self, message: str) -> None:
        # Warnings and errors quote settings, server answers and exceptions: the places a key shows up.
        self.info(f"✗ {redact(message)}", "red")

    def close_stream(self) -> None:
        if self.board is not None:
            self.board.erase()
        if self.hold_partial and self._streaming:
            self._close_held()
            return
        if self._streaming == "text":
            self._end_text_line()
            self._markdown.flush()
            self._streaming = ""
        elif self._streaming == "thinking" and not self.show_thinking:
            self._streaming = ""
        elif self._streaming:
            self.console.file.write("\n")
            self.console.file.flush()
            self._streaming = ""

    def _end_text_line(self) -> None:
        """Replace the raw line just streamed with its markdown styling, then start a new line.

        A line that wrapped on screen cannot be rewritten in place; it stays as streamed.
        """
        line, self._line = self._line, ""
        styled = self._markdown.line(line)
        if not self._line_wrapped and self.console.is_terminal:
            self.console.file.write("\r\x1b[2K")
            self.console.print(self._linked(styled), soft_wrap=True)
        else:
            self.console.file.write("\n")
        self._line_wrapped = False
        self.console.file.flush()

    # -- events --------------------------------------------------------------------------------------

    def event(self, event: ev.Event) -> None:
        if isinstance(event, ev.Refused):
            self.refused(event)
        elif isinstance(event, ev.ToolCallEnd) and event.call_id in self._refused:
            self._refused.discard(event.call_id)  # its refusal line said it already
        elif getattr(event, "agent", "") and not isinstance(event, ev.SubAgentUpdate):
            self._sub_agent_event(event)
        elif isinstance(event, ev.TextDelta):
            self._stream("text", event.text, "")
        elif isinstance(event, ev.ThinkingDelta):
            self._stream("thinking", event.text, "dim italic")
        elif isinstance(event, ev.ToolCallStart):
            self.tool_start(event)
        elif isinstance(event, ev.ToolProgress):
            self.tool_progress(event)
        elif isinstance(event, ev.ToolCallEnd):
            if event.name == "spawn_agents":
                self.finish_board()
            self.tool_end(event)
        elif isinstance(event, ev.Compacted):
            self.dim(f"⟳ context compacted: {event.tokens_before:,} → {event.tokens_after:,} tokens (summary kept)")
        elif isinstance(event, ev.Error):
            if event.retrying:
                self.warn(event.message)
            else:
                self.error(event.message)
        elif isinstance(event, ev.SubAgentUpdate):
            self.sub_agent_update(event)
        elif isinstance(event, ev.Steered):
            self.info(f"↳ you, to the running turn: {event.text}", "magenta")
        elif isinstance(event, ev.Done):
            self.finish_board()
            self.close_stream()

    # -- the swarm -----------------------------------------------------------------------------------

    def sub_agent_update(self, event: ev.SubAgentUpdate) -> None:
        if self.board is None:
            self.close_stream()
            self.board = LiveBoard(self.console.file, self.console.width, self.console.height, self.console.is_terminal)
        self.board.update(event)

    def finish_board(self) -> None:
        """Leave the board's last state in the scrollback (a wave of sub-agents has ended)."""
        board, self.board = self.board, None
        if board is not None:
            self.close_stream()
            board.finish()

    def _sub_agent_event(self, event: ev.Event) -> None:
        # A sub-agent's tool calls and todo list show on its board line; only errors it cannot recover from
        # get a line.
        if isinstance(event, ev.Error) and not event.retrying:
            self.warn(f"[{event.agent}] {event.message}")
        elif isinstance(event, ev.TodoUpdate) and self.board is not None:
            self.board.update_todo(event)

    def _close_held(self) -> None:
        kind, line = self._streaming, self._line
        self._streaming, self._line = "", ""
        if line:
            self._held_line(kind, line, self._continuing)
        self._continuing = False
        if kind == "text":
            self._draw_table()
            self._markdown.flush()
        if self.on_partial:
            self.on_partial()

    def _held_line(self, kind: str, line: str, continued: bool = False) -> None:
        """A finished line; ``continued``: the rest of a line cut at the screen's width, whose start says
        nothing about what it is (a "- " there is no bullet)."""
        if kind != "text":
            if self.show_thinking:
                self.console.print(Text(line, style="dim italic"))
            return
        if continued and not self._markdown.in_code:
            self.console.print(inline(line))
            return
        if self._markdown.table_row(line):
            self._table.append(line)
            return
        self._draw_table()
        self.console.print(self._markdown.line(line))  # rich wraps at spaces should a line still be too wide

    def _draw_table(self) -> None:
        rows, self._table = self._table, []
        grid = table(rows) if rows else None
        if grid is not None:
            self.console.print(grid)
            return
        for row in rows:
            self.console.print(self._markdown.line(row))

    def _stream_held(self, kind: str, text: str) -> None:
        """Whole screen lines to the scrollback; the rest waits in ``_line`` for the prompt to show."""
        for index, piece in enumerate(text.split("\n")):
            if index:
                line, self._line = self._line, ""
                self._held_line(kind, line, self._continuing)
                self._continuing = False
            self._line += piece
            self._commit_full_screen_lines(kind)
        if self.on_partial:
            self.on_partial()

    def _commit_full_screen_lines(self, kind: str) -> None:
        """A line wider than the screen: the part that fills whole screen lines is written (cut at spaces),
        so the live line above the prompt is never wider than the terminal (it would be clipped there)."""
        code = kind == "text" and self._markdown.in_code
        if kind == "text" and not code and self._markdown.table_row(self._line):
            return  # a table row is drawn with its table; the raw row may be clipped meanwhile
        width = max(self.console.width - (CODE_FRAME if code else 0), 20)
        while (len(self._line) if self._line.isascii() else cell_len(self._line)) > width:
            cut = screen_cut(self._line, width)
            if cut >= len(self._line):
                return
            head, rest = self._line[:cut], self._line[cut:]
            self._line = rest if code else rest.lstrip(" ")
            self._held_line(kind, head, self._continuing)
            self._continuing = True

    def _stream(self, kind: str, text: str, style: str) -> None:
        if self._streaming != kind:
            self.close_stream()
            if kind == "thinking":
                self.last_thinking = ""
                hint = "" if self.show_thinking else " (hidden; /thinking show or /thinking last)"
                self.console.print(Text(f"thinking…{hint}", style="dim"))
            self._streaming = kind
        if kind == "thinking":
            self.last_thinking += text
            if not self.show_thinking:
                return  # collapsed: the "thinking…" line stands for it
        if self.hold_partial:
            self._stream_held(kind, text)
            return
        if kind != "text":
            self.console.print(Text(text, style=style), end="", soft_wrap=True)
            self.console.file.flush()
            return
        # Answers stream raw and each line is restyled as markdown once it is complete.
        for index, piece in enumerate(text.split("\n")):
            if index:
                self._end_text_line()
            if piece:
                self._line += piece
                self._line_wrapped = self._line_wrapped or len(self._line) >= self.console.width
                self.console.print(Text(piece), end="", soft_wrap=True)
        self.console.file.flush()

    def tool_start(self, event: ev.ToolCallStart) -> None:
        self.close_stream()
        line = Text("● ", style="cyan")
        line.append(event.summary or event.name, style="bold")
        view_range = event.args.get("view_range") if event.name == "view" else None
        hint = view_range[0] if isinstance(view_range, list) and view_range and isinstance(view_range[0], int) else None
        self.console.print(self._linked(line, hint), soft_wrap=False, overflow="ellipsis", no_wrap=True)
        if event.name in EDIT_TOOLS:
            self.edit_diff(event.name, event.args)

    def tool_progress(self, event: ev.ToolProgress) -> None:
        """A running call's progress, under its line: a new line per tenth of the total or new message, so a
        server that reports every byte cannot flood the screen."""
        tenth = int(10 * event.progress / event.total) if event.total else -1
        if self._progress_shown.get(event.call_id) == (tenth, event.message):
            return
        self._progress_shown[event.call_id] = (tenth, event.message)
        self.close_stream()
        self.console.print(Text(f"  ⋯ {redact(event.describe())}", style="dim"), soft_wrap=False, overflow="ellipsis", no_wrap=True)

    def edit_diff(self, name: str, args: dict[str, Any]) -> None:
        pairs = edit_diff_lines(name, args)
        shown, hidden = pairs[:DIFF_PREVIEW_LINES], max(len(pairs) - DIFF_PREVIEW_LINES, 0)
        styles = {"-": "red", "+": "green", "@": "cyan"}
        for marker, text in shown:
            prefix = "    " if marker == "@" else f"  {marker} "
            self.console.print(Text(prefix + text, style=styles[marker]), soft_wrap=True)
        if hidden:
            self.console.print(Text(f"    … {hidden} more lines", style="dim"))

    def refused(self, event: ev.Refused) -> None:
        self.close_stream()
        self._refused.add(event.call_id)
        who = f"[{event.agent}] " if event.agent else ""
        self.console.print(Text(f"  ⎿ ✗ refused {who}{event.summary} ({event.reason})", style="red"), soft_wrap=True)

    def tool_end(self, event: ev.ToolCallEnd) -> None:
        self.close_stream()
        self._progress_shown.pop(event.call_id, None)
        if self.links is not None:
            self.links.forget()  # the call may have created or removed files
        result = event.result
        lines = result.text.rstrip("\n").splitlines()
        if result.is_error:
            first = lines[0] if lines else "failed"
            self.console.print(Text(f"  ⎿ ✗ {first[:300]}", style="red"), soft_wrap=True)
            return
        if event.name in EDIT_TOOLS:
            self.console.print(Text("  ⎿ done", style="dim"))
            return
        if event.name == "submit":
            return
        shown, hidden = fold(lines, OUTPUT_PREVIEW_LINES)
        if not shown:
            self.console.print(Text("  ⎿ (no output)" if not result.images else "  ⎿ images:", style="dim"))
        for index, text in enumerate(shown):
            prefix = "  ⎿ " if index == 0 else "    "
            self.console.print(self._linked(Text(prefix + text[:400], style="dim")), soft_wrap=True)
        if hidden:
            self.console.print(Text(f"    … +{plural(hidden, 'line')}", style="dim"))
        self.image_lines(result.images)

    def image_lines(self, images: list[Any]) -> None:
        """One line per image (what it is and its size), never its bytes."""
        for image in images:
            self.console.print(Text(f"    {image.describe()}", style="dim"), soft_wrap=True)

    def markdown(self, text: str, indent: str = "  ") -> None:
        """A whole markdown text (a plan), styled line by line like streamed answers."""
        self.close_stream()
        lines = MarkdownLines()
        for line in text.splitlines():
            styled = lines.line(line)
            self.console.print(Text(indent) + styled, soft_wrap=True)
        lines.flush()

    def unified_diff(self, diff: str) -> None:
        """A unified diff (from /diff), coloured line by line."""
        self.close_stream()
        current = None
        for line in diff.splitlines():
            style = ""
            if line.startswith(("+++", "---")):
                style = "bold"
            elif line.startswith("+"):
                style = "green"
            elif line.startswith("-"):
                style = "red"
            elif line.startswith("@@"):
                style = "cyan"
            text = Text(line, style=style)
            if self.links is not None:
                current = self.links.link_diff_line(text, current)
            self.console.print(text, soft_wrap=True)

    def _linked(self, text: Text, line_hint: int | None = None) -> Text:
        return self.links.decorate(text, line_hint) if self.links is not None else text

