"""What is sent of old tool results: folded in the request once read, kept whole in the session log."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.foundation_bench import FIRST_REQUEST_TARGET_B, LAST_REQUEST_TARGET_B
from kimicode.agent.folding import (
    FOLD_CHUNK_BYTES,
    FOLD_HEAD_CHARS,
    FOLD_KEEP_STEPS,
    FOLD_MIN_CHARS,
    Folder,
    fold_text,
    folded_lines_note,
    repeated_run_note,
    same_output_note,
)
from kimicode.agent.notes import repeated
from kimicode.llm.messages import tool_messages
from tests.clirun import run_cli, write_home_config
from tests.fake_llm.script import Reply, ToolCall
from tests.fake_llm.server import FakeLLM

STEPS = 100
RUN_NOTE_START = repeated_run_note(7).split("7")[0]


@pytest.fixture
def fake() -> FakeLLM:
    with FakeLLM() as server:
        yield server


def _run(fake: FakeLLM, home: Path, cwd: Path, *args: str) -> None:
    proc = run_cli(["-p", "-y", "--max-steps", str(STEPS + 5), *args], home=home, cwd=cwd,
                   base_url=fake.base_url, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr


def _session_messages(home: Path) -> list[dict]:
    (path,) = list((home / "sessions").rglob("*.jsonl"))
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return [r["message"] for r in records if r.get("type") == "message"]


def _bash(command: str) -> Reply:
    return Reply(tool_calls=[ToolCall("bash", {"command": command})])


def test_a_100_step_loop_sends_a_small_101st_request_and_logs_every_result(fake: FakeLLM, tmp_path: Path) -> None:
    home, cwd = tmp_path / "home", tmp_path / "ws"
    cwd.mkdir()
    write_home_config(home, "")
    fake.script(*[_bash("true") for _ in range(STEPS)], Reply(content="done"))
    _run(fake, home, cwd, "loop")

    requests = fake.requests
    assert len(requests) == STEPS + 1
    assert len(requests[0].raw) <= FIRST_REQUEST_TARGET_B
    assert len(requests[-1].raw) <= LAST_REQUEST_TARGET_B
    # A run of the same call with the same output is sent once, saying how often it was made.
    sent_results = [m["content"] for m in requests[-1].tool_results()]
    assert len(sent_results) < STEPS
    runs = [int(c.rsplit(RUN_NOTE_START, 1)[1].split()[0]) for c in sent_results if RUN_NOTE_START in c]
    assert runs and sum(runs) + len(sent_results) - len(runs) == STEPS
    logged = _session_messages(home)
    # The first requests carry the history exactly as logged: nothing is folded before it is read.
    for request in requests[: FOLD_KEEP_STEPS + 1]:
        assert request.messages == logged[: len(request.messages)]
    # The log keeps every result whole, notes included.
    results = [m for m in logged if m["role"] == "tool"]
    assert len(results) == STEPS
    assert results[49]["content"].endswith(repeated("bash", 50))
    # The newest results are sent as they are.
    assert requests[-1].messages[-1] == logged[-2]

    # Most requests start with the previous one's messages, byte for byte (the prompt cache's prefix).
    extending = sum(
        1 for a, b in zip(requests, requests[1:], strict=False) if b.messages[: len(a.messages)] == a.messages
    )
    assert extending >= STEPS * 2 // 3

    # A resumed session goes on from the whole log.
    fake.script(Reply(content="still done"))
    _run(fake, home, cwd, "-C", "go on")
    resumed = fake.requests[-1]
    assert resumed.messages[-1]["content"] == "go on"
    assert len(resumed.raw) <= LAST_REQUEST_TARGET_B + 1024
    assert len([m for m in _session_messages(home) if m["role"] == "tool"]) == STEPS


def test_long_old_results_are_cut_and_repeats_named(fake: FakeLLM, tmp_path: Path) -> None:
    home, cwd = tmp_path / "home", tmp_path / "ws"
    cwd.mkdir()
    write_home_config(home, "")
    fake.script(_bash("true"), _bash("seq 1 3000"), _bash("seq 3000"), *[_bash(f"echo {i}") for i in range(6)], Reply(content="ok"))
    _run(fake, home, cwd, "count")

    logged = [m for m in _session_messages(home) if m["role"] == "tool"]
    assert "\n1500\n" in logged[1]["content"] and "\n1500\n" in logged[2]["content"]  # whole in the log
    last = fake.requests[-1]
    first, second = last.tool_results()[1:3]
    assert first["content"].startswith("1\n2\n") and first["content"].endswith(logged[1]["content"][-100:])
    assert "\n1500\n" not in first["content"] and "call the tool again" in first["content"]
    assert len(first["content"]) < FOLD_MIN_CHARS + FOLD_HEAD_CHARS
    assert second["content"] == same_output_note(first["tool_call_id"])


def _step(number: int, output: str) -> list[dict]:
    call = {"id": f"c{number}", "type": "function", "function": {"name": "bash", "arguments": f'{{"n":{number}}}'}}
    return [{"role": "assistant", "content": "", "tool_calls": [call]}, *tool_messages(f"c{number}", output)]


def test_folding_moves_in_chunks_and_starts_over_when_the_history_changes() -> None:
    history: list[dict] = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]
    folder = Folder()
    sent: list[list[dict]] = []
    for number in range(40):
        history.extend(_step(number, f"line {number}\n" * 300))
        sent.append(folder.request(history))
    assert history[2]["role"] == "assistant" and "line 0\n" * 300 == history[3]["content"]  # untouched
    changes = [i for i in range(1, len(sent)) if sent[i][: len(sent[i - 1])] != sent[i - 1]]
    assert changes and len(changes) < len(sent) // 2
    assert any(len(json.dumps(r)) < len(json.dumps(history[: len(r)])) for r in sent)  # something folded
    for number, request in enumerate(sent):  # the newest steps are always sent whole
        length = 2 + 2 * (number + 1)
        assert request[-2 * FOLD_KEEP_STEPS :] == history[:length][-2 * FOLD_KEEP_STEPS :]
    # A history replaced behind the boundary (a compaction) is folded from scratch, not mixed up.
    replaced = [history[0], {"role": "user", "content": "summary"}, *history[-4:]]
    assert folder.request(replaced) == replaced


def test_small_savings_wait_for_a_chunk() -> None:
    history: list[dict] = [{"role": "system", "content": "s"}]
    folder = Folder()
    for number in range(FOLD_KEEP_STEPS + 1):
        history.extend(_step(number, "x" * (FOLD_MIN_CHARS + FOLD_CHUNK_BYTES // 4)))
    assert folder.request(history) == history


def test_fold_text_keeps_head_and_tail_and_says_what_is_left_out() -> None:
    lines = [f"line {i}" for i in range(1000)]
    folded = fold_text("\n".join(lines))
    assert folded.startswith("line 0\nline 1\n") and folded.endswith("line 998\nline 999")
    assert "line 500" not in folded and len(folded) < FOLD_MIN_CHARS
    kept = folded.splitlines()
    left_out = len(lines) - len(kept) + 1
    assert any(line.startswith(folded_lines_note(left_out, 0).split(" lines")[0]) for line in kept)
    one_line = "x" * 5000
    assert fold_text(one_line).startswith("x" * FOLD_HEAD_CHARS + "\n[") and len(fold_text(one_line)) < 1200
    assert fold_text("short\n" * 10) == "short\n" * 10


def test_a_message_replaced_in_the_middle_of_the_history_is_sent_as_it_is_now() -> None:
    history: list[dict] = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]
    folder = Folder()
    for number in range(40):
        history.extend(_step(number, f"line {number}\n" * 300))
        folder.request(history)
    # Same length, same newest messages: only an old result differs (a new dict where the old one was).
    history[3] = {**history[3], "content": "rewritten"}
    assert "rewritten" in [m.get("content") for m in folder.request(history)]


def test_a_history_rebuilt_with_equal_messages_is_sent_as_before_and_a_changed_one_anew() -> None:
    """The folded part is kept while every message behind the boundary is the same or an equal one (a
    history read back from the session log); any other change folds from scratch."""
    import copy

    history: list[dict] = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]
    folder = Folder()
    for number in range(40):
        history.extend(_step(number, f"line {number}\n" * 300))
        before = folder.request(history)
    rebuilt = copy.deepcopy(history)
    assert folder.request(rebuilt) == before
    rebuilt[5] = {**rebuilt[5], "content": rebuilt[5]["content"] + "changed"}
    again = folder.request(rebuilt)
    assert again == Folder().request(rebuilt) and again != before
