"""Shared text-file I/O: detection of encoding, BOM and line endings, and atomic writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from kimicode.tools.base import ToolError
from kimicode.tools.fileio import BinaryFileError, count_lines, read_text_file
from kimicode.tools.filewrite import write_text_file


@pytest.mark.parametrize(
    ("raw", "encoding", "bom", "newline", "text"),
    [
        (b"a\nb\n", "utf-8", b"", "\n", "a\nb\n"),
        (b"\xef\xbb\xbfa\r\nb\r\n", "utf-8", b"\xef\xbb\xbf", "\r\n", "a\nb\n"),
        (b"\xff\xfea\x00\n\x00", "utf-16-le", b"\xff\xfe", "\n", "a\n"),
        (b"\xfe\xff\x00a\x00\n", "utf-16-be", b"\xfe\xff", "\n", "a\n"),
        (b"price \x80 5\n", "cp1252", b"", "\n", "price \u20ac 5\n"),
        (b"odd \x81 byte\n", "latin-1", b"", "\n", "odd \x81 byte\n"),
    ],
)
def test_round_trip_is_byte_exact(
    tmp_path: Path, raw: bytes, encoding: str, bom: bytes, newline: str, text: str
) -> None:
    path = tmp_path / "f"
    path.write_bytes(raw)
    tf = read_text_file(path)
    assert (tf.encoding, tf.bom, tf.newline, tf.text) == (encoding, bom, newline, text)
    write_text_file(path, tf.text, tf)
    assert path.read_bytes() == raw


def test_nul_bytes_mean_binary(tmp_path: Path) -> None:
    (tmp_path / "b").write_bytes(b"PK\x03\x04\x00\x00")
    with pytest.raises(BinaryFileError, match="binary"):
        read_text_file(tmp_path / "b")


def test_mixed_endings_follow_the_majority(tmp_path: Path) -> None:
    (tmp_path / "m").write_bytes(b"a\r\nb\r\nc\n")
    assert read_text_file(tmp_path / "m").newline == "\r\n"
    (tmp_path / "n").write_bytes(b"a\nb\nc\r\n")
    tf = read_text_file(tmp_path / "n")
    assert tf.newline == "\n" and tf.text == "a\nb\nc\r\n"


def test_new_file_is_written_as_given(tmp_path: Path) -> None:
    write_text_file(tmp_path / "new.txt", "héllo\r\n")
    assert (tmp_path / "new.txt").read_bytes() == "héllo\r\n".encode()


def test_failed_replace_leaves_no_temp_file(tmp_path: Path) -> None:
    (tmp_path / "adir").mkdir()
    with pytest.raises(ToolError, match="cannot write"):
        write_text_file(tmp_path / "adir", "x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adir"]


def test_missing_file_is_a_tool_error(tmp_path: Path) -> None:
    with pytest.raises(ToolError, match="does not exist"):
        read_text_file(tmp_path / "ghost")


def test_count_lines() -> None:
    assert [count_lines(t) for t in ("", "a", "a\n", "a\nb", "a\nb\n", "\n")] == [0, 1, 1, 2, 2, 1]
