"""The ``view`` tool: a file with line numbers, a directory's entries, or an image for the model to see."""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from kimicode.tools.args import reports_errors
from kimicode.tools.base import MAX_OUTPUT_CHARS, Tool, ToolContext, ToolError, ToolResult, clip_line
from kimicode.tools.fileio import (
    format_size,
    open_regular,
    read_bounded,
    sniff_encoding,
    text_file_from_bytes,
)
from kimicode.tools.params import IntPair, Str, ToolParams
from kimicode.tools.safeopen import open_for_reading
from kimicode.tools.snippets import numbered

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".gif", ".webp"})
LISTING_DEPTH = 2
# A directory like node_modules could hold many thousands of entries; the model needs an overview.
MAX_LISTING_ENTRIES = 1000
# Files up to this size are read whole. Past it, view streams lines and stops once the output is full or
# the range is shown, so a huge log costs a bounded read and little memory (the output is ~16k chars).
VIEW_READ_BYTES = 4 * 1024 * 1024
# Longest piece of one line read at a time while streaming: a minified file can be a single huge line.
LINE_PIECE_CHARS = 64 * 1024
# An image file is read whole through its descriptor; a photo is a few MB, past this it is not an image to show.
MAX_IMAGE_BYTES = 64 * 1024 * 1024
_LIST_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class ViewParams(ToolParams):
    path: Str = Field(description="File or directory, relative to the workspace or absolute.")
    view_range: IntPair | None = Field(
        None, description="[start, end] line numbers, 1-based, inclusive; end -1 means to the end."
    )


class ViewTool(Tool):
    name: ClassVar[str] = "view"
    description: ClassVar[str] = (
        "Show a text file with line numbers (`cat -n` style), or only lines view_range of it; a "
        "directory's entries up to 2 levels deep (hidden ones skipped); or an image file "
        "(png/jpg/gif/webp), which you then see. View before editing: strreplace needs the exact text."
    )
    params: ClassVar[type[ViewParams]] = ViewParams
    read_only: ClassVar[bool] = True

    @reports_errors
    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        given = ViewParams.parse(args)
        path = ctx.resolve(given.path)
        view_range = (given.view_range[0], given.view_range[1]) if given.view_range is not None else None
        # One descriptor, opened without following a link the walk did not judge: what is listed, shown
        # or seen is what the policy decided on, whatever the name points at by now.
        try:
            fd, st = open_for_reading(path)
        except ToolError as e:
            if str(e) == f"{path} does not exist":
                raise ToolError(f"{path} does not exist; list its directory with view to find the right path") from None
            raise
        try:
            if stat.S_ISDIR(st.st_mode):
                if view_range is not None:
                    raise ToolError(f"{path} is a directory; view_range only applies to files")
                return ToolResult(text=list_directory(path, fd))
            if path.suffix.lower() in IMAGE_SUFFIXES:
                return _view_image(path, fd)
            if ctx.files is not None and st.st_size <= VIEW_READ_BYTES:
                text = await ctx.files.read_text(path)  # an editor's buffer, unsaved changes included
                if text is not None:
                    return ToolResult(text=_show_text(path, text.replace("\r\n", "\n"), view_range))
            return ToolResult(text=show_file(path, view_range, fd, st))
        finally:
            os.close(fd)


def show_file(
    path: Path, view_range: tuple[int, int] | None, fd: int | None = None, st: os.stat_result | None = None
) -> str:
    """The numbered lines of ``path``, read through ``fd`` when given (the caller closes it)."""
    if fd is None or st is None:
        own, st = open_regular(path)
        try:
            return show_file(path, view_range, own, st)
        finally:
            os.close(own)
    try:
        if st.st_size <= VIEW_READ_BYTES:
            data = read_bounded(fd, VIEW_READ_BYTES + 1)
            if len(data) <= VIEW_READ_BYTES:
                return _show_text(path, text_file_from_bytes(path, data, None).text, view_range)
            del data  # it grew past the bound while being read: stream it like any big file
        return _show_streamed(path, fd, view_range)
    except OSError as e:
        raise ToolError(f"cannot read {path}: {e.strerror}") from None


