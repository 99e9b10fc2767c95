"""Terminal detection, link formats, CSI u decoding, keybindings files, reverse diffs and export, as units
(the pty tests in test_repl_editor.py and test_repl_verbs.py show them end to end)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kimicode.discovery.jsonc import loads_jsonc
from kimicode.frontends.repl.editor_diff import original_text, parse_unified
from kimicode.frontends.repl.export import transcript_markdown
from kimicode.frontends.repl.keys import NEWLINE_KEYS, decode_csi_u
from kimicode.frontends.repl.links import FORMATS, Linker, choose_format
from kimicode.frontends.repl.terminal import KITTY_PUSH, MODIFY_OTHER_KEYS_ON, detect, notification_sequence
from kimicode.frontends.repl.terminal_setup import SetupError, insert_into_array, keybindings_path, plan

ASKPASS = "VSCODE_GIT_ASKPASS_NODE"


@pytest.mark.parametrize(
    ("env", "name", "editor", "links", "keys", "notify"),
    [
        ({"TERM_PROGRAM": "vscode", "TERM_PROGRAM_VERSION": "1.99.3"}, "vscode", "vscode", True, KITTY_PUSH, "bell"),
        ({"TERM_PROGRAM": "vscode", "CURSOR_TRACE_ID": "ab12"}, "cursor", "cursor", True, KITTY_PUSH, "bell"),
        ({"TERM_PROGRAM": "vscode", ASKPASS: "/Applications/Cursor.app/Contents/Frameworks/Cursor Helper"},
         "cursor", "cursor", True, KITTY_PUSH, "bell"),
        ({"TERM_PROGRAM": "vscode", ASKPASS: "/home/u/.windsurf-server/bin/x/node"}, "windsurf", "windsurf", True,
         KITTY_PUSH, "bell"),
        ({"TERM_PROGRAM": "vscode", "TERM_PROGRAM_VERSION": "1.100.0-insider"}, "vscode-insiders", "vscode-insiders",
         True, KITTY_PUSH, "bell"),
        ({"TERM_PROGRAM": "zed", "ZED_TERM": "true"}, "zed", "zed", True, KITTY_PUSH, "osc9"),
        ({"TERMINAL_EMULATOR": "JetBrains-JediTerm"}, "jetbrains", "jetbrains", True, None, "bell"),
        ({"TERM_PROGRAM": "iTerm.app", "TERM_PROGRAM_VERSION": "3.5.4"}, "iterm2", None, True, KITTY_PUSH, "osc9"),
        ({"TERM": "xterm-kitty", "KITTY_WINDOW_ID": "3"}, "kitty", None, True, KITTY_PUSH, "osc9"),
        ({"TERM_PROGRAM": "WezTerm", "WEZTERM_PANE": "0"}, "wezterm", None, True, KITTY_PUSH, "osc9"),
        ({"TERM_PROGRAM": "ghostty", "TERM": "xterm-ghostty"}, "ghostty", None, True, KITTY_PUSH, "osc9"),
        ({"WT_SESSION": "5c1f"}, "windows-terminal", None, True, None, "osc777"),
        ({"TERM_PROGRAM": "Apple_Terminal"}, "apple-terminal", None, False, None, "bell"),
        ({"XTERM_VERSION": "XTerm(390)"}, "xterm", None, False, MODIFY_OTHER_KEYS_ON, "bell"),
        ({"TERM": "xterm-256color"}, "unknown", None, False, None, "bell"),
    ],
)
def test_detect(env: dict[str, str], name: str, editor: str | None, links: bool, keys: str | None, notify: str) -> None:
    terminal = detect(env, tty=True)
    assert (terminal.name, terminal.editor, terminal.hyperlinks, terminal.notification) == (name, editor, links, notify)
    assert (terminal.keyboard_mode or (None,))[0] == keys


def test_tmux_inside_vscode_keeps_the_editor_but_not_links() -> None:
    terminal = detect({"TERM_PROGRAM": "tmux", "TMUX": "/tmp/t,1,0", "VSCODE_INJECTION": "1"}, tty=True)
    assert terminal.editor == "vscode" and terminal.multiplexer == "tmux"
    assert not terminal.hyperlinks and terminal.notification == "bell"
    assert terminal.keyboard_mode == (MODIFY_OTHER_KEYS_ON, "\x1b[>4m")


def test_links_are_off_without_a_tty_or_with_no_color_and_forced_by_force_hyperlink() -> None:
    vscode = {"TERM_PROGRAM": "vscode"}
    assert not detect(vscode, tty=False).hyperlinks
    assert not detect({**vscode, "NO_COLOR": "1"}, tty=True).hyperlinks
    assert detect({**vscode, "NO_COLOR": ""}, tty=True).hyperlinks  # empty NO_COLOR is unset
    assert detect({"TERM": "xterm", "FORCE_HYPERLINK": "1"}, tty=True).hyperlinks
    assert not detect({**vscode, "FORCE_HYPERLINK": "0"}, tty=True).hyperlinks


def test_link_formats_per_terminal() -> None:
    assert choose_format(detect({"TERM_PROGRAM": "vscode"}, tty=True)) == FORMATS["vscode"]
    assert choose_format(detect({"TERM_PROGRAM": "vscode", "CURSOR_TRACE_ID": "1"}, tty=True)) == FORMATS["cursor"]
    remote = detect({"TERM_PROGRAM": "vscode", "SSH_CONNECTION": "1 2 3 4"}, tty=True)
    assert choose_format(remote) == ""  # VS Code detects the plain path text itself, on the right machine
    assert choose_format(detect({"TERM_PROGRAM": "iTerm.app"}, tty=True)) == FORMATS["file"]
    assert choose_format(detect({"TERM_PROGRAM": "iTerm.app"}, tty=True), "none") == ""
    custom = "idea://open?file={path}&line={line}"
    assert choose_format(detect({"TERM_PROGRAM": "iTerm.app"}, tty=True), custom) == custom


def test_linker_links_existing_files_only(tmp_path: Path) -> None:
    from rich.text import Text

    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text("x\n")
    linker = Linker(tmp_path, FORMATS["vscode"])
    text = linker.decorate(Text("see src/app.py:12:3, e.g. v1.2 or src/gone.py and https://x.io/src/app.py"))
    links = [(text.plain[s.start : s.end], s.style.link) for s in text.spans]  # type: ignore[union-attr]
    assert links == [("src/app.py:12:3", f"vscode://file{tmp_path}/src/app.py:12:3")]
    assert Linker(tmp_path, FORMATS["kitty"]).uri(tmp_path / "a b.py", 7).endswith("/a%20b.py#7")


def test_notification_sequences_cannot_be_broken_by_their_text() -> None:
    assert notification_sequence("osc9", "kimicode", "done\x07\x1b]0;evil") == "\x1b]9;kimicode: done ]0,evil\x07"
    assert notification_sequence("osc777", "kimicode", "a;b") == "\x1b]777;notify;kimicode;a,b\x07"
    assert notification_sequence("bell", "kimicode", "x") == "\x07"


@pytest.mark.parametrize(
    ("sequence", "keys"),
    [
        ("\x1b[13;2u", list(NEWLINE_KEYS)),
        ("\x1b[13;5u", list(NEWLINE_KEYS)),
        ("\x1b[13u", ["c-m"]),
        ("\x1b[99;5u", ["c-c"]),
        ("\x1b[99;69u", ["c-c"]),  # caps lock on
        ("\x1b[97;6u", ["c-a"]),  # ctrl+shift+a
        ("\x1b[97;7u", ["escape", "c-a"]),
        ("\x1b[98;3u", ["escape", "b"]),
        ("\x1b[27u", ["escape"]),
        ("\x1b[9;2u", ["s-tab"]),
        ("\x1b[127;3u", ["escape", "c-h"]),
        ("\x1b[57400;129u", ["1"]),  # keypad 1, num lock
        ("\x1b[57414u", ["c-m"]),
        ("\x1b[115;9u", ["<ignore>"]),  # super+s
        ("\x1b[12;5R", None),  # a cursor position reply is not a key
    ],
)
def test_decode_csi_u(sequence: str, keys: list[str] | None) -> None:
    decoded = decode_csi_u(sequence)
    assert (None if decoded is None else [getattr(p.key, "value", p.key) for p in decoded]) == keys


def test_keybindings_paths_per_platform(tmp_path: Path) -> None:
    assert keybindings_path("vscode", {}, "linux", tmp_path) == tmp_path / ".config/Code/User/keybindings.json"
    assert keybindings_path("cursor", {"XDG_CONFIG_HOME": "/x"}, "linux", tmp_path) == Path("/x/Cursor/User/keybindings.json")
    assert keybindings_path("vscode", {}, "darwin", tmp_path) == (
        tmp_path / "Library/Application Support/Code/User/keybindings.json"
    )
    assert keybindings_path("vscode-insiders", {"APPDATA": "C:/AD"}, "win32", tmp_path) == Path(
        "C:/AD/Code - Insiders/User/keybindings.json"
    )
    assert keybindings_path("zed", {}, "darwin", tmp_path) == tmp_path / ".config/zed/keymap.json"


def test_zed_keymap_gets_a_terminal_binding_and_broken_files_are_left_alone(tmp_path: Path) -> None:
    keymap = tmp_path / "keymap.json"
    keymap.write_text('// zed keymap\n[\n  { "context": "Editor", "bindings": { "ctrl-k": "editor::Cut" } }\n]\n')
    change = plan("zed", keymap)
    assert loads_jsonc(change.new_text)[-1] == {"context": "Terminal", "bindings": {"shift-enter": ["terminal::SendText", "\x1b\r"]}}
    assert change.new_text.startswith("// zed keymap")
    keymap.write_text("[ { oops ]")
    with pytest.raises(SetupError, match="not valid JSON"):
        plan("zed", keymap)
    keymap.write_text('{"key": "x"}')
    with pytest.raises(SetupError, match="list of keybindings"):
        plan("vscode", keymap)
    assert insert_into_array("[]", '  "x"') == '[\n  "x"\n]'


def test_reverse_diff_keeps_crlf_and_handles_new_and_missing_final_newlines() -> None:
    diff = "--- a/x.txt\n+++ b/x.txt\n@@ -1,2 +1,2 @@\n one\r\n-two\r\n+TWO\r\n"
    assert original_text("one\r\nTWO\r\n", parse_unified(diff)[0]) == "one\r\ntwo\r\n"
    created = parse_unified("--- /dev/null\n+++ b/new.py\n@@ -0,0 +1 @@\n+x = 1\n")[0]
    assert created.old_name is None and created.new_name == "new.py"
    assert original_text("x = 1\n", created) == ""
    stale = parse_unified("--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n")[0]
    assert original_text("something else\n", stale) is None  # the file moved on: not guessed


def test_export_fences_cannot_be_closed_by_the_content() -> None:
    messages = [
        {"role": "system", "content": "secret system prompt"},
        {"role": "user", "content": "show me"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "view", "arguments": json.dumps({"path": "a.md"})}}
        ]},
        {"role": "tool", "tool_call_id": "c1", "content": "````\n</details>\n````"},
    ]
    text = transcript_markdown(messages, {"workspace": "/w"}, "s1")
    assert "secret system prompt" not in text
    assert "`````\n````\n</details>\n````\n`````" in text
    assert "<summary>⎿ view: ````</summary>" in text
