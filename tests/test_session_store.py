"""Session logs: crash survival, replay, listing, and no secrets on disk."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from kimicode.llm.messages import SUMMARY_PREFIX
from kimicode.session.replay import INTERRUPTED_TOOL_RESULT
from kimicode.session.store import SessionNotFound, SessionStore, workspace_hash

SECRET = "sk-test-0123456789abcdefSECRET"

WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from kimicode.session.store import SessionStore

    store = SessionStore(Path(sys.argv[1]))
    session = store.create(Path(sys.argv[2]), model="kimi-k2.5", mode="agent")
    print(session.path, flush=True)
    i = 0
    while True:
        session.append_message({"role": "user", "content": f"msg {i} " + "x" * 5000})
        if i % 50 == 0:
            print(i, flush=True)
        i += 1
    """
)


def _records(path: Path) -> list[dict]:
    out = []
    for raw in path.read_bytes().split(b"\n"):
        try:
            out.append(json.loads(raw))
        except json.JSONDecodeError:
            pass
    return out


def test_kill_9_mid_write_loses_only_the_cut_line(tmp_path: Path) -> None:
    home, workspace = tmp_path / "home", tmp_path / "ws"
    workspace.mkdir()
    env = {**os.environ, "KIMI_API_KEY": SECRET, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    child = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(home), str(workspace)], stdout=subprocess.PIPE, text=True, env=env
    )
    assert child.stdout is not None
    path = Path(child.stdout.readline().strip())
    # Let it write a few hundred records, then kill it while it is still writing.
    while int(child.stdout.readline()) < 200:
        pass
    child.send_signal(signal.SIGKILL)
    child.wait()
    # And a line cut in the middle, as a kill during a larger write would leave.
    with open(path, "ab") as f:
        f.write(b'{"type":"message","message":{"role":"user","content":"msg cut')

    complete = [r for r in _records(path) if r.get("type") == "message"]
    assert len(complete) > 200

    store = SessionStore(home)
    session = store.open(path.stem, workspace)
    loaded = session.load_messages()
    assert [m["content"].split()[1] for m in loaded.messages] == [str(i) for i in range(len(complete))]
    assert len(loaded.warnings) == 1 and "line" in loaded.warnings[0]

    # Appending after the crash starts a fresh line: the cut record stays the only casualty.
    session.append_message({"role": "user", "content": "after the crash"})
    session.close()
    again = store.open(path.stem, workspace).load_messages()
    assert len(again.messages) == len(complete) + 1
    assert again.messages[-1]["content"] == "after the crash"
    assert len(again.warnings) == 1


def test_header_fields_and_flush_per_record(tmp_path: Path) -> None:
    store = SessionStore(tmp_path / "home")
    session = store.create(tmp_path, model="kimi-k2.5", mode="thinking")
    assert not session.path.exists()  # nothing on disk until something happens
    session.append_message({"role": "user", "content": "hello"})
    # Readable by another process without close(): written through, not buffered.
    lines = session.path.read_text().splitlines()
    header = json.loads(lines[0])
    assert header["type"] == "session"
    assert header["id"] == session.id
    assert header["workspace"] == str(tmp_path.resolve())
    assert header["model"] == "kimi-k2.5" and header["mode"] == "thinking"
    assert header["version"] and header["created"]
    assert json.loads(lines[1]) == {"type": "message", "message": {"role": "user", "content": "hello"}}
    assert session.path.parent.name == workspace_hash(tmp_path)
    assert session.path.parent.parent == tmp_path / "home" / "sessions"
    session.close()


def test_api_keys_never_reach_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOONSHOT_API_KEY", SECRET)
    store = SessionStore(tmp_path / "home")
    session = store.create(tmp_path, model="m", mode="agent")
    session.append_record("meta", config={"api_key": "sk-other-key-value", "base_url": "http://x"})
    session.append_record("meta", headers={"Authorization": "Bearer sk-header-value"})
    session.append_message({"role": "user", "content": f"my key is {SECRET}, keep it"})
    session.close()
    data = session.path.read_text()
    for secret in (SECRET, "sk-other-key-value", "sk-header-value"):
        assert secret not in data
    assert "http://x" in data and "my key is" in data


