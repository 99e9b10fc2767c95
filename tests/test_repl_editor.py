"""End-to-end, in a real pty: the prompt in editor terminals (Shift-Enter, links, notifications, Ctrl-G,
Ctrl-V, per-workspace history) against the scripted model server."""

from __future__ import annotations

import io
import json
import re
import stat
import sys
from pathlib import Path

import pytest
from PIL import Image

from kimicode.frontends.repl.history import history_path
from tests.clirun import write_home_config
from tests.fake_llm import FakeLLM, Reply, ToolCall
from tests.replpty import Repl

# KIMICODE_HOME with quick retries (conftest's home): a faulty reply fails in milliseconds.
pytestmark = pytest.mark.quick_retries

KITTY = {"TERM": "xterm-kitty", "KITTY_WINDOW_ID": "1"}
VSCODE = {"TERM_PROGRAM": "vscode", "TERM_PROGRAM_VERSION": "1.99.0", "NO_COLOR": ""}
OSC8 = re.compile(r"\x1b\]8;[^;]*;([^\x1b]*)\x1b\\")


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "proj"
    ws.mkdir()
    (ws / "notes.txt").write_text("original line\nsecond line\n")
    return ws


def raw(repl: Repl) -> str:
    return repl.raw.getvalue()  # type: ignore[attr-defined]


