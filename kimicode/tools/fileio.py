"""Text-file reading and atomic writing that keep what the file already was.

Editing tools work on text normalised to ``\\n``; this module remembers the file's encoding, byte-order mark,
each line's ending and the mode, and puts them back on write, so an edit changes only the edited characters.
Only regular files are read or written: FIFOs, devices and sockets are refused before they are opened
(reading one can block forever or never end), and reads are bounded.
"""

from __future__ import annotations

import codecs
import dataclasses
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from kimicode.tools.base import ToolContext, ToolError
from kimicode.tools.safeopen import describe_special, open_for_reading, refuse_special  # noqa: F401

# How far to look for NUL bytes when deciding whether a file is binary.
BINARY_SNIFF_BYTES = 8192
# The editing tools hold a file whole in memory (and the model needs exact text); past this, sed or a
# script is the right tool, and refusing keeps a runaway file from taking the machine's memory.
MAX_EDIT_BYTES = 64 * 1024 * 1024

# Checked longest first: the UTF-32-LE mark starts with the UTF-16-LE one.
_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


class BinaryFileError(ToolError):
    """The file holds binary data, so it cannot be shown or edited as text."""


@dataclass(frozen=True)
class TextFile:
    path: Path
    text: str  # line endings normalised to "\n"
    encoding: str  # codec that encodes ``text`` back to the original bytes
    bom: bytes = b""
    newline: str = "\n"  # "\r\n" when the file uses CRLF line endings
    mode: int | None = None  # permission bits of the file when read
    # When ``newline`` is "\r\n": the 0-based numbers of the lines that ended in a lone "\n", so lines an
    # edit does not touch keep their ending. (LF files keep their text, stray "\r\n" included, as read.)
    lone_lf_lines: frozenset[int] = frozenset()

    def line_count(self) -> int:
        return count_lines(self.text)


def count_lines(text: str) -> int:
    """Lines as ``cat -n`` numbers them: a final newline does not start another line."""
    if not text:
        return 0
    return text.count("\n") + (0 if text.endswith("\n") else 1)


def open_regular(path: Path) -> tuple[int, os.stat_result]:
    """Open ``path`` for reading, only if it is a regular file; returns (fd, stat of the open file).

    Through the descriptor walk (kimicode.tools.safeopen): the file opened is the file the policy judged,
    and a FIFO or device is never opened.
    """
    fd, st = open_for_reading(path)
    if stat.S_ISDIR(st.st_mode):
        os.close(fd)
        raise ToolError(f"{path} is a directory, not a file")
    return fd, st


def read_bounded(fd: int, limit: int) -> bytes:
    """Up to ``limit`` bytes from ``fd`` (fewer at end of file)."""
    parts: list[bytes] = []
    left = limit
    while left > 0:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            break
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)


def read_text_file(path: Path, max_bytes: int = MAX_EDIT_BYTES) -> TextFile:
    """Read ``path`` as text; raises ToolError for missing, unreadable, special, too large or binary files."""
    fd, st = open_regular(path)
    try:
        if st.st_size > max_bytes:
            raise ToolError(
                f"{path} is {format_size(st.st_size)}, more than the {format_size(max_bytes)} the editing "
                f"tools read whole; nothing was changed. Use bash (sed, a script) for a file this large"
            )
        data = read_bounded(fd, max_bytes + 1)
    except OSError as e:
        raise ToolError(f"cannot read {path}: {e.strerror}") from None
    finally:
        os.close(fd)
    if len(data) > max_bytes:  # it grew while being read
        raise ToolError(f"{path} grew past {format_size(max_bytes)} while being read; nothing was changed")
    return text_file_from_bytes(path, data, stat.S_IMODE(st.st_mode))


def text_file_from_bytes(path: Path, data: bytes, mode: int | None) -> TextFile:
    """The TextFile for a file's whole content ``data``; raises BinaryFileError for binary data."""
    text, encoding, bom = decode_bytes(data, path)
    newline = _detect_newline(text)
    lone: frozenset[int] = frozenset()
    if newline == "\r\n":
        lone = _lone_lf_lines(text)
        text = text.replace("\r\n", "\n")
    return TextFile(
        path=path, text=text, encoding=encoding, bom=bom, newline=newline, mode=mode, lone_lf_lines=lone
    )


def _lone_lf_lines(text: str) -> frozenset[int]:
    """Numbers (0-based) of the lines of ``text`` that end in "\\n" not preceded by "\\r"."""
    lines = text.split("\n")
    lines.pop()  # what follows the last newline ends in none
    return frozenset(i for i, line in enumerate(lines) if not line.endswith("\r"))


def sniff_encoding(head: bytes, path: Path, size: int) -> tuple[str, bytes]:
    """(encoding, bom) for a file whose first bytes are ``head``, when it is too big to decode whole."""
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            return encoding, bom
    if b"\x00" in head[:BINARY_SNIFF_BYTES]:
        raise BinaryFileError(
            f"{path} is a binary file ({size} bytes) and cannot be shown or edited as text; "
            f"inspect it with bash (e.g. `file` or `xxd | head`)"
        )
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        return "utf-8", b""
    except UnicodeDecodeError:
        return "cp1252", b""


def format_size(size: int) -> str:
    if size >= 1 << 20:
        return f"{size / (1 << 20):.1f} MB"
    if size >= 1 << 10:
        return f"{size / (1 << 10):.1f} KB"
    return f"{size} bytes"


