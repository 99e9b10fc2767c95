"""End-to-end, in a real pty: !cmd, /init, /fork, /export, /title, /compact KEEP, /diff in the editor and
/terminal-setup, against the scripted model server."""

from __future__ import annotations

import io
import json
import stat
import sys
from pathlib import Path

import pytest
from PIL import Image

from kimicode.discovery.jsonc import loads_jsonc
from kimicode.session.store import SessionStore
from tests.clirun import run_cli
from tests.fake_llm import FakeLLM, Reply, ToolCall
from tests.replpty import Repl, processes_with, wait_until

# KIMICODE_HOME with quick retries (conftest's home): a faulty reply fails in milliseconds.
pytestmark = pytest.mark.quick_retries


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "proj"
    ws.mkdir()
    (ws / "notes.txt").write_text("original line\n")
    return ws


def texts(message: dict) -> list[str]:
    content = message["content"]
    if isinstance(content, str):
        return [content]
    return [part["text"] for part in content if part.get("type") == "text"]


def sessions(home: Path) -> list[Path]:
    return sorted((home / "sessions").glob("*/*.jsonl"))


# -- !cmd -------------------------------------------------------------------------------------------------


def test_bang_runs_a_command_and_its_output_goes_with_the_next_message(
    spawn, fake_llm: FakeLLM, home: Path, workspace: Path
) -> None:
    fake_llm.script(Reply(content="You have notes.txt"))
    repl: Repl = spawn()
    repl.wait_prompt()
    repl.send_line("!ls")
    out = repl.expect("goes with your next message")
    assert "notes.txt" in out and "[exit code: 0]" in out
    assert not fake_llm.chat_requests  # running it asked nothing of the model
    repl.wait_prompt()
    repl.send_line("what files are there?")
    repl.expect("You have notes.txt")
    parts = texts(fake_llm.chat_requests[0].messages[-1])
    assert parts[-1] == "what files are there?"
    assert '<shell command="ls">' in parts[0] and "notes.txt" in parts[0]
    # The session is named by what was typed, not by the attached output.
    assert "what files are there?" in run_cli(["sessions"], home=home, cwd=workspace).stdout


def test_bang_keeps_api_keys_from_the_command_and_ctrl_c_stops_it(spawn, fake_llm: FakeLLM) -> None:
    repl: Repl = spawn()
    repl.wait_prompt()
    repl.send_line("!echo key=[$KIMI_API_KEY]")
    repl.expect("key=[]")  # the model's key is withheld, as from the model's own commands
    repl.wait_prompt()
    marker = "sleep 47.1234"
    repl.send_line(f"!{marker}")
    assert wait_until(lambda: processes_with(marker)), "the command never started"
    repl.send("\x03")
    repl.expect("interrupted; its processes were stopped")
    assert wait_until(lambda: not processes_with(marker))
    repl.wait_prompt()
    repl.send("\x04")
    assert repl.wait_exit() == 0


# -- /init, /compact KEEP -------------------------------------------------------------------------------


def test_init_asks_the_model_to_write_agents_md_through_approvals(spawn, fake_llm: FakeLLM, workspace: Path) -> None:
    fake_llm.script(
        Reply(tool_calls=[ToolCall("createfile", {"path": "AGENTS.md", "content": "# Agents\n- test: pytest\n"})]),
        Reply(content="Wrote AGENTS.md"),
    )
    repl: Repl = spawn()
    repl.wait_prompt()
    repl.send_line("/init the test setup")
    repl.expect("yes once")  # the write is asked for like any other
    repl.send("y")
    repl.expect("Wrote AGENTS.md")
    assert (workspace / "AGENTS.md").read_text().startswith("# Agents")
    asked = texts(fake_llm.chat_requests[0].messages[-1])[-1]
    assert "AGENTS.md" in asked and "the test setup" in asked


def test_compact_passes_what_to_keep_to_the_summary_request(spawn, fake_llm: FakeLLM) -> None:
    fake_llm.script(
        Reply(content="first answer " * 40),
        Reply(content="second answer " * 40),
        Reply(content="third answer"),
        Reply(content="- the summary"),
    )
    repl: Repl = spawn()
    repl.wait_prompt()
    for question, answer in (("one", "first answer"), ("two", "second answer"), ("three", "third answer")):
        repl.send_line(question)
        repl.expect(answer)
        repl.wait_prompt()
    repl.send_line("/compact the database schema decisions")
    repl.expect("context compacted")
    request = fake_llm.chat_requests[-1].messages[-1]["content"]
    assert "<conversation>" in request
    assert request.endswith("The user asks the summary to keep, in particular: the database schema decisions")


