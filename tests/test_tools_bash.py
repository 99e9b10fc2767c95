"""The bash tool against real subprocesses: output, exit codes, timeouts, cancellation, huge output."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from kimicode.tools.base import MAX_OUTPUT_CHARS, ToolContext, ToolResult
from kimicode.tools.bash import BashTool
from kimicode.tools.process import BoundedOutput, PipeReading


def run(ctx: ToolContext, command: str, **extra: object) -> ToolResult:
    return asyncio.run(BashTool().run({"command": command, **extra}, ctx))


@pytest.fixture
def ctx(tmp_path: Path) -> ToolContext:
    return ToolContext(workspace=tmp_path)


def process_alive(pid: int, grace: float = 5.0) -> bool:
    """A zombie waiting for an init that does not reap counts as gone: it runs nothing.

    SIGKILL is delivered asynchronously, so a process is given ``grace`` seconds to disappear.
    """
    deadline = time.monotonic() + grace
    while _running(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    return _running(pid)


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def kill_if_alive(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def test_output_is_merged_and_exit_code_reported(ctx: ToolContext) -> None:
    result = run(ctx, "echo out; echo err >&2; exit 3")
    assert result.text == "out\nerr\n[exit code: 3]"
    # The model reads the code; a failing command is not a tool failure.
    assert not result.is_error


def test_runs_in_workspace_with_extra_env_and_pagers_off(tmp_path: Path) -> None:
    ctx = ToolContext(workspace=tmp_path, env={"KIMI_TEST_VAR": "hello"})
    result = run(ctx, 'pwd; echo "$KIMI_TEST_VAR $PAGER $GIT_PAGER"; touch made-here')
    assert result.text.splitlines()[:2] == [str(tmp_path), "hello cat cat"]
    assert (tmp_path / "made-here").exists()


def test_stdin_is_closed(ctx: ToolContext) -> None:
    # `cat` with no input would wait forever on an open terminal; with stdin closed it ends at once.
    result = run(ctx, "cat; echo after", timeout=20)
    assert result.text == "after\n[exit code: 0]"


def test_signal_death_is_named(ctx: ToolContext) -> None:
    result = run(ctx, "kill -TERM $$")
    assert result.text == "[exit code: 143 (killed by SIGTERM)]"


def test_timeout_kills_grandchildren_and_keeps_partial_output(ctx: ToolContext, tmp_path: Path) -> None:
    result = run(ctx, "echo partial; sleep 100 & echo $! > pid; wait", timeout=1)
    pid = int((tmp_path / "pid").read_text())
    try:
        assert result.is_error
        assert result.text == "partial\n[timed out after 1s; process group killed]"
        assert not process_alive(pid)
    finally:
        kill_if_alive(pid)


def test_cancellation_kills_the_group_and_propagates(ctx: ToolContext, tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"

    async def scenario() -> None:
        task = asyncio.ensure_future(
            BashTool().run({"command": "sleep 100 & echo $! > pid.tmp; mv pid.tmp pid; wait"}, ctx)
        )
        for _ in range(2000):  # until the grandchild exists (bounded so a failure cannot hang)
            if pid_file.exists():
                break
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    pid = int(pid_file.read_text())
    try:
        assert not process_alive(pid)
    finally:
        kill_if_alive(pid)


def test_background_job_holding_the_pipe_does_not_hang(ctx: ToolContext, tmp_path: Path) -> None:
    result = run(ctx, "sleep 60 & echo $! > pid; echo started", timeout=30)
    pid = int((tmp_path / "pid").read_text())
    try:
        assert not result.is_error  # returned when the shell exited, long before the timeout
        assert result.text.startswith("started\n")
        assert "background process still holds the output pipe" in result.text
        assert result.text.endswith("[exit code: 0]")
    finally:
        kill_if_alive(pid)


def test_huge_output_keeps_head_and_tail_with_note(ctx: ToolContext) -> None:
    result = run(ctx, "seq 1 3000000")
    total_bytes = sum(len(f"{n}\n") for n in range(1, 3_000_001))
    assert len(result.text) <= MAX_OUTPUT_CHARS
    assert result.text.startswith("1\n2\n3\n4\n")
    assert result.text.endswith("2999999\n3000000\n[exit code: 0]")
    assert f"bytes of output elided ({total_bytes} in all)" in result.text


def test_fifty_megabytes_of_output_stay_bounded_in_memory(ctx: ToolContext) -> None:
    tracemalloc.start()
    try:
        result = run(ctx, "yes | head -c 50000000")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(result.text) <= MAX_OUTPUT_CHARS
    assert result.text.startswith("y\ny\n")
    assert result.text.endswith("y\ny\n[exit code: 0]")
    assert "(50000000 in all)" in result.text
    # Far below the 50 MB that went through: only chunks, the head and the tail are ever held.
    assert peak < 4_000_000


def test_bounded_output_does_not_split_utf8_at_the_tail() -> None:
    out = BoundedOutput(head_limit=4, tail_limit=5)
    out.feed(b"abcd" + ("é" * 10).encode())  # 20 bytes after the head; the tail keeps the last 5
    text = out.render()
    assert text.startswith("abcd\n[... ")
    assert "\ufffd" not in text
    assert text.endswith("éé")


def test_argument_errors(ctx: ToolContext) -> None:
    assert run(ctx, "   ").text == "Error: parameter 'command' is empty: give a bash command to run"
    bad = asyncio.run(BashTool().run({"command": "true", "timeout": 0}, ctx))
    assert bad.is_error and "timeout must be a positive" in bad.text
    missing = asyncio.run(BashTool().run({}, ctx))
    assert missing.is_error and "missing required parameter 'command'" in missing.text


def test_summary_is_the_first_command_line() -> None:
    assert BashTool().summary({"command": "pytest -q"}) == "bash pytest -q"
    assert BashTool().summary({"command": "cd x\nmake"}) == "bash cd x …"


def test_nul_byte_in_command_is_an_error_not_a_crash(ctx: ToolContext) -> None:
    result = run(ctx, "echo a\x00b")
    assert result.is_error and "cannot start bash" in result.text


def test_no_descriptor_is_left_open_after_commands_end_or_are_cancelled(ctx: ToolContext, tmp_path: Path) -> None:
    """The output pipe is closed whether the command ended, failed to start or was interrupted."""

    def open_fds() -> set[str]:
        return set(os.listdir("/proc/self/fd"))

    async def scenario() -> tuple[set[str], set[str], list[str]]:
        tool = BashTool()
        await tool.run({"command": "true"}, ctx)  # the loop's own descriptors (child watcher) exist now
        before = open_fds()
        texts = [(await tool.run({"command": f"echo run {i}; exit {i % 3}"}, ctx)).text for i in range(20)]
        started = tmp_path / "started"
        running = asyncio.ensure_future(tool.run({"command": "touch started; echo x; exec sleep 100"}, ctx))
        for _ in range(2000):  # until it runs (bounded so a failure cannot hang)
            if started.exists():
                break
            await asyncio.sleep(0.01)
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
        texts.append((await tool.run({"command": "echo a\x00b"}, ctx)).text)
        return before, open_fds(), texts

    before, after, texts = asyncio.run(scenario())
    assert texts[:3] == ["run 0\n[exit code: 0]", "run 1\n[exit code: 1]", "run 2\n[exit code: 2]"]
    assert "cannot start bash" in texts[-1]
    assert after - before == set()


def test_a_pipe_the_loop_cannot_watch_fails_the_call_and_kills_the_command(ctx: ToolContext, tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"

    async def scenario() -> ToolResult:
        loop = asyncio.get_running_loop()
        watch = loop.add_reader

        def refuse(fd: int, callback: Any, *args: Any) -> None:
            if not isinstance(getattr(callback, "__self__", None), PipeReading):
                return watch(fd, callback, *args)  # asyncio's own (starting the process)
            for _ in range(2000):  # the command runs by now (bounded so a failure cannot hang)
                if pid_file.exists() and pid_file.read_text().strip():
                    break
                time.sleep(0.01)
            raise OSError(28, "No space left on device")

        loop.add_reader = refuse  # type: ignore[method-assign]
        return await BashTool().run({"command": "echo $$ > pid.tmp; mv pid.tmp pid; exec sleep 100"}, ctx)

    result = asyncio.run(scenario())
    pid = int(pid_file.read_text())
    try:
        assert result.is_error and "reading the command's output failed" in result.text
        assert not process_alive(pid)
    finally:
        kill_if_alive(pid)


def test_output_that_cannot_be_kept_fails_the_reading_and_closes_the_pipe() -> None:
    async def scenario() -> tuple[BaseException | None, list[bytes], bool]:
        read_fd, write_fd = os.pipe()
        output = BoundedOutput()
        writes: list[bytes] = []

        def full_disk(chunk: bytes) -> None:
            writes.append(chunk)
            raise OSError(28, "No space left on device")

        output.sink = full_disk  # as for a command moved to the background, whose log is full
        reading = PipeReading(read_fd, output)
        try:
            os.write(write_fd, b"first")
            await asyncio.wait({reading}, timeout=30)
            try:
                os.write(write_fd, b"second")
                reader_closed = False
            except BrokenPipeError:  # nobody holds the reading end any more
                reader_closed = True
        finally:
            os.close(write_fd)
        return reading.exception(), writes, reader_closed

    error, writes, reader_closed = asyncio.run(scenario())
    assert isinstance(error, OSError) and error.errno == 28
    assert writes == [b"first"] and reader_closed
