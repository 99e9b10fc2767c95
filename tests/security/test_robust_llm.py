"""The real CLI against a misbehaving endpoint: empty and cut-off replies, stalls, trickles and hangs end
as clear errors within the configured bounds; nonsensical limits are configuration errors."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.clirun import run_cli, write_home_config
from tests.fake_llm import FakeLLM, Fault, Reply, ToolCall

FAST = "retry_base_delay = 0.01\nmax_retries = 3\n"
BOUNDED = FAST + "stream_stall_timeout = 1\nrequest_timeout = 5\n"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "kimihome"
    write_home_config(home, FAST)
    return home


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "proj"
    repo.mkdir()
    (repo / "notes.txt").write_text("hello\n")
    return repo


def kimicode(fake: FakeLLM, home: Path, cwd: Path, *args: str, timeout: float = 60):
    return run_cli(list(args), home=home, cwd=cwd, base_url=fake.base_url, timeout=timeout)


def assert_valid_history(messages: list[dict]) -> None:
    """Every assistant tool call is answered by a tool message; no empty assistant message is sent."""
    pending: set[str] = set()
    for message in messages:
        if message["role"] == "assistant":
            assert not pending, f"tool calls left unanswered before {message}"
            calls = message.get("tool_calls") or []
            assert message.get("content") or calls, f"empty assistant message sent back: {message}"
            pending = {call["id"] for call in calls}
        elif message["role"] == "tool":
            pending.discard(message["tool_call_id"])
        else:
            assert not pending, f"tool calls left unanswered before {message}"


# --- empty replies and replies cut at the output limit -------------------------------------------------


def test_empty_reply_is_continued_once_then_succeeds(fake_llm: FakeLLM, home: Path, repo: Path) -> None:
    fake_llm.script(Reply(), Reply(content="Here is the answer."))
    proc = kimicode(fake_llm, home, repo, "-p", "answer me", "--output-format", "json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["result"] == "Here is the answer."
    assert len(fake_llm.chat_requests) == 2
    second = fake_llm.chat_requests[1].body["messages"]
    assert_valid_history(second)
    assert second[-1]["role"] == "user" and "empty" in second[-1]["content"]


def test_empty_reply_twice_is_an_error_exit_1(fake_llm: FakeLLM, home: Path, repo: Path) -> None:
    fake_llm.script(Reply(), Reply(reasoning="hmm"))
    proc = kimicode(fake_llm, home, repo, "-p", "answer me", "--output-format", "json")
    assert proc.returncode == 1, proc.stderr
    result = json.loads(proc.stdout)
    assert result["subtype"] == "error" and result["is_error"] is True
    assert "empty reply" in result["result"]
    assert len(fake_llm.chat_requests) == 2
    assert "Traceback" not in proc.stderr


def test_empty_reply_after_tool_calls_keeps_the_history_valid(fake_llm: FakeLLM, home: Path, repo: Path) -> None:
    fake_llm.script(
        Reply(tool_calls=[ToolCall("view", {"path": "notes.txt"})]),
        Reply(),
        Reply(content="It says hello."),
    )
    proc = kimicode(fake_llm, home, repo, "-p", "read notes")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "It says hello."
    assert_valid_history(fake_llm.chat_requests[2].body["messages"])


def test_length_cut_reply_is_retried_once_then_succeeds(fake_llm: FakeLLM, home: Path, repo: Path) -> None:
    fake_llm.script(
        Reply(
            content="A very long",
            tool_calls=[ToolCall("createfile", '{"path": "big.txt", "content": "aaaa')],
            finish_reason="length",
        ),
        Reply(content="Short answer."),
    )
    proc = kimicode(fake_llm, home, repo, "-p", "-y", "write it", "--output-format", "json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["result"] == "Short answer."
    assert not (repo / "big.txt").exists()  # the cut-off call was not run
    second = fake_llm.chat_requests[1].body["messages"]
    assert_valid_history(second)
    assert second[-1]["role"] == "user" and "output limit" in second[-1]["content"]
    assert "cut off" in proc.stderr


def test_length_cut_twice_is_an_error_exit_1(fake_llm: FakeLLM, home: Path, repo: Path) -> None:
    fake_llm.script(
        Reply(content="partial one", finish_reason="length"),
        Reply(content="partial two", finish_reason="length"),
    )
    proc = kimicode(fake_llm, home, repo, "-p", "write a novel", "--output-format", "json")
    assert proc.returncode == 1, proc.stderr
    result = json.loads(proc.stdout)
    assert result["subtype"] == "error" and "output" in result["result"] and "length" in result["result"]
    assert len(fake_llm.chat_requests) == 2


# --- stalls, trickles and hangs are bounded ---------------------------------------------------------------


def test_stall_mid_stream_is_retried_within_the_deadline(fake_llm: FakeLLM, home: Path, repo: Path) -> None:
    write_home_config(home, BOUNDED)
    fake_llm.script(Reply(content="never finished", chunk_size=2, fault=Fault.stall(after_chunks=2)), Reply(content="fine"))
    proc = kimicode(fake_llm, home, repo, "-p", "hi", timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "fine"
    assert "no data from the endpoint for 1 s" in proc.stderr
    first, second = fake_llm.chat_requests
    assert 0.9 < second.time - first.time < 3.0  # retried after the 1 s stall, not after request_timeout


def test_endless_stall_fails_within_the_total_deadline(fake_llm: FakeLLM, home: Path, repo: Path) -> None:
    write_home_config(home, "retry_base_delay = 0.01\nmax_retries = 20\nstream_stall_timeout = 1\nrequest_timeout = 3\n")
    fake_llm.script(*[Reply(content="x", fault=Fault.stall(after_chunks=1)) for _ in range(25)])
    proc = kimicode(fake_llm, home, repo, "-p", "hi", "--output-format", "json", timeout=30)
    elapsed = time.time() - fake_llm.chat_requests[0].time  # from the first request to the exit
    assert proc.returncode == 1, proc.stderr
    result = json.loads(proc.stdout)
    assert result["subtype"] == "error" and "gave up after 3 s" in result["result"]
    assert 2.9 < elapsed < 7.0, elapsed


def test_trickling_stream_is_bounded_by_the_total_deadline(fake_llm: FakeLLM, home: Path, repo: Path) -> None:
    write_home_config(home, FAST + "stream_stall_timeout = 1\nrequest_timeout = 3\n")
    fake_llm.script(*[Reply(content="x", fault=Fault.trickle(interval=0.2)) for _ in range(5)])
    proc = kimicode(fake_llm, home, repo, "-p", "hi", "--output-format", "json", timeout=30)
    elapsed = time.time() - fake_llm.chat_requests[0].time  # from the first request to the exit
    assert proc.returncode == 1, proc.stderr
    assert "gave up after 3 s" in json.loads(proc.stdout)["result"]
    assert 2.9 < elapsed < 7.0, elapsed


def test_hung_endpoint_fails_within_bounds(fake_llm: FakeLLM, home: Path, repo: Path) -> None:
    write_home_config(home, FAST + "stream_stall_timeout = 1\nrequest_timeout = 3\n")
    fake_llm.script(*[Reply(fault=Fault.hang()) for _ in range(5)])
    proc = kimicode(fake_llm, home, repo, "-p", "hi", "--output-format", "json", timeout=30)
    elapsed = time.time() - fake_llm.chat_requests[0].time  # from the first request to the exit
    assert proc.returncode == 1, proc.stderr
    result = json.loads(proc.stdout)["result"]
    assert "gave up after 3 s" in result and "no data from the endpoint for 1 s" in result
    assert 2.9 < elapsed < 7.0, elapsed


# --- limits that make no sense are configuration errors ------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "named"),
    [
        ("request_timeout = 0", "request_timeout"),
        ("request_timeout = -5", "request_timeout"),
        ("max_retries = -1", "max_retries"),
        ("stream_stall_timeout = 0", "stream_stall_timeout"),
    ],
)
def test_nonsensical_limits_exit_2_with_one_line(setting: str, named: str, home: Path, repo: Path) -> None:
    write_home_config(home, setting + "\n")
    proc = run_cli(["-p", "hi"], home=home, cwd=repo, base_url="http://127.0.0.1:9/v1", timeout=30)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and named in proc.stderr
    assert "Traceback" not in proc.stderr