def decode_bytes(data: bytes, path: Path) -> tuple[str, str, bytes]:
    """Return (text, encoding, bom). The encoding always round-trips the bytes it decoded."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data[len(bom) :].decode(encoding), encoding, bom
            except UnicodeDecodeError:
                break  # a stray mark at the start of a binary file
    if b"\x00" in data[:BINARY_SNIFF_BYTES]:
        raise BinaryFileError(
            f"{path} is a binary file ({len(data)} bytes) and cannot be shown or edited as text; "
            f"inspect it with bash (e.g. `file` or `xxd | head`)"
        )
    try:
        return data.decode("utf-8"), "utf-8", b""
    except UnicodeDecodeError:
        pass
    # Legacy 8-bit text. cp1252 reads Windows files right (curly quotes, euro sign); latin-1 decodes
    # every byte, including the five cp1252 leaves undefined, and both re-encode to the same bytes.
    try:
        return data.decode("cp1252"), "cp1252", b""
    except UnicodeDecodeError:
        return data.decode("latin-1"), "latin-1", b""


def _detect_newline(text: str) -> str:
    crlf = text.count("\r\n")
    if crlf == 0:
        return "\n"
    # A mixed file follows its majority; only files that mostly use CRLF are written back with CRLF.
    lone_lf = text.count("\n") - crlf
    return "\r\n" if crlf >= lone_lf else "\n"


# Where an edit changed the text: (start, characters removed, characters inserted) in the "\n" text.
Splice = tuple[int, int, int]


def encode_text(text: str, like: TextFile | None, splice: Splice | None = None) -> bytes:
    """The bytes to write for ``text`` in the style of ``like`` (UTF-8 and the text as given if None)."""
    if like is None:
        try:
            return text.encode("utf-8")
        except UnicodeEncodeError as e:  # a lone surrogate ("\ud800") that JSON can carry
            raise ToolError(
                f"cannot write the file: the text contains {e.object[e.start : e.end]!r}, which is not a "
                f"character (a lone surrogate); send the text without it"
            ) from None
    if like.newline == "\r\n":
        text = restore_endings(text, like, splice)
    try:
        return like.bom + text.encode(like.encoding)
    except UnicodeEncodeError as e:
        bad = e.object[e.start : e.end]
        raise ToolError(
            f"cannot write {like.path}: the file is {like.encoding}-encoded and the new text contains "
            f"{bad!r}, which that encoding cannot represent; use characters it supports (or an escape)"
        ) from None


def restore_endings(text: str, like: TextFile, splice: Splice | None = None) -> str:
    """``text`` (normalised to "\\n") with each line's ending as in ``like``, new lines taking CRLF.

    Lines the edit left alone keep their own endings: those before and after ``splice`` when the editing
    tool says where it changed the text, else the common run of whole lines at the start and the end. In the changed middle, the n-th new line takes the ending of the n-th old line it
    replaces (an edit within a line keeps that line's ending); lines beyond those are new and take the
    file's dominant ending. String operations only, so a large file costs milliseconds.
    """
    if not like.lone_lf_lines:  # every line ended in CRLF: so do the new ones
        return text.replace("\r\n", "\n").replace("\n", "\r\n")
    old = like.text
    lines = text.split("\n")
    n_old, n_new = old.count("\n"), len(lines) - 1
    if splice is not None:
        start, removed, _inserted = splice
        prefix, suffix = start, len(old) - start - removed
    else:
        prefix = _common_prefix(old, text)
        suffix = _common_suffix(old, text, min(len(old), len(text)) - prefix)
    head = old.count("\n", 0, prefix)  # lines whose newline lies in the common start
    tail = old.count("\n", len(old) - suffix)
    if tail and not (_at_line_start(old, len(old) - suffix) and _at_line_start(text, len(text) - suffix)):
        tail -= 1  # the first newline there ends a line that starts before the common end
    middle = range(head, n_new - tail)
    shift = n_new - n_old
    lone_new: list[int] = []
    for i in sorted(like.lone_lf_lines):
        if i < head:
            lone_new.append(i)
        elif i >= n_old - tail:
            lone_new.append(i + shift)
        elif i - head < len(middle):
            lone_new.append(i)  # the middle line that took this old line's place
    for i in middle:
        if lines[i].endswith("\r"):  # text given with CRLF: the ending is ours to add
            lines[i] = lines[i][:-1]
    parts: list[str] = []
    start = 0
    for i in lone_new:
        parts.append("\r\n".join(lines[start : i + 1]))
        start = i + 1
    parts.append("\r\n".join(lines[start:]))
    return "\n".join(parts)


def _common_prefix(a: str, b: str) -> int:
    """Length of the longest common prefix, by halving (slice comparisons run at C speed)."""
    low, high = 0, min(len(a), len(b))
    while low < high:
        mid = (low + high + 1) // 2
        if a[low:mid] == b[low:mid]:
            low = mid
        else:
            high = mid - 1
    return low


def _common_suffix(a: str, b: str, limit: int) -> int:
    low, high = 0, limit
    while low < high:
        mid = (low + high + 1) // 2
        if a[len(a) - mid : len(a) - low] == b[len(b) - mid : len(b) - low]:
            low = mid
        else:
            high = mid - 1
    return low


def _at_line_start(text: str, offset: int) -> bool:
    return offset == 0 or text[offset - 1] == "\n"


async def load_text(ctx: ToolContext, path: Path) -> TextFile:
    """``path`` as the edit tools see it: the editor's text when an editor holds the files (its unsaved
    changes included), else the disk's. The disk is read either way: it answers whether the file may be
    edited at all, and gives the encoding and mode a later write keeps."""
    disk = read_text_file(path)
    if ctx.files is None:
        return disk
    text = await ctx.files.read_text(path)
    if text is None:
        return disk
    newline = _detect_newline(text)
    lone: frozenset[int] = frozenset()
    if newline == "\r\n":
        lone = _lone_lf_lines(text)
        text = text.replace("\r\n", "\n")
    return dataclasses.replace(disk, text=text, newline=newline, lone_lf_lines=lone)