def _show_text(path: Path, text: str, view_range: tuple[int, int] | None) -> str:
    lines = text.split("\n")
    if text.endswith("\n"):
        lines.pop()
    total = len(lines) if text else 0
    if total == 0:
        return f"{path} is empty (0 lines)."
    start, end = 1, total
    if view_range is not None:
        start, end = _check_range(view_range, total, path)
    return _clip_numbered(lines[start - 1 : end], start, total)


def _show_streamed(path: Path, fd: int, view_range: tuple[int, int] | None) -> str:
    """Lines of a file too big to read whole, read only as far as the range (or the output) needs."""
    size = os.fstat(fd).st_size
    encoding, bom = sniff_encoding(os.pread(fd, 64 * 1024, 0), path, size)
    os.lseek(fd, len(bom), os.SEEK_SET)
    raw = io.FileIO(fd, closefd=False)
    stream = io.TextIOWrapper(io.BufferedReader(raw), encoding=encoding, errors="replace", newline="")
    start, end = view_range if view_range is not None else (1, -1)
    if start < 1:
        raise ToolError(f"view_range start {start} is out of range: line numbers start at 1")
    if end != -1 and end < start:
        raise ToolError(f"view_range end {end} is before start {start}; give [start, end] with end >= start, or -1")
    shown: list[str] = []
    budget = MAX_OUTPUT_CHARS
    number = 0
    stopped = ""  # "" at the end of the file, "range" when the range was shown, "full" when output is full
    for number, line in enumerate(_stream_lines(stream), start=1):
        if number < start:
            continue
        cost = len(line) + 8
        if cost > budget:
            if not shown:  # one enormous line (minified code): show its start
                shown.append(clip_line(line, MAX_OUTPUT_CHARS - 100))
            stopped = "full"
            break
        shown.append(line)
        budget -= cost
        if number == end:
            stopped = "range"
            break
    read = os.lseek(fd, 0, os.SEEK_CUR)
    stream.detach()
    if not stopped:  # the whole file was scanned, so its line count is known and the range can be checked
        if view_range is not None:
            _check_range(view_range, number, path)
        if number == 0:
            return f"{path} is empty (0 lines)."
    last = start + len(shown) - 1
    about = f"{path} is {format_size(size)}; read {format_size(read)} of it to show lines {start}-{last}"
    if not stopped:
        about += f" of {number}"
    if stopped == "full":
        about += f"; use view_range to see more (e.g. [{last + 1}, {last + 300}]) or `grep -n` to find a spot"
    return numbered(shown, start) + f"\n[{about}]"


def _stream_lines(stream: io.TextIOWrapper) -> Iterator[str]:
    """Lines without their endings; a line longer than LINE_PIECE_CHARS is cut (the rest is skipped)."""
    while True:
        piece = stream.readline(LINE_PIECE_CHARS)
        if not piece:
            return
        if not piece.endswith("\n") and len(piece) >= LINE_PIECE_CHARS:
            rest = piece
            while rest and not rest.endswith("\n"):  # skip the rest of the long line without keeping it
                rest = stream.readline(LINE_PIECE_CHARS)
        yield piece.removesuffix("\n").removesuffix("\r")


def _check_range(view_range: tuple[int, int], total: int, path: Path) -> tuple[int, int]:
    start, end = view_range
    if end == -1:
        end = total
    if start < 1 or start > max(total, 1):
        raise ToolError(f"view_range start {start} is out of range: {path} has {total} lines")
    if end < start or end > total:
        raise ToolError(
            f"view_range end {view_range[1]} is out of range: {path} has {total} lines; "
            f"end must be between {start} and {total}, or -1 for the end of the file"
        )
    return start, end


