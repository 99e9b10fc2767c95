"""`kimicode rewind SESSION_ID N` as a user runs it: a fork that ends before message N, the files back."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from kimicode.session.records import RECORD_CHECKPOINT
from kimicode.session.rewind import user_turns
from kimicode.session.store import SessionStore
from kimicode.vcs.checkpoints import Checkpoints
from tests.clirun import run_cli
from tests.fake_llm import FakeLLM, Reply


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "proj"
    ws.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=ws, check=True)
    return ws


def three_turns(home: Path, workspace: Path) -> str:
    """A session of three turns, each changing notes.txt, with the checkpoints a REPL takes."""
    store = SessionStore(home)
    session = store.create(workspace, "kimi-k2.5", "agent")
    checkpoints = Checkpoints(workspace, session.id)
    session.append_message({"role": "system", "content": "sys"})
    for n in (1, 2, 3):
        checkpoints.begin_turn(f"turn {n}")
        session.append_record(RECORD_CHECKPOINT, **checkpoints.mark())
        session.append_message({"role": "user", "content": f"message {n}"})
        (workspace / "notes.txt").write_text(f"after {n}\n")
        session.append_message({"role": "assistant", "content": f"answer {n}"})
    session.close()
    return session.id


def test_rewind_forks_before_message_n_and_restores_the_files(
    fake_llm: FakeLLM, home: Path, workspace: Path
) -> None:
    source = three_turns(home, workspace)
    original = (SessionStore(home).open(source, workspace).path).read_bytes()
    result = run_cli(["rewind", source, "2"], home=home, cwd=workspace)
    assert result.returncode == 0, result.stderr
    fork = result.stdout.strip()
    assert fork and fork != source and "\n" not in fork
    assert (workspace / "notes.txt").read_text() == "after 1\n"
    assert "restored notes.txt" in result.stderr
    assert SessionStore(home).open(source, workspace).path.read_bytes() == original  # untouched
    # continuing the fork sends the history up to the end of the first turn
    fake_llm.script(Reply(content="again"))
    result = run_cli(["-r", fork, "-p", "message 2 again"], home=home, cwd=workspace, base_url=fake_llm.base_url)
    assert result.returncode == 0, result.stderr
    sent = [(m["role"], m["content"]) for m in fake_llm.chat_requests[-1].messages[1:]]
    assert sent == [("user", "message 1"), ("assistant", "answer 1"), ("user", "message 2 again")]


def test_code_only_and_conversation_only(home: Path, workspace: Path) -> None:
    source = three_turns(home, workspace)
    result = run_cli(["rewind", source, "3", "--conversation-only"], home=home, cwd=workspace)
    assert result.returncode == 0, result.stderr
    assert (workspace / "notes.txt").read_text() == "after 3\n"
    fork = SessionStore(home).open(result.stdout.strip(), workspace)
    assert [t.text for t in user_turns(fork)] == ["message 1", "message 2"]
    result = run_cli(["rewind", source, "1", "--code-only"], home=home, cwd=workspace)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""  # no new session
    assert not (workspace / "notes.txt").exists()  # before the first turn there was no notes.txt


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["4"], "N must be 1 to 3"),
        (["0"], "N must be 1 to 3"),
        (["2", "--code-only", "--conversation-only"], "exclude each other"),
    ],
)
def test_bad_input_is_one_line_and_changes_nothing(home: Path, workspace: Path, args: list[str], said: str) -> None:
    source = three_turns(home, workspace)
    result = run_cli(["rewind", source, *args], home=home, cwd=workspace)
    assert result.returncode == 2
    assert said in result.stderr and "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert (workspace / "notes.txt").read_text() == "after 3\n"
    assert len(SessionStore(home).list(workspace)) == 1


def test_unknown_session_is_one_line(home: Path, workspace: Path) -> None:
    result = run_cli(["rewind", "nosuch", "1"], home=home, cwd=workspace)
    assert result.returncode == 2 and "no session 'nosuch'" in result.stderr and "Traceback" not in result.stderr
