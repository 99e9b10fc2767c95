"""The watchdog that ends a session's processes when kimicode cannot: only marked ones, and it holds nothing
of kimicode's (no key in its environment, no file descriptor but its pipe and /dev/null)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kimicode.security import orphans
from kimicode.tools.base import ToolContext
from kimicode.tools.bash import command_env
from tests.replpty import wait_until

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the watchdog is for Linux")


@pytest.fixture
def mark(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    monkeypatch.setenv("KIMI_API_KEY", "sk-watchdog-must-not-hold-this")
    orphans.release_watchdog()  # (one an earlier test of this process started)
    yield dict(orphans.command_mark())
    orphans.release_watchdog()


def _alive(proc: subprocess.Popen[bytes]) -> bool:
    return proc.poll() is None


def test_it_ends_the_marked_processes_and_leaves_the_others(mark: dict[str, str]) -> None:
    assert list(mark) == [orphans.MARK_VARIABLE] and len(mark[orphans.MARK_VARIABLE]) == 16
    marked = subprocess.Popen(["sleep", "30"], env={**os.environ, **mark}, start_new_session=True)
    # Not marked: started with another session's mark, and with none.
    other = subprocess.Popen(["sleep", "30"], env={**os.environ, orphans.MARK_VARIABLE: "0" * 16})
    unmarked = subprocess.Popen(["sleep", "30"])
    try:
        orphans.release_watchdog()
        assert wait_until(lambda: not _alive(marked), 5), "the marked process outlived the session"
        assert _alive(other) and _alive(unmarked)
    finally:
        for proc in (marked, other, unmarked):
            proc.kill()
            proc.wait()


def test_it_holds_no_key_and_no_descriptor_of_kimicode(monkeypatch: pytest.MonkeyPatch) -> None:
    # kimicode may itself inherit a descriptor its parent waits on (a pipe a script reads to its end):
    # the watchdog must not keep it open.
    monkeypatch.setenv("KIMI_API_KEY", "sk-watchdog-must-not-hold-this")
    orphans.release_watchdog()
    read_end, write_end = os.pipe()
    os.set_inheritable(write_end, True)
    try:
        orphans.command_mark()
        pid = orphans._watchdog
        assert pid is not None
        assert wait_until(lambda: b"watchdog.py" in Path(f"/proc/{pid}/cmdline").read_bytes(), 5)
        environ = Path(f"/proc/{pid}/environ").read_bytes()
        assert b"sk-watchdog" not in environ and orphans.MARK_VARIABLE.encode() not in environ
        # (while Python starts it has its script open too)
        assert wait_until(lambda: sorted(int(fd) for fd in os.listdir(f"/proc/{pid}/fd")) == [0, 1, 2], 5)
        assert os.getsid(pid) == pid  # a session of its own: Ctrl-C at the terminal does not reach it
    finally:
        orphans.release_watchdog()
        os.close(read_end)
        os.close(write_end)


def test_every_command_carries_the_mark(mark: dict[str, str], tmp_path: Path) -> None:
    env = command_env(ToolContext(workspace=tmp_path))
    assert env[orphans.MARK_VARIABLE] == mark[orphans.MARK_VARIABLE]
    assert "KIMI_API_KEY" not in env


def test_only_a_whole_entry_is_the_mark_wherever_it_sits_in_the_environment(mark: dict[str, str]) -> None:
    (name, value), = mark.items()
    entry = f"{name}={value}"
    # Marked: the mark after more than a page of other variables (read to its end), and as the first entry.
    big = {f"FILLER_{i}": "x" * 100 for i in range(200)}
    late = subprocess.Popen(["sleep", "30"], env={**big, **mark}, start_new_session=True)
    first = subprocess.Popen(["sleep", "30"], env={**mark, "AFTER": "1"}, start_new_session=True)
    # Not marked: the mark's text inside another entry, or as part of a longer or shorter one.
    near = [
        {"OTHER": entry},
        {f"X{name}": value},
        {name: value + "0"},
        {name: value[:-1]},
    ]
    spared = [subprocess.Popen(["sleep", "30"], env=env, start_new_session=True) for env in near]
    try:
        orphans.release_watchdog()
        assert wait_until(lambda: not _alive(late) and not _alive(first), 5), "a marked process outlived the session"
        assert all(_alive(proc) for proc in spared)
    finally:
        for proc in (late, first, *spared):
            proc.kill()
            proc.wait()


def _ended(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return True
    return stat[stat.rfind(b")") + 2 :].startswith(b"Z")  # (a zombie has ended; init reaps it)


def test_kimicode_killed_outright_leaves_no_unsandboxed_process_it_started(tmp_path: Path) -> None:
    """Through the CLI, sandbox off: a foreground command and a ``setsid`` escapee outlive a ``kill -9`` of
    kimicode only until the watchdog, started with the first command, ends them."""
    from tests.clirun import cli_env, write_home_config
    from tests.fake_llm import FakeLLM, Reply, ToolCall

    home, ws = tmp_path / "home", tmp_path / "ws"
    ws.mkdir()
    write_home_config(home, "")
    command = "setsid sh -c 'echo $$ > esc.pid; exec sleep 1000' & sleep 1000 & echo $! > fg.pid; touch started; wait"
    with FakeLLM() as fake:
        fake.script(
            Reply(tool_calls=[ToolCall("bash", {"command": "true"})]),
            Reply(tool_calls=[ToolCall("bash", {"command": command})]),
            Reply(content="never"),
        )
        proc = subprocess.Popen(
            [sys.executable, "-m", "kimicode", "-p", "-y", "--sandbox", "off", "loop"], cwd=ws,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=cli_env(home, fake.base_url),
        )
        try:
            assert wait_until(lambda: (ws / "started").exists() and (ws / "esc.pid").exists() or proc.poll() is not None, 60)
            assert (ws / "started").exists(), "the command did not run"
            pids = [int((ws / name).read_text()) for name in ("esc.pid", "fg.pid")]
            assert not any(_ended(pid) for pid in pids)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
    try:
        assert wait_until(lambda: all(_ended(pid) for pid in pids), 10), "a command's process outlived kimicode"
    finally:
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