# -- /fork, /title, /export ----------------------------------------------------------------------------


def test_fork_continues_in_a_new_session_and_leaves_the_old_one(spawn, fake_llm: FakeLLM, home: Path, workspace: Path) -> None:
    fake_llm.script(Reply(content="first answer"), Reply(content="after the fork"))
    repl: Repl = spawn()
    repl.wait_prompt()
    repl.send_line("before forking")
    repl.expect("first answer")
    repl.wait_prompt()
    repl.send_line("/fork experiment B")
    repl.expect("forked: now in session")
    repl.wait_prompt()
    repl.send_line("in the fork")
    repl.expect("after the fork")
    repl.wait_prompt()
    repl.send("\x04")
    assert repl.wait_exit() == 0
    # The fork's request carried the whole conversation so far.
    assert [texts(m)[-1] for m in fake_llm.chat_requests[1].messages[1:]] == [
        "before forking", "first answer", "in the fork",
    ]
    files = sessions(home)
    assert len(files) == 2
    logs = {path: path.read_text() for path in files}
    original = next(p for p, text in logs.items() if "forked_from" not in text.splitlines()[0])
    fork = next(p for p in files if p != original)
    assert "in the fork" not in logs[original] and "before forking" in logs[original]
    assert "in the fork" in logs[fork] and "before forking" in logs[fork]
    listing = run_cli(["sessions"], home=home, cwd=workspace).stdout
    assert "experiment B" in listing and "before forking" in listing


def test_title_sets_and_shows_the_session_title(spawn, fake_llm: FakeLLM, home: Path, workspace: Path) -> None:
    fake_llm.script(Reply(content="hi"))
    repl: Repl = spawn()
    repl.wait_prompt()
    repl.send_line("/title")
    repl.expect("no title yet")
    repl.wait_prompt()
    repl.send_line("hello there")
    repl.expect("hi")
    repl.wait_prompt()
    repl.send_line("/title")
    repl.expect("title: hello there")
    repl.wait_prompt()
    repl.send_line("/title Refactor the   parser")
    repl.expect("title: Refactor the parser")
    repl.wait_prompt()
    repl.send("\x04")
    assert repl.wait_exit() == 0
    listing = run_cli(["sessions"], home=home, cwd=workspace).stdout
    assert "Refactor the parser" in listing and "hello there" not in listing


def _png(path: Path) -> Path:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (10, 120, 200)).save(buffer, format="PNG")
    path.write_bytes(buffer.getvalue())
    return path


def test_export_writes_markdown_with_folded_tools_named_images_and_no_secrets(
    spawn, fake_llm: FakeLLM, workspace: Path
) -> None:
    _png(workspace / "shot.png")
    secret = "sk-" + "A1b2C3d4" * 5
    fake_llm.script(
        Reply(content="Let me look.", tool_calls=[ToolCall("bash", {"command": "echo ran-it"})]),
        Reply(content=f"Done. The token I saw was {secret}."),
    )
    repl: Repl = spawn("-y")
    repl.wait_prompt()
    repl.send_line("/image shot.png")
    repl.expect("attached")
    repl.wait_prompt()
    repl.send_line("check this picture")
    repl.expect("Done. The token")
    repl.wait_prompt()
    repl.send_line("/export")
    repl.expect("exported 3 messages to")
    repl.wait_prompt()
    exported = list(workspace.glob("kimicode-*.md"))
    assert len(exported) == 1
    text = exported[0].read_text()
    assert "## User\n\ncheck this picture" in text
    assert f"[image 1: {workspace / 'shot.png'}, image/png, 40×30]" in text
    assert "## Assistant\n\nLet me look." in text
    assert "<details><summary>● bash echo ran-it</summary>" in text
    assert "<details><summary>⎿ bash: ran-it</summary>" in text
    assert secret not in text and "[redacted]" in text
    assert "You are kimicode" not in text  # the system prompt stays out
    # A second export to the same file asks first.
    repl.send_line(f"/export {exported[0].name}")
    repl.expect("[y] replace it")
    repl.send("n")
    repl.expect("not exported")


# -- /diff in the editor, /terminal-setup ---------------------------------------------------------------


