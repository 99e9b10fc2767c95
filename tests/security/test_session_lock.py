"""A session belongs to the process using it: a second `-C` on it forks instead of writing into it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from kimicode.session.replay import INTERRUPTED_TOOL_RESULT
from kimicode.session.store import SessionStore
from tests.clirun import cli_env, run_cli
from tests.fake_llm import FakeLLM, RecordedRequest, Reply, ToolCall
from tests.replpty import Repl, wait_until

# KIMICODE_HOME with quick retries (conftest's home): a faulty reply fails in milliseconds.
pytestmark = pytest.mark.quick_retries

IN_USE = re.compile(
    r"session (\S+) is in use by another kimicode \(pid (\d+)\); continuing in new session (\S+) with its history"
)


def session_files(home: Path) -> list[Path]:
    return sorted((home / "sessions").glob("*/*.jsonl"))


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def texts(path: Path) -> list[str]:
    return [str(r["message"].get("content")) for r in records(path) if r.get("type") == "message"]


# The first process's tool call says it has started (the file "running"), then runs until the test lets it
# finish, so the second process certainly starts while the first is mid-call (however slow the machine).
WAIT_FOR_GO = "touch running; for i in $(seq 600); do [ -f go ] && break; sleep 0.1; done; echo A-finished"


def by_task(request: RecordedRequest) -> Reply:
    """Answers by the task each process was given, so two processes can share one server."""
    last = request.messages[-1]
    task = request.last_user_text()
    if task == "first":
        return Reply(content="first answer")
    if task == "task A":
        if last.get("role") == "tool":
            return Reply(content="A done")
        return Reply(tool_calls=[ToolCall("bash", {"command": WAIT_FOR_GO})])
    return Reply(content=f"answer to {task}")


def test_second_headless_continue_forks_and_leaves_the_first_alone(home: Path, workspace: Path) -> None:
    with FakeLLM() as fake:
        fake.responder = by_task
        assert run_cli(["-p", "first"], home=home, cwd=workspace, base_url=fake.base_url).returncode == 0
        [original] = session_files(home)
        first = subprocess.Popen(
            [sys.executable, "-m", "kimicode", "-p", "-y", "-C", "task A"],
            cwd=workspace,
            env=cli_env(home, fake.base_url),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert fake.wait_for_requests(2, timeout=30)
            assert wait_until(lambda: (workspace / "running").exists(), 30)  # the first is running its tool call
            second = run_cli(["-p", "-C", "task B"], home=home, cwd=workspace, base_url=fake.base_url)
            assert first.poll() is None, "the first run ended before the second one started; the test proves nothing"
            (workspace / "go").touch()
            out, err = first.communicate(timeout=90)
        finally:
            if first.poll() is None:
                first.kill()
                first.wait()
    assert first.returncode == 0, err
    assert out.strip() == "A done"
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == "answer to task B"
    said = IN_USE.search(second.stderr)
    assert said, second.stderr
    assert said.group(1) == original.stem and int(said.group(2)) == first.pid
    assert len([line for line in second.stderr.splitlines() if "in use" in line]) == 1

    # The original holds only the first process's records, whole and in order.
    kept = texts(original)
    assert kept[1:4] == ["first", "first answer", "task A"] and kept[-1] == "A done"
    assert "task B" not in original.read_text()
    loaded = SessionStore(home).open(original.stem, workspace).load_messages()
    assert loaded.warnings == []
    assert not any(INTERRUPTED_TOOL_RESULT in str(m.get("content")) for m in loaded.messages)
    assert any("A-finished" in str(m.get("content")) for m in loaded.messages if m.get("role") == "tool")

    # The fork starts with the history and records where it came from.
    fork = next(p for p in session_files(home) if p.stem == said.group(3))
    header = records(fork)[0]
    assert header["type"] == "session" and header["forked_from"] == original.stem
    assert texts(fork)[1:3] == ["first", "first answer"]
    assert "task B" in texts(fork) and "answer to task B" in texts(fork)


def test_continue_after_the_first_process_ended_uses_the_same_session(home: Path, workspace: Path) -> None:
    with FakeLLM() as fake:
        fake.responder = by_task
        assert run_cli(["-p", "first"], home=home, cwd=workspace, base_url=fake.base_url).returncode == 0
        again = run_cli(["-p", "-C", "again"], home=home, cwd=workspace, base_url=fake.base_url)
    assert again.returncode == 0, again.stderr
    assert "in use" not in again.stderr
    [only] = session_files(home)
    assert texts(only)[1:] == ["first", "first answer", "again", "answer to again"]


def test_repl_continue_on_a_session_in_use_offers_a_fork(
    home: Path, workspace: Path, fake_llm: FakeLLM, spawn: Callable[..., Repl]
) -> None:
    fake_llm.responder = by_task
    assert run_cli(["-p", "first"], home=home, cwd=workspace, base_url=fake_llm.base_url).returncode == 0
    [original] = session_files(home)
    holder = spawn("-C")
    holder.expect("resumed session")
    holder.wait_prompt()

    quitter = spawn("-C")
    quitter.expect("is in use by another kimicode")
    quitter.expect("fork")
    quitter.send("q")
    assert quitter.wait_exit() == 0

    forker = spawn("-C")
    forker.expect("is in use by another kimicode")
    forker.send("f")
    forker.wait_prompt()
    forker.send_line("from the fork")
    forker.expect("answer to from the fork")
    forker.wait_prompt()
    forker.send("\x04")
    forker.wait_exit()

    holder.send_line("from the holder")
    holder.expect("answer to from the holder")
    assert "from the fork" not in original.read_text()
    assert "from the holder" in original.read_text()
    [fork] = [p for p in session_files(home) if p != original]
    assert records(fork)[0]["forked_from"] == original.stem
    assert texts(fork)[1:] == ["first", "first answer", "from the fork", "answer to from the fork"]
