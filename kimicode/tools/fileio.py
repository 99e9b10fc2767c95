"""Text-file reading and atomic writing that keep what the file already was.

Editing tools work on text normalised to ``\\n``; this module remembers the file's encoding, byte-order mark,
line endings and mode, and puts them back on write, so an edit changes only the edited characters.
"""

from __future__ import annotations

import codecs
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from kimicode.tools.base import ToolError

# How far to look for NUL bytes when deciding whether a file is binary.
BINARY_SNIFF_BYTES = 8192

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

    def line_count(self) -> int:
        return count_lines(self.text)


def count_lines(text: str) -> int:
    """Lines as ``cat -n`` numbers them: a final newline does not start another line."""
    if not text:
        return 0
    return text.count("\n") + (0 if text.endswith("\n") else 1)


def read_text_file(path: Path) -> TextFile:
    """Read ``path`` as text; raises ToolError for missing, unreadable or binary files."""
    try:
        data = path.read_bytes()
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        raise ToolError(f"{path} does not exist") from None
    except IsADirectoryError:
        raise ToolError(f"{path} is a directory, not a file") from None
    except OSError as e:
        raise ToolError(f"cannot read {path}: {e.strerror}") from None
    text, encoding, bom = decode_bytes(data, path)
    newline = _detect_newline(text)
    if newline == "\r\n":
        text = text.replace("\r\n", "\n")
    return TextFile(path=path, text=text, encoding=encoding, bom=bom, newline=newline, mode=mode)


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


def encode_text(text: str, like: TextFile | None) -> bytes:
    """The bytes to write for ``text`` in the style of ``like`` (UTF-8 and the text as given if None)."""
    if like is None:
        return text.encode("utf-8")
    if like.newline == "\r\n":
        text = text.replace("\r\n", "\n").replace("\n", "\r\n")
    try:
        return like.bom + text.encode(like.encoding)
    except UnicodeEncodeError as e:
        bad = e.object[e.start : e.end]
        raise ToolError(
            f"cannot write {like.path}: the file is {like.encoding}-encoded and the new text contains "
            f"{bad!r}, which that encoding cannot represent; use characters it supports (or an escape)"
        ) from None


def write_text_file(path: Path, text: str, like: TextFile | None = None) -> None:
    """Write atomically: a temp file in the same directory, fsync, then os.replace over ``path``.

    With ``like`` (the file as read before an edit) the original encoding, BOM, line endings and mode are
    kept. Symlinks are followed, so the link stays a link. A failure leaves the old file untouched and no
    temp file behind.
    """
    data = encode_text(text, like)
    target = Path(os.path.realpath(path))
    try:
        existing: os.stat_result | None = target.stat()
    except FileNotFoundError:
        existing = None
    except OSError as e:
        raise ToolError(f"cannot write {path}: {e.strerror}") from None
    tmp = target.parent / f".{target.name}.{secrets.token_hex(4)}.tmp"
    try:
        # 0o666 lets the umask decide a new file's mode, as any editor would.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            if existing is not None:
                _copy_ownership_and_mode(fd, existing, like)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except OSError as e:
        _remove_quietly(tmp)
        raise ToolError(f"cannot write {path}: {e.strerror or e}") from None
    except BaseException:
        _remove_quietly(tmp)
        raise
    _fsync_directory(target.parent)


def _copy_ownership_and_mode(fd: int, existing: os.stat_result, like: TextFile | None) -> None:
    mode = like.mode if like is not None and like.mode is not None else stat.S_IMODE(existing.st_mode)
    if (existing.st_uid, existing.st_gid) != (os.geteuid(), os.getegid()):
        try:
            os.fchown(fd, existing.st_uid, existing.st_gid)
        except PermissionError:
            pass  # an unprivileged user cannot give files away; the content still gets written
    os.fchmod(fd, mode)


def _remove_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable; not every filesystem allows it, and that is fine."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