def script(folder: Path, name: str, body: str) -> Path:
    """An executable Python script (a stand-in for a program the REPL starts: an editor, code, xclip)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(f"#!{sys.executable}\n{body}")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def last_user_text(fake_llm: FakeLLM, index: int = 0) -> str:
    content = fake_llm.chat_requests[index].messages[-1]["content"]
    if isinstance(content, str):
        return content
    return "\n".join(part.get("text", "") for part in content if part.get("type") == "text")


# -- Shift-Enter ----------------------------------------------------------------------------------------


def test_shift_enter_in_kitty_protocol_mode_and_the_mode_is_popped(spawn, fake_llm: FakeLLM) -> None:
    fake_llm.script(Reply(content="Got two lines"))
    repl: Repl = spawn(env=KITTY)
    repl.wait_prompt()
    assert "\x1b[>1u" in raw(repl), "the kitty keyboard protocol was not pushed while the prompt reads keys"
    repl.send("line one")
    repl.send("\x1b[13;2u")  # Shift-Enter, as kitty reports it
    repl.send_line("line two")
    repl.expect("Got two lines")
    assert fake_llm.chat_requests[0].messages[-1]["content"] == "line one\nline two"
    repl.wait_prompt()
    # With the protocol on, Ctrl-C and Ctrl-D arrive as CSI u; they must still do what they always do.
    repl.send("\x1b[99;5u")
    repl.expect("Ctrl-C again")
    repl.send("\x1b[100;5u")
    assert repl.wait_exit() == 0
    out = raw(repl)
    # Every push is matched by a pop, the last one after the last push: the shell gets its terminal back.
    assert out.count("\x1b[>1u") == out.count("\x1b[<u") >= 2
    assert out.rindex("\x1b[<u") > out.rindex("\x1b[>1u")


def test_sigterm_at_the_prompt_pops_the_kitty_mode(spawn) -> None:
    import signal

    repl: Repl = spawn(env=KITTY)
    repl.expect("Enter sends, Shift-Enter or Alt-Enter new line")
    repl.wait_prompt()
    repl.child.kill(signal.SIGTERM)
    assert repl.wait_exit() == 143
    out = raw(repl)
    assert out.count("\x1b[>1u") == out.count("\x1b[<u") >= 1
    assert out.rindex("\x1b[<u") > out.rindex("\x1b[>1u")


def test_the_kitty_mode_is_off_while_a_turn_runs(spawn, fake_llm: FakeLLM) -> None:
    fake_llm.script(Reply(content="slow answer", delay=1.0))
    repl: Repl = spawn(env=KITTY)
    repl.wait_prompt()
    repl.send_line("question")
    repl.expect("slow answer")
    out = raw(repl)
    sent_at = out.index("question")
    # Between sending and the answer the protocol is popped: Ctrl-C is a real SIGINT again during a turn.
    assert out.rfind("\x1b[<u", 0, out.index("slow answer")) > out.rfind("\x1b[>1u", 0, sent_at)


def test_shift_enter_as_esc_cr_from_an_editor_keybinding(spawn, fake_llm: FakeLLM) -> None:
    fake_llm.script(Reply(content="ok"))
    repl: Repl = spawn(env={"TERM_PROGRAM": "vscode"})
    repl.expect("Enter sends, Alt-Enter new line (Shift-Enter: /terminal-setup)")
    repl.wait_prompt()
    assert "\x1b[>1u" in raw(repl)  # VS Code ignores it unless its kitty keyboard setting is on
    repl.send("first")
    repl.send("\x1b\r")  # what /terminal-setup's keybinding sends for Shift-Enter
    repl.send_line("second")
    repl.expect("ok")
    assert fake_llm.chat_requests[0].messages[-1]["content"] == "first\nsecond"


def test_shift_enter_as_xterm_modify_other_keys(spawn, fake_llm: FakeLLM) -> None:
    fake_llm.script(Reply(content="ok"))
    repl: Repl = spawn(env={"XTERM_VERSION": "XTerm(390)"})
    repl.wait_prompt()
    assert "\x1b[>4;1m" in raw(repl)  # modifyOtherKeys requested while the prompt reads
    repl.send("alpha")
    repl.send("\x1b[27;2;13~")
    repl.send_line("beta")
    repl.expect("ok")
    assert fake_llm.chat_requests[0].messages[-1]["content"] == "alpha\nbeta"
    repl.wait_prompt()
    repl.send("\x04")
    assert repl.wait_exit() == 0
    assert raw(repl).rindex("\x1b[>4m") > raw(repl).rindex("\x1b[>4;1m")


def test_a_plain_terminal_gets_no_keyboard_mode(spawn) -> None:
    repl: Repl = spawn()
    repl.wait_prompt()
    repl.send("\x04")
    assert repl.wait_exit() == 0
    assert "\x1b[>1u" not in raw(repl) and "\x1b[>4;1m" not in raw(repl)


# -- links ------------------------------------------------------------------------------------------------


def _links_after_a_view_turn(repl: Repl, fake_llm: FakeLLM) -> list[str]:
    """The OSC 8 targets printed by a turn that views notes.txt:2 and names it (and a missing file)."""
    fake_llm.script(
        Reply(tool_calls=[ToolCall("view", {"path": "notes.txt", "view_range": [2, 2]})]),
        Reply(content="The second line is in notes.txt:2 and nothing is in missing.py:3"),
    )
    repl.wait_prompt()
    repl.send_line("what is on line 2?")
    repl.expect("nothing is in missing.py")
    repl.wait_prompt()
    targets = OSC8.findall(raw(repl))
    repl.close()
    return targets


def test_paths_are_vscode_links_in_a_vscode_terminal(spawn, fake_llm: FakeLLM, workspace: Path) -> None:
    targets = _links_after_a_view_turn(spawn(env=VSCODE), fake_llm)
    notes = workspace.resolve() / "notes.txt"
    assert f"vscode://file{notes}:2:1" in targets  # the view call's line, and the answer's notes.txt:2
    assert not any("missing.py" in target for target in targets)  # a path that does not exist is no link


def test_no_links_in_a_plain_terminal_or_with_no_color(spawn, fake_llm: FakeLLM) -> None:
    for env in ({"NO_COLOR": ""}, {**VSCODE, "NO_COLOR": "1"}):
        assert not _links_after_a_view_turn(spawn(env=env), fake_llm), env


def test_file_links_with_the_host_elsewhere_and_kitty_line_fragments(spawn, fake_llm: FakeLLM, workspace: Path) -> None:
    import socket

    notes = workspace.resolve() / "notes.txt"
    for env, expected in (
        ({"TERM_PROGRAM": "WezTerm", "NO_COLOR": ""}, f"file://{socket.gethostname()}{notes}"),
        ({**KITTY, "NO_COLOR": ""}, f"file://{socket.gethostname()}{notes}#2"),
    ):
        assert expected in _links_after_a_view_turn(spawn(env=env), fake_llm), env


# -- notifications ------------------------------------------------------------------------------------------


def test_a_slow_turn_ends_with_a_notification(spawn, fake_llm: FakeLLM, home: Path) -> None:
    write_home_config(home, "notify_after = 1.5\n")
    fake_llm.script(Reply(content="warm"), Reply(content="quick"), Reply(content="Finally done", delay=2.5))
    repl: Repl = spawn(env={"TERM_PROGRAM": "iTerm.app"})
    repl.wait_prompt()
    repl.send_line("warm up")  # the first turn also loads the model client
    repl.expect("warm")
    repl.wait_prompt()
    start = len(raw(repl))
    repl.send_line("fast one")
    repl.expect("quick")
    repl.wait_prompt()
    assert "\x1b]9;" not in raw(repl)[start:]  # a quick turn does not ping
    repl.send_line("slow one")
    repl.expect("Finally done")
    repl.wait_prompt()
    assert re.search(r"\x1b\]9;kimicode: done after \ds: Finally done\x07", raw(repl))


def test_a_slow_turn_that_asks_notifies_and_windows_terminal_gets_osc_777(
    spawn, fake_llm: FakeLLM, home: Path
) -> None:
    write_home_config(home, "notify_after = 1\n")
    fake_llm.script(Reply(tool_calls=[ToolCall("bash", {"command": "touch made.txt"})], delay=2.0), Reply(content="ok"))
    repl: Repl = spawn(env={"WT_SESSION": "5c1f"})
    repl.wait_prompt()
    repl.send_line("make a file")
    repl.expect("yes once")
    assert "\x1b]777;notify;kimicode;waiting for your approval: bash touch made.txt\x07" in raw(repl)
    repl.send("n")
    repl.expect("reason")
    repl.send_line("")


# -- Ctrl-G, Ctrl-V, history -----------------------------------------------------------------------------


def test_ctrl_g_edits_the_prompt_in_editor(spawn, fake_llm: FakeLLM, tmp_path: Path) -> None:
    editor = script(
        tmp_path / "bin",
        "fake-editor",
        "import sys, pathlib\n"
        "p = pathlib.Path(sys.argv[-1])\n"
        "p.write_text('rewritten: ' + p.read_text() + '\\nand a second line\\n')\n",
    )
    fake_llm.script(Reply(content="edited message received"))
    repl: Repl = spawn(env={"EDITOR": f"{editor} --flag", **KITTY})
    repl.wait_prompt()
    repl.send("draft text")
    repl.send("\x1b[103;5u")  # Ctrl-G, as kitty reports it with the protocol on
    repl.expect("editing the prompt in $EDITOR")
    repl.wait_prompt()
    out = raw(repl)
    # The editor gets the terminal as the user's shell has it: the keyboard mode is off while it runs.
    editing = out.index("editing the prompt")
    assert out.rfind("\x1b[<u", 0, editing) > out.rfind("\x1b[>1u", 0, editing)
    repl.send("\r")
    repl.expect("edited message received")
    assert fake_llm.chat_requests[0].messages[-1]["content"] == "rewritten: draft text\nand a second line"


def test_ctrl_g_uses_code_wait_in_vscode_without_editor(spawn, fake_llm: FakeLLM, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    script(
        bin_dir,
        "code",
        "import sys, pathlib\n"
        f"pathlib.Path({str(tmp_path / 'code-args.json')!r}).write_text(__import__('json').dumps(sys.argv[1:]))\n"
        "p = pathlib.Path(sys.argv[-1]); p.write_text(p.read_text().upper())\n",
    )
    fake_llm.script(Reply(content="ok"))
    repl: Repl = spawn(env={"TERM_PROGRAM": "vscode", "PATH": f"{bin_dir}:/usr/bin:/bin"})
    repl.wait_prompt()
    repl.send("shout this")
    repl.send("\x07")
    repl.expect("editing the prompt in VS Code")
    repl.wait_prompt()
    repl.send("\r")
    repl.expect("ok")
    assert fake_llm.chat_requests[0].messages[-1]["content"] == "SHOUT THIS"
    args = json.loads((tmp_path / "code-args.json").read_text())
    assert args[0] == "--wait" and args[1].endswith(".md")


def test_ctrl_g_with_a_failing_editor_keeps_the_text(spawn, fake_llm: FakeLLM, tmp_path: Path) -> None:
    editor = script(tmp_path / "bin", "bad-editor", "import sys\nsys.exit(3)\n")
    fake_llm.script(Reply(content="kept"))
    repl: Repl = spawn(env={"VISUAL": str(editor)})
    repl.wait_prompt()
    repl.send("keep me")
    repl.send("\x07")
    repl.expect("exited with status 3; the prompt is unchanged")
    repl.wait_prompt()
    repl.send("\r")
    repl.expect("kept")
    assert fake_llm.chat_requests[0].messages[-1]["content"] == "keep me"


def _png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (12, 8), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_ctrl_v_attaches_the_clipboard_image(spawn, fake_llm: FakeLLM, tmp_path: Path, home: Path) -> None:
    png = tmp_path / "clip.png"
    png.write_bytes(_png_bytes())
    bin_dir = tmp_path / "bin"
    # xclip as Pillow calls it: xclip -selection clipboard -t image/png -o
    script(bin_dir, "xclip", f"import sys\nsys.stdout.buffer.write(open({str(png)!r}, 'rb').read())\n")
    fake_llm.script(Reply(content="I see a red box"))
    repl: Repl = spawn(env={"DISPLAY": ":99", "PATH": f"{bin_dir}:/usr/bin:/bin"})
    repl.wait_prompt()
    repl.send("\x16")  # Ctrl-V
    repl.expect("attached [image")
    repl.wait_prompt()
    repl.send_line("what is this?")
    repl.expect("I see a red box")
    content = fake_llm.chat_requests[0].messages[-1]["content"]
    assert any(part.get("type") == "image_url" for part in content)
    assert list((home / "pastes").glob("clipboard-*.png"))


def test_ctrl_v_without_a_clipboard_tool_says_what_to_install(spawn, tmp_path: Path) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    repl: Repl = spawn(env={"PATH": str(empty)})
    repl.wait_prompt()
    repl.send("\x16")
    repl.expect("pasting an image needs wl-paste (Wayland: wl-clipboard) or xclip (X11)")
    repl.wait_prompt()
    repl.send("\x04")
    assert repl.wait_exit() == 0


def test_history_is_per_workspace_and_the_old_shared_file_stays_reachable(
    spawn, fake_llm: FakeLLM, home: Path, workspace: Path
) -> None:
    (home / "history").write_text("\n# 2025-01-01 10:00:00\n+an old question from before\n")
    fake_llm.script(Reply(content="answer"), Reply(content="again"), Reply(content="older"))
    repl: Repl = spawn()
    repl.wait_prompt()
    repl.send_line("a question here")
    repl.expect("answer")
    repl.wait_prompt()
    repl.send_line("\x1b[A")  # Up: this workspace's last entry, sent again
    repl.expect("again")
    repl.wait_prompt()
    repl.send_line("\x1b[A\x1b[A\x1b[A")  # past this workspace's two entries: the shared file from before
    repl.expect("older")
    sent = [request.messages[-1]["content"] for request in fake_llm.chat_requests]
    assert sent == ["a question here", "a question here", "an old question from before"]
    own = history_path(home, workspace).read_text()
    assert "+a question here" in own and str(workspace) in own
    assert "a question here" not in (home / "history").read_text()