def test_list_and_latest_order(tmp_path: Path) -> None:
    store = SessionStore(tmp_path / "home")
    ws_a, ws_b = tmp_path / "a", tmp_path / "b"
    ws_a.mkdir()
    ws_b.mkdir()
    assert store.latest(ws_a) is None and store.list(ws_a) == []

    first = store.create(ws_a, "m", "agent")
    first.append_message({"role": "system", "content": "sys"})
    first.append_message({"role": "user", "content": "fix the   login\nbug " + "please " * 20})
    first.append_message({"role": "assistant", "content": "done"})
    second = store.create(ws_a, "m", "agent")
    second.append_message({"role": "user", "content": "second task"})
    other = store.create(ws_b, "m", "agent")
    other.append_message({"role": "user", "content": "elsewhere"})
    store.create(ws_a, "m", "agent")  # never written: not listed
    # Make the order unambiguous whatever the file-system timestamp resolution is.
    now = time.time()
    os.utime(first.path, (now - 30, now - 30))
    os.utime(second.path, (now - 20, now - 20))
    os.utime(other.path, (now - 10, now - 10))

    infos = store.list(ws_a)
    assert [i.id for i in infos] == [second.id, first.id]
    assert infos[1].title.startswith("fix the login bug please") and len(infos[1].title) == 60
    assert infos[1].message_count == 3
    assert infos[1].workspace == str(ws_a.resolve())
    assert infos[1].path == first.path
    assert [i.id for i in store.list()] == [other.id, second.id, first.id]

    latest = store.latest(ws_a)
    assert latest is not None and latest.id == second.id
    # Continuing the older one makes it the latest.
    first.append_message({"role": "user", "content": "more"})
    os.utime(first.path, (now, now))
    latest = store.latest(ws_a)
    assert latest is not None and latest.id == first.id


def test_open_by_prefix_and_missing(tmp_path: Path) -> None:
    store = SessionStore(tmp_path / "home")
    session = store.create(tmp_path, "m", "agent")
    session.append_message({"role": "user", "content": "hi"})
    assert store.open(session.id[:17], tmp_path).id == session.id
    with pytest.raises(SessionNotFound, match="kimicode sessions"):
        store.open("19990101-000000-abcdef", tmp_path)


def test_compaction_records_are_replayed(tmp_path: Path) -> None:
    store = SessionStore(tmp_path / "home")
    session = store.create(tmp_path, "m", "agent")
    history = [{"role": "system", "content": "sys"}] + [
        {"role": "user" if i % 2 == 0 else "assistant", "content": f"m{i}"} for i in range(6)
    ]
    for message in history:
        session.append_message(message)
    session.append_compaction("they talked", replaces=4)
    session.append_message({"role": "user", "content": "m6"})
    session.append_record("usage", prompt_tokens=10, completion_tokens=2)
    loaded = session.load_messages()
    assert loaded.warnings == []
    assert [m["content"] for m in loaded.messages] == [
        "sys",
        SUMMARY_PREFIX + "they talked",
        "m4",
        "m5",
        "m6",
    ]


def _call(call_id: str) -> dict:
    return {"id": call_id, "type": "function", "function": {"name": "bash", "arguments": "{}"}}


def test_dangling_tool_calls_are_repaired(tmp_path: Path) -> None:
    store = SessionStore(tmp_path / "home")
    session = store.create(tmp_path, "m", "agent")
    session.append_message({"role": "user", "content": "go"})
    session.append_message({"role": "assistant", "content": "", "tool_calls": [_call("a"), _call("b")]})
    session.append_message({"role": "tool", "tool_call_id": "a", "content": "ok"})
    # killed here: "b" never answered
    loaded = session.load_messages()
    roles = [(m["role"], m.get("tool_call_id")) for m in loaded.messages]
    assert roles == [("user", None), ("assistant", None), ("tool", "a"), ("tool", "b")]
    assert loaded.messages[-1]["content"] == INTERRUPTED_TOOL_RESULT
    assert any("interrupted" in w for w in loaded.warnings)

    # Resumed later: new messages come after the gap, which must still be repaired in place.
    session.append_message({"role": "user", "content": "continue"})
    session.append_message({"role": "tool", "tool_call_id": "zzz", "content": "orphan"})
    loaded = session.load_messages()
    roles = [(m["role"], m.get("tool_call_id")) for m in loaded.messages]
    assert roles == [("user", None), ("assistant", None), ("tool", "a"), ("tool", "b"), ("user", None)]
