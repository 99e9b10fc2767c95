"""view and the editing tools against hostile or unusual files: devices, FIFOs, sockets, huge files,
mixed line endings, read-only files and hard links."""

from __future__ import annotations

import asyncio
import os
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from kimicode.tools.base import Tool, ToolContext, ToolResult
from kimicode.tools.createfile import CreateFileTool
from kimicode.tools.insert import InsertTool
from kimicode.tools.strreplace import StrReplaceTool
from kimicode.tools.view import ViewTool
from tests.clirun import REPO


def call(tool: Tool, ctx: ToolContext, timeout: float = 10.0, **args: Any) -> ToolResult:
    """Run the tool in a thread, so a tool blocked in a system call fails the test instead of hanging it."""
    box: list[ToolResult | BaseException] = []

    def run() -> None:
        try:
            box.append(asyncio.run(tool.run(args, ctx)))
        except BaseException as exc:  # noqa: BLE001 - reported below
            box.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        pytest.fail(f"{tool.name} {args} did not return within {timeout} s")
    if isinstance(box[0], BaseException):
        raise box[0]
    return box[0]


def release_fifo(path: Path) -> None:
    """Open the FIFO's other end without blocking, so a reader stuck on it can go on."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return
    os.close(fd)


@pytest.fixture
def ctx(tmp_path: Path) -> ToolContext:
    return ToolContext(workspace=tmp_path)


# --- view: what is not a regular file --------------------------------------------------------------


def test_view_dev_zero_is_refused_quickly(tmp_path: Path) -> None:
    # In a child with an address-space limit: an unbounded read must not take this machine's memory.
    code = (
        "import asyncio, resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))\n"
        "from pathlib import Path\n"
        "from kimicode.tools.base import ToolContext\n"
        "from kimicode.tools.view import ViewTool\n"
        "r = asyncio.run(ViewTool().run({'path': '/dev/zero'}, ToolContext(workspace=Path(sys.argv[1]))))\n"
        "print(r.is_error, r.text[:500])\n"
    )
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=60, cwd=REPO
    )
    assert time.monotonic() - started < 10.0
    assert proc.stdout.startswith("True "), proc.stdout + proc.stderr
    assert "character device" in proc.stdout and len(proc.stdout) < 400


def test_view_fifo_returns_an_error_without_hanging(ctx: ToolContext, tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    started = time.monotonic()
    try:
        result = call(ViewTool(), ctx, timeout=3.0, path="pipe")
    finally:
        release_fifo(tmp_path / "pipe")
    assert time.monotonic() - started < 1.0
    assert result.is_error and "FIFO" in result.text


def test_view_fifo_with_an_image_name_is_refused_too(ctx: ToolContext, tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "shot.png")
    try:
        result = call(ViewTool(), ctx, timeout=3.0, path="shot.png")
    finally:
        release_fifo(tmp_path / "shot.png")
    assert result.is_error and "FIFO" in result.text


def test_view_socket_is_refused(ctx: ToolContext, tmp_path: Path) -> None:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        server.bind(str(tmp_path / "sock"))
        server.listen(1)
        result = call(ViewTool(), ctx, timeout=3.0, path="sock")
    finally:
        server.close()
    assert result.is_error and "is a socket" in result.text


def test_edit_of_a_fifo_is_refused_without_hanging(ctx: ToolContext, tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    try:
        result = call(StrReplaceTool(), ctx, timeout=3.0, path="pipe", old_str="a", new_str="b")
    finally:
        release_fifo(tmp_path / "pipe")
    assert result.is_error and "FIFO" in result.text
    assert stat.S_ISFIFO((tmp_path / "pipe").stat().st_mode)


# --- view: big files are read in bounded pieces --------------------------------------------------


@pytest.fixture
def big_file(tmp_path: Path) -> Path:
    path = tmp_path / "big.log"
    line = "x" * 90 + "\n"
    with path.open("w") as f:
        for n in range(1, 200_001):  # ~18 MB
            f.write(f"{n:08d} {line}")
    return path


def test_view_big_file_reads_a_bounded_amount_and_says_so(ctx: ToolContext, big_file: Path) -> None:
    import tracemalloc

    tracemalloc.start()
    result = call(ViewTool(), ctx, path="big.log")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert not result.is_error, result.text
    assert peak < 8 * 1024 * 1024  # the 18 MB file was not loaded whole
    assert "00000001 xxx" in result.text
    assert len(result.text) < 17_000
    assert "MB" in result.text and "view_range" in result.text


def test_view_range_works_deep_in_a_big_file(ctx: ToolContext, big_file: Path) -> None:
    result = call(ViewTool(), ctx, path="big.log", view_range=[150_000, 150_002])
    assert not result.is_error, result.text
    assert "150000\t00150000 x" in result.text
    assert "150002\t00150002 x" in result.text
    assert "00150003" not in result.text


def test_view_range_past_the_end_of_a_big_file_is_an_error(ctx: ToolContext, big_file: Path) -> None:
    result = call(ViewTool(), ctx, path="big.log", view_range=[300_000, 300_010])
    assert result.is_error and "200000 lines" in result.text


# --- edits keep each line's own ending -----------------------------------------------------------

MOSTLY_CRLF = b"one\r\ntwo\r\nthree\nfour\r\nfive\r\n"


def test_strreplace_on_line_1_keeps_an_unrelated_lone_lf(ctx: ToolContext, tmp_path: Path) -> None:
    path = tmp_path / "mixed.txt"
    path.write_bytes(MOSTLY_CRLF)
    result = call(StrReplaceTool(), ctx, path="mixed.txt", old_str="one", new_str="ONE")
    assert not result.is_error, result.text
    assert path.read_bytes() == b"ONE\r\ntwo\r\nthree\nfour\r\nfive\r\n"


def test_strreplace_on_the_lone_lf_line_keeps_it_and_new_lines_take_crlf(ctx: ToolContext, tmp_path: Path) -> None:
    path = tmp_path / "mixed.txt"
    path.write_bytes(MOSTLY_CRLF)
    result = call(StrReplaceTool(), ctx, path="mixed.txt", old_str="three\nfour", new_str="3\n3.5\nfour")
    assert not result.is_error, result.text
    assert path.read_bytes() == b"one\r\ntwo\r\n3\n3.5\r\nfour\r\nfive\r\n"


def test_insert_keeps_endings_and_uses_the_dominant_one(ctx: ToolContext, tmp_path: Path) -> None:
    path = tmp_path / "mixed.txt"
    path.write_bytes(MOSTLY_CRLF)
    result = call(InsertTool(), ctx, path="mixed.txt", insert_line=1, new_str="new a\nnew b")
    assert not result.is_error, result.text
    assert path.read_bytes() == b"one\r\nnew a\r\nnew b\r\ntwo\r\nthree\nfour\r\nfive\r\n"
    result = call(InsertTool(), ctx, path="mixed.txt", insert_line=7, new_str="end")
    assert not result.is_error, result.text
    assert path.read_bytes() == b"one\r\nnew a\r\nnew b\r\ntwo\r\nthree\nfour\r\nfive\r\nend\r\n"


def test_mostly_lf_file_keeps_its_lone_crlf(ctx: ToolContext, tmp_path: Path) -> None:
    path = tmp_path / "mixed.txt"
    path.write_bytes(b"a\nb\r\nc\nd\n")
    result = call(StrReplaceTool(), ctx, path="mixed.txt", old_str="a", new_str="A")
    assert not result.is_error, result.text
    assert path.read_bytes() == b"A\nb\r\nc\nd\n"


# --- read-only files ---------------------------------------------------------------------------------


@pytest.mark.parametrize("tool", ["strreplace", "insert", "createfile"])
def test_read_only_file_is_refused_and_untouched(tool: str, ctx: ToolContext, tmp_path: Path) -> None:
    path = tmp_path / "locked.txt"
    path.write_bytes(b"keep = 1\n")
    path.chmod(0o444)
    before = path.stat()
    if tool == "strreplace":
        result = call(StrReplaceTool(), ctx, path="locked.txt", old_str="1", new_str="2")
    elif tool == "insert":
        result = call(InsertTool(), ctx, path="locked.txt", insert_line=1, new_str="more")
    else:
        result = call(CreateFileTool(), ctx, path="locked.txt", content="new\n", overwrite=True)
    assert result.is_error and "read-only" in result.text
    after = path.stat()
    assert path.read_bytes() == b"keep = 1\n"
    assert stat.S_IMODE(after.st_mode) == 0o444
    assert after.st_ino == before.st_ino
    assert sorted(p.name for p in tmp_path.iterdir()) == ["locked.txt"]


# --- hard links --------------------------------------------------------------------------------------


@pytest.mark.parametrize("tool", ["strreplace", "insert", "createfile"])
def test_edit_keeps_hard_links(tool: str, ctx: ToolContext, tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_bytes(b"value = 1\n")
    path.chmod(0o640)
    os.link(path, tmp_path / "b.txt")
    inode = path.stat().st_ino
    if tool == "strreplace":
        result = call(StrReplaceTool(), ctx, path="a.txt", old_str="1", new_str="2")
        expected = b"value = 2\n"
    elif tool == "insert":
        result = call(InsertTool(), ctx, path="a.txt", insert_line=1, new_str="more = 3")
        expected = b"value = 1\nmore = 3\n"
    else:
        result = call(CreateFileTool(), ctx, path="a.txt", content="x\n", overwrite=True)
        expected = b"x\n"
    assert not result.is_error, result.text
    assert path.read_bytes() == expected
    assert (tmp_path / "b.txt").read_bytes() == expected
    assert path.stat().st_ino == inode == (tmp_path / "b.txt").stat().st_ino
    assert path.stat().st_nlink == 2
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.txt"]


def test_hard_linked_file_shrinks_correctly(ctx: ToolContext, tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_bytes(b"long line that will be cut\nsecond\n")
    os.link(path, tmp_path / "b.txt")
    result = call(StrReplaceTool(), ctx, path="a.txt", old_str="long line that will be cut\n", new_str="")
    assert not result.is_error, result.text
    assert (tmp_path / "b.txt").read_bytes() == b"second\n"


def test_ordinary_file_is_still_replaced_atomically(ctx: ToolContext, tmp_path: Path) -> None:
    """A reader that opened the file before the edit keeps seeing the whole old content."""
    path = tmp_path / "a.txt"
    path.write_bytes(b"old content\n")
    with path.open("rb") as reader:
        result = call(StrReplaceTool(), ctx, path="a.txt", old_str="old", new_str="new")
        assert not result.is_error, result.text
        assert reader.read() == b"old content\n"
    assert path.read_bytes() == b"new content\n"


def test_fifo_swapped_in_does_not_hang_view(ctx: ToolContext, tmp_path: Path) -> None:
    """Even a FIFO that a writer holds open is refused at once, not read."""
    fifo = tmp_path / "held"
    os.mkfifo(fifo)
    stop = threading.Event()

    def hold() -> None:
        fd = os.open(fifo, os.O_RDWR)  # a writer that never writes
        stop.wait(5)
        os.close(fd)

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    try:
        result = call(ViewTool(), ctx, timeout=3.0, path="held")
    finally:
        stop.set()
        thread.join()
    assert result.is_error and "FIFO" in result.text


def test_random_edits_change_only_the_edited_bytes(ctx: ToolContext, tmp_path: Path) -> None:
    import random

    rng = random.Random(9)
    path = tmp_path / "f.txt"
    for _ in range(60):
        words = [f"w{rng.randrange(10_000)}" for _ in range(rng.randrange(3, 30))]
        endings = [b"\n" if rng.random() < 0.3 else b"\r\n" for _ in words]
        endings[0] = b"\r\n"
        dominant = b"\r\n" if endings.count(b"\r\n") >= endings.count(b"\n") else b"\n"
        raw = b"".join(w.encode() + e for w, e in zip(words, endings))
        path.write_bytes(raw)
        target = rng.randrange(len(words))
        old = words[target]
        if raw.count(old.encode()) != 1:
            continue
        new = f"X{rng.randrange(100)}"
        result = call(StrReplaceTool(), ctx, path="f.txt", old_str=old, new_str=new)
        assert not result.is_error, result.text
        assert path.read_bytes() == raw.replace(old.encode(), new.encode())
        at = rng.randrange(len(words) + 1)
        result = call(InsertTool(), ctx, path="f.txt", insert_line=at, new_str="ins1\nins2")
        assert not result.is_error, result.text
        lines = raw.replace(old.encode(), new.encode()).splitlines(keepends=True)
        assert path.read_bytes() == b"".join(lines[:at] + [b"ins1" + dominant, b"ins2" + dominant] + lines[at:])