def test_diff_opens_the_editors_diff_view(spawn, fake_llm: FakeLLM, workspace: Path, tmp_path: Path) -> None:
    calls = tmp_path / "code-calls.jsonl"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    code = bin_dir / "code"
    code.write_text(
        f"#!{sys.executable}\nimport json, sys, pathlib\n"
        f"left, right = sys.argv[-2:]\n"
        f"with open({str(calls)!r}, 'a') as f:\n"
        "    f.write(json.dumps({'args': sys.argv[1:], 'left': pathlib.Path(left).read_text(),"
        " 'right': pathlib.Path(right).read_text()}) + '\\n')\n"
    )
    code.chmod(code.stat().st_mode | stat.S_IXUSR)
    fake_llm.script(
        Reply(tool_calls=[ToolCall("strreplace", {"path": "notes.txt", "old_str": "original line", "new_str": "edited line"})]),
        Reply(content="Edited"),
    )
    repl: Repl = spawn("-y", env={"TERM_PROGRAM": "vscode", "PATH": f"{bin_dir}:/usr/bin:/bin"})
    repl.wait_prompt()
    repl.send_line("edit it")
    repl.expect("Edited")
    repl.wait_prompt()
    repl.send_line("/diff")
    repl.expect("opened 1 file(s) in VS Code's diff view: notes.txt")
    assert wait_until(lambda: calls.exists() and calls.read_text().strip())
    call = json.loads(calls.read_text().splitlines()[0])
    assert call["args"][0] == "--diff" and call["args"][2] == str(workspace / "notes.txt")
    assert call["left"] == "original line\n" and call["right"] == "edited line\n"
    repl.wait_prompt()
    repl.send_line("/diff text")
    out = repl.expect("+edited line")
    assert "-original line" in out


VSCODE_KEYBINDINGS = """// Place your key bindings in this file to override the defaults
[
  {
    "key": "ctrl+alt+t", // open a terminal
    "command": "workbench.action.terminal.new"
  },
  /* kept on purpose */
]
"""


def test_terminal_setup_adds_the_binding_to_jsonc_keeping_comments_once(
    spawn, fake_llm: FakeLLM, home: Path
) -> None:
    user_home = home.parent / "userhome"  # the HOME the REPL runs with (tests/clirun.py)
    path = user_home / ".config" / "Code" / "User" / "keybindings.json"
    path.parent.mkdir(parents=True)
    path.write_text(VSCODE_KEYBINDINGS)
    repl: Repl = spawn(env={"TERM_PROGRAM": "vscode", "XDG_CONFIG_HOME": ""})
    repl.wait_prompt()
    start = len(repl.transcript)
    repl.send_line("/terminal-setup")
    repl.expect("[y] write it")
    out = repl.transcript[start:]
    assert str(path) in out and '"command": "workbench.action.terminal.sendSequence"' in out
    repl.send("y")
    repl.expect("written")
    text = path.read_text()
    assert text.startswith("// Place your key bindings") and "// open a terminal" in text and "/* kept on purpose */" in text
    bindings = loads_jsonc(text)
    assert bindings[0]["command"] == "workbench.action.terminal.new"
    assert bindings[-1] == {
        "key": "shift+enter",
        "command": "workbench.action.terminal.sendSequence",
        "args": {"text": "\u001b\r"},
        "when": "terminalFocus",
    }
    backups = list(path.parent.glob("keybindings.json.kimicode-*.bak"))
    assert len(backups) == 1 and backups[0].read_text() == VSCODE_KEYBINDINGS
    repl.wait_prompt()
    repl.send_line("/terminal-setup")
    repl.expect("set up already")
    assert path.read_text() == text
    repl.wait_prompt()
    repl.send_line("/terminal-setup cursor")  # another editor, named: its file is created
    repl.expect("(new file)")
    repl.send("n")
    repl.expect("left unchanged")
    assert not (user_home / ".config" / "Cursor").exists()


def test_session_store_keeps_title_records_apart_from_messages(tmp_path: Path) -> None:
    store = SessionStore(tmp_path)
    session = store.create(tmp_path, "kimi-k2.5", "agent")
    session.append_message({"role": "user", "content": "first words"})
    session.set_title("named")
    session.append_message({"role": "assistant", "content": "reply"})
    assert [m["content"] for m in session.load_messages().messages] == ["first words", "reply"]
    assert store.list(tmp_path)[0].title == "named"
    assert store.list(tmp_path)[0].message_count == 2
