"""createfile, strreplace and insert: what ends up on disk, byte for byte, and what the model is told."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from kimicode.tools.base import Tool, ToolContext, ToolResult
from kimicode.tools.createfile import CreateFileTool
from kimicode.tools.insert import InsertTool
from kimicode.tools.strreplace import StrReplaceTool


def call(tool: Tool, ctx: ToolContext, **args: Any) -> ToolResult:
    return asyncio.run(tool.run(args, ctx))


def replace(ctx: ToolContext, path: str, old: str, new: str) -> ToolResult:
    return call(StrReplaceTool(), ctx, path=path, old_str=old, new_str=new)


def insert(ctx: ToolContext, path: str, line: int, new: str) -> ToolResult:
    return call(InsertTool(), ctx, path=path, insert_line=line, new_str=new)


@pytest.fixture
def ctx(tmp_path: Path) -> ToolContext:
    return ToolContext(workspace=tmp_path)


def no_temp_files(directory: Path) -> bool:
    return not [p for p in directory.rglob("*") if p.name.endswith(".tmp")]


APP = "def add(a, b):\n    return a - b\n\n\ndef sub(a, b):\n    return a - b\n"


# --- createfile ---------------------------------------------------------------------------------


def test_create_makes_parents(ctx: ToolContext, tmp_path: Path) -> None:
    result = call(CreateFileTool(), ctx, path="pkg/sub/mod.py", content="x = 1\ny = 2\n")
    assert not result.is_error
    assert (tmp_path / "pkg/sub/mod.py").read_bytes() == b"x = 1\ny = 2\n"
    assert "Created" in result.text and "2 lines" in result.text
    mode = stat.S_IMODE((tmp_path / "pkg/sub/mod.py").stat().st_mode)
    umask = os.umask(0o022)
    os.umask(umask)
    assert mode == 0o666 & ~umask
    assert no_temp_files(tmp_path)


def test_create_refuses_an_existing_file(ctx: ToolContext, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_bytes(b"keep me\n")
    result = call(CreateFileTool(), ctx, path="a.txt", content="new")
    assert result.is_error
    assert "strreplace" in result.text and "overwrite=true" in result.text
    assert (tmp_path / "a.txt").read_bytes() == b"keep me\n"


def test_overwrite_keeps_mode_and_line_endings(ctx: ToolContext, tmp_path: Path) -> None:
    script = tmp_path / "run.sh"
    script.write_bytes(b"#!/bin/sh\r\necho old\r\n")
    script.chmod(0o755)
    result = call(CreateFileTool(), ctx, path="run.sh", content="#!/bin/sh\necho new\n", overwrite=True)
    assert not result.is_error and "Overwrote" in result.text
    assert script.read_bytes() == b"#!/bin/sh\r\necho new\r\n"
    assert stat.S_IMODE(script.stat().st_mode) == 0o755


def test_create_on_a_directory_is_an_error(ctx: ToolContext, tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    result = call(CreateFileTool(), ctx, path="d", content="x", overwrite=True)
    assert result.is_error and "directory" in result.text


# --- strreplace ---------------------------------------------------------------------------------


def test_replace_once_writes_and_shows_snippet(ctx: ToolContext, tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(APP)
    result = replace(ctx, "app.py", "def add(a, b):\n    return a - b", "def add(a, b):\n    return a + b")
    assert not result.is_error, result.text
    assert (tmp_path / "app.py").read_text() == APP.replace("return a - b", "return a + b", 1)
    assert "     2\t    return a + b" in result.text
    assert no_temp_files(tmp_path)


def test_zero_matches_leaves_file_identical(ctx: ToolContext, tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(APP)
    before = (tmp_path / "app.py").read_bytes()
    result = replace(ctx, "app.py", "return a * b", "return 0")
    assert result.is_error and "not found" in result.text
    assert (tmp_path / "app.py").read_bytes() == before


def test_zero_matches_hints_at_whitespace(ctx: ToolContext, tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(APP)
    result = replace(ctx, "app.py", "def sub(a, b):\n  return a - b", "x")
    assert result.is_error
    assert "line(s) 5 if whitespace is ignored" in result.text


def test_many_matches_name_every_line(ctx: ToolContext, tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(APP)
    before = (tmp_path / "app.py").read_bytes()
    result = replace(ctx, "app.py", "return a - b", "return 0")
    assert result.is_error
    assert "2 times" in result.text and "lines 2, 6" in result.text
    assert (tmp_path / "app.py").read_bytes() == before


def test_overlapping_matches_are_ambiguous(ctx: ToolContext, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("aaa\n")
    result = replace(ctx, "a.txt", "aa", "b")
    assert result.is_error and "2 times" in result.text
    assert (tmp_path / "a.txt").read_text() == "aaa\n"


def test_empty_old_str_is_an_error(ctx: ToolContext, tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(APP)
    result = replace(ctx, "app.py", "", "x")
    assert result.is_error and "old_str is empty" in result.text
    assert (tmp_path / "app.py").read_text() == APP


def test_replace_in_missing_or_binary_file(ctx: ToolContext, tmp_path: Path) -> None:
    assert "does not exist" in replace(ctx, "ghost.py", "a", "b").text
    (tmp_path / "img.bin").write_bytes(b"\x00\x01abc")
    result = replace(ctx, "img.bin", "abc", "x")
    assert result.is_error and "binary" in result.text
    assert (tmp_path / "img.bin").read_bytes() == b"\x00\x01abc"


def test_crlf_stays_crlf(ctx: ToolContext, tmp_path: Path) -> None:
    path = tmp_path / "win.txt"
    path.write_bytes(b"first\r\nsecond\r\nthird\r\n")
    result = replace(ctx, "win.txt", "second\nthird", "2nd\n3rd\nfourth")
    assert not result.is_error, result.text
    assert path.read_bytes() == b"first\r\n2nd\r\n3rd\r\nfourth\r\n"


def test_latin1_bytes_are_kept(ctx: ToolContext, tmp_path: Path) -> None:
    path = tmp_path / "legacy.txt"
    original = "café = 1\nnaïve = 2\n".encode("latin-1") + b"raw \x81\x8d byte\n"
    path.write_bytes(original)
    result = replace(ctx, "legacy.txt", "naïve = 2", "naïve = 3")
    assert not result.is_error, result.text
    assert path.read_bytes() == original.replace(b"= 2", b"= 3")


def test_unencodable_text_is_refused_and_file_untouched(ctx: ToolContext, tmp_path: Path) -> None:
    path = tmp_path / "legacy.txt"
    path.write_bytes("café\n".encode("latin-1"))
    result = replace(ctx, "legacy.txt", "café", "café ☕")
    assert result.is_error and "cannot represent" in result.text
    assert path.read_bytes() == "café\n".encode("latin-1")
    assert no_temp_files(tmp_path)


def test_utf8_bom_is_kept(ctx: ToolContext, tmp_path: Path) -> None:
    path = tmp_path / "bom.cs"
    path.write_bytes(b"\xef\xbb\xbfclass A {}\n")
    result = replace(ctx, "bom.cs", "class A", "class B")
    assert not result.is_error, result.text
    assert path.read_bytes() == b"\xef\xbb\xbfclass B {}\n"


def test_utf16_file_stays_utf16(ctx: ToolContext, tmp_path: Path) -> None:
    path = tmp_path / "wide.txt"
    path.write_bytes(b"\xff\xfe" + "x = 1\r\n".encode("utf-16-le"))
    assert not replace(ctx, "wide.txt", "x = 1", "x = 2").is_error
    assert path.read_bytes() == b"\xff\xfe" + "x = 2\r\n".encode("utf-16-le")


def test_executable_mode_is_kept(ctx: ToolContext, tmp_path: Path) -> None:
    script = tmp_path / "run.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o755)
    assert not replace(ctx, "run.sh", "echo hi", "echo bye").is_error
    assert stat.S_IMODE(script.stat().st_mode) == 0o755
    assert script.read_text() == "#!/bin/sh\necho bye\n"


def test_symlink_is_followed_and_stays_a_link(ctx: ToolContext, tmp_path: Path) -> None:
    (tmp_path / "real.txt").write_text("value = 1\n")
    (tmp_path / "link.txt").symlink_to("real.txt")
    assert not replace(ctx, "link.txt", "1", "2").is_error
    assert (tmp_path / "link.txt").is_symlink()
    assert (tmp_path / "real.txt").read_text() == "value = 2\n"


def test_concurrent_edits_to_one_file_both_land(ctx: ToolContext, tmp_path: Path) -> None:
    path = tmp_path / "shared.txt"
    path.write_text("".join(f"line {n}\n" for n in range(20)))

    async def both() -> list[ToolResult]:
        tool = StrReplaceTool()
        calls = [
            tool.run({"path": "shared.txt", "old_str": f"line {n}\n", "new_str": f"LINE {n}\n"}, ctx)
            for n in range(20)
        ]
        return await asyncio.gather(*calls)

    results = asyncio.run(both())
    assert not any(r.is_error for r in results)
    assert path.read_text() == "".join(f"LINE {n}\n" for n in range(20))


# --- insert -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (0, "new\na\nb\nc\n"),
        (2, "a\nb\nnew\nc\n"),
        (3, "a\nb\nc\nnew\n"),
    ],
)
def test_insert_positions(ctx: ToolContext, tmp_path: Path, line: int, expected: str) -> None:
    (tmp_path / "f.txt").write_text("a\nb\nc\n")
    result = insert(ctx, "f.txt", line, "new")
    assert not result.is_error, result.text
    assert (tmp_path / "f.txt").read_text() == expected
    assert f"{line + 1:6d}\tnew" in result.text


def test_insert_at_end_without_final_newline(ctx: ToolContext, tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("a\nb")
    assert not insert(ctx, "f.txt", 2, "c\n").is_error
    assert (tmp_path / "f.txt").read_text() == "a\nb\nc\n"


def test_insert_out_of_range_names_line_count(ctx: ToolContext, tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("a\nb\nc\n")
    for bad in (4, -1):
        result = insert(ctx, "f.txt", bad, "x")
        assert result.is_error and "has 3 lines" in result.text
    assert (tmp_path / "f.txt").read_text() == "a\nb\nc\n"


def test_insert_keeps_crlf(ctx: ToolContext, tmp_path: Path) -> None:
    (tmp_path / "w.txt").write_bytes(b"a\r\nb\r\n")
    assert not insert(ctx, "w.txt", 1, "x\ny").is_error
    assert (tmp_path / "w.txt").read_bytes() == b"a\r\nx\r\ny\r\nb\r\n"
    assert no_temp_files(tmp_path)


def test_insert_argument_errors(ctx: ToolContext, tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("a\n")
    assert "nothing to insert" in insert(ctx, "f.txt", 0, "").text
    bad = call(InsertTool(), ctx, path="f.txt", insert_line=True, new_str="x")
    assert bad.is_error and "integer" in bad.text
    assert (tmp_path / "f.txt").read_text() == "a\n"