def _clip_numbered(lines: list[str], first_line: int, total: int) -> str:
    """Numbered lines up to ~MAX_OUTPUT_CHARS, cut at a line boundary with a note on how to see more."""
    shown: list[str] = []
    size = 0
    for line in lines:
        cost = len(line) + 8  # "%6d\t" and the newline
        if size + cost > MAX_OUTPUT_CHARS:
            if not shown:  # one enormous line (minified code): show its start
                shown.append(clip_line(line, MAX_OUTPUT_CHARS - 100))
            break
        shown.append(line)
        size += cost
    body = numbered(shown, first_line)
    last = first_line + len(shown) - 1
    if len(shown) < len(lines):
        body += (
            f"\n[output clipped: showed lines {first_line}-{last} of {total}; use view_range to see "
            f"more (e.g. [{last + 1}, {min(total, last + 300)}]) or `grep -n` to find a spot]"
        )
    return body


def list_directory(root: Path, fd: int) -> str:
    """The entries below the open directory ``fd`` (named ``root``)."""
    entries: list[str] = []
    truncated = _collect(fd, "", 1, entries)
    header = f"Entries of {root} up to {LISTING_DEPTH} levels deep (hidden entries skipped):"
    if not entries:
        return f"{header}\n(empty)"
    body = "\n".join(entries)
    if truncated:
        body += (
            f"\n[listing stopped after {MAX_LISTING_ENTRIES} entries; view a subdirectory, "
            f"or use bash (find, ls) to look further]"
        )
    if len(body) > MAX_OUTPUT_CHARS:
        body = body[:MAX_OUTPUT_CHARS] + "\n[listing clipped; view a subdirectory to see more]"
    return f"{header}\n{body}"


def _collect(directory: int, prefix: str, depth: int, entries: list[str]) -> bool:
    """Append sorted entries depth-first; True when the entry cap stopped the walk. Subdirectories are
    opened below ``directory`` without following links: a link is listed, not entered."""
    try:
        with os.scandir(directory) as it:
            children = sorted((e for e in it if not e.name.startswith(".")), key=lambda e: e.name)
    except OSError as e:
        entries.append(f"{prefix}[cannot list: {e.strerror}]")
        return False
    for child in children:
        if len(entries) >= MAX_LISTING_ENTRIES:
            return True
        try:
            is_dir = child.is_dir()
        except OSError:
            is_dir = False
        entries.append(f"{prefix}{child.name}{'/' if is_dir else ''}")
        if is_dir and depth < LISTING_DEPTH and not child.is_symlink():
            try:
                sub = os.open(child.name, _LIST_FLAGS, dir_fd=directory)
            except OSError:
                continue  # gone or swapped for a link since it was listed
            try:
                if _collect(sub, f"{prefix}{child.name}/", depth + 1, entries):
                    return True
            finally:
                os.close(sub)
    return False


def _view_image(path: Path, fd: int) -> ToolResult:
    try:
        from kimicode.vision.images import encode_image_bytes
    except ImportError as e:
        raise ToolError(f"cannot show {path}: image support is unavailable ({e})") from None
    try:
        data = read_bounded(fd, MAX_IMAGE_BYTES + 1)
    except OSError as e:
        raise ToolError(f"cannot read image {path}: {e.strerror}") from None
    if len(data) > MAX_IMAGE_BYTES:
        raise ToolError(f"cannot show {path}: it is more than {format_size(MAX_IMAGE_BYTES)}, too large for an image")
    try:
        image = encode_image_bytes(data, label=str(path))
    except ToolError:
        raise
    except Exception as e:  # noqa: BLE001 - a corrupt or unsupported image is the model's to hear about, not a crash
        raise ToolError(f"cannot read image {path}: {e}") from None
    return ToolResult(text=f"{path} (image, {image.width}x{image.height})", images=[image])
