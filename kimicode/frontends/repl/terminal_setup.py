"""/terminal-setup: make Shift-Enter insert a newline in the VS Code, Cursor, Windsurf or Zed terminal.

Those terminals send the same byte for Enter and Shift-Enter. A user keybinding that sends ``ESC CR``
for Shift-Enter while the terminal has focus fixes it (kimicode reads ``ESC CR`` as a newline, as it
reads Alt-Enter). The binding is added to the user's keybindings file in place: the file is JSON with
comments (JSONC), and the comments, order and formatting of what is there stay as they are; only the new
entry is inserted before the closing bracket. A copy of the old file is kept next to it, and a second run
finds the entry and changes nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kimicode.discovery.jsonc import loads_jsonc, pieces

SEQUENCE = "\x1b\r"
# The folder under the platform's config directory each editor keeps its user settings in.
VSCODE_FOLDERS = {
    "vscode": "Code",
    "vscode-insiders": "Code - Insiders",
    "cursor": "Cursor",
    "windsurf": "Windsurf",
    "vscodium": "VSCodium",
}
VSCODE_ENTRY: dict[str, Any] = {
    "key": "shift+enter",
    "command": "workbench.action.terminal.sendSequence",
    "args": {"text": SEQUENCE},
    "when": "terminalFocus",
}
ZED_ENTRY: dict[str, Any] = {"context": "Terminal", "bindings": {"shift-enter": ["terminal::SendText", SEQUENCE]}}


class SetupError(Exception):
    """The keybindings file cannot be changed safely; the message says why and what to do."""


@dataclass
class Plan:
    editor: str
    path: Path
    entry: dict[str, Any]
    old_text: str | None  # None: the file does not exist yet
    new_text: str = ""
    present: bool = False  # the binding is there already: nothing to do
    conflicts: list[dict[str, Any]] = field(default_factory=list)  # other Shift-Enter bindings in the terminal


def keybindings_path(
    editor: str, env: Mapping[str, str] | None = None, platform: str | None = None, home: Path | None = None
) -> Path:
    """Where ``editor`` keeps the user's keybindings (Zed: keymap.json) on this platform."""
    env = os.environ if env is None else env
    platform = platform or sys.platform
    home = home or Path(env.get("HOME") or Path.home())
    if platform == "win32":
        base = Path(env.get("APPDATA") or home / "AppData" / "Roaming")
    elif platform == "darwin" and editor != "zed":  # Zed keeps ~/.config on macOS too
        base = home / "Library" / "Application Support"
    else:
        base = Path(env.get("XDG_CONFIG_HOME") or home / ".config")
    if editor == "zed":
        return base / ("Zed" if platform == "win32" else "zed") / "keymap.json"
    folder = VSCODE_FOLDERS.get(editor)
    if folder is None:
        raise SetupError(f"no keybindings file known for {editor}")
    return base / folder / "User" / "keybindings.json"


def plan(editor: str, path: Path) -> Plan:
    """What adding the Shift-Enter binding to ``path`` would change (nothing is written)."""
    entry = ZED_ENTRY if editor == "zed" else VSCODE_ENTRY
    try:
        old = path.read_text(encoding="utf-8") if path.exists() else None
    except (OSError, UnicodeDecodeError) as exc:
        raise SetupError(f"cannot read {path}: {exc}") from None
    result = Plan(editor, path, entry, old)
    if old is None or not old.strip():
        result.new_text = "[\n" + _indented(entry) + "\n]\n"
        return result
    try:
        items = loads_jsonc(old)
    except json.JSONDecodeError as exc:
        raise SetupError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno}); fix it and run /terminal-setup again") from None
    if not isinstance(items, list):
        raise SetupError(f"{path} should hold a list of keybindings; leaving it alone")
    if any(_same(editor, item) for item in items):
        result.present = True
        return result
    result.conflicts = [item for item in items if _conflicts(editor, item)]
    result.new_text = insert_into_array(old, _indented(entry))
    if loads_jsonc(result.new_text) != [*items, entry]:  # never write what we cannot read back as intended
        raise SetupError(f"could not add the binding to {path} safely; add it by hand:\n{_indented(entry)}")
    return result


def apply(change: Plan) -> Path | None:
    """Write the planned file, keeping a copy of the old one; returns the copy's path (None: new file)."""
    change.path.parent.mkdir(parents=True, exist_ok=True)
    backup: Path | None = None
    if change.old_text is not None:
        backup = change.path.with_name(f"{change.path.name}.kimicode-{time.strftime('%Y%m%d-%H%M%S')}.bak")
        shutil.copy2(change.path, backup)
    handle, temporary = tempfile.mkstemp(dir=change.path.parent, prefix=f".{change.path.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as file:
            file.write(change.new_text)
        if change.old_text is not None:
            shutil.copymode(change.path, temporary)
        os.replace(temporary, change.path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return backup


def insert_into_array(text: str, entry: str) -> str:
    """``text`` (a JSONC array) with ``entry`` added as its last element; everything else untouched."""
    significant = _significant_positions(text)
    if not significant or text[significant[0]] != "[" or text[significant[-1]] != "]":
        raise SetupError("the keybindings file is not a JSON list")
    close = significant[-1]
    before = significant[-2] if len(significant) > 1 else significant[0]
    # The comma goes right after the last element (before any comment that follows it on its line).
    comma = "" if text[before] in "[," else ","
    head = text[: before + 1] + comma + text[before + 1 : close]
    newline = "\r\n" if "\r\n" in text else "\n"
    head = head.rstrip(" \t")
    if not head.endswith(("\n", "\r")):
        head += newline
    return head + entry.replace("\n", newline) + newline + text[close:]


def _significant_positions(text: str) -> list[int]:
    """Indexes of the characters that are JSON syntax (a string counts by its closing quote, so a comma
    after it goes after the string); comments and blanks are left out."""
    return [start if kind == "code" else end - 1 for kind, start, end in pieces(text) if kind in ("code", "string")]


def _indented(entry: dict[str, Any]) -> str:
    return "\n".join("  " + line for line in json.dumps(entry, indent=2).splitlines())


def _same(editor: str, item: Any) -> bool:
    if not isinstance(item, dict):
        return False
    if editor == "zed":
        bindings = item.get("bindings")
        return isinstance(bindings, dict) and bindings.get("shift-enter") == ["terminal::SendText", SEQUENCE]
    args = item.get("args")
    return (
        item.get("key") == "shift+enter"
        and item.get("command") == VSCODE_ENTRY["command"]
        and isinstance(args, dict)
        and args.get("text") == SEQUENCE
    )


def _conflicts(editor: str, item: Any) -> bool:
    if not isinstance(item, dict):
        return False
    if editor == "zed":
        bindings = item.get("bindings")
        return "Terminal" in str(item.get("context", "")) and isinstance(bindings, dict) and "shift-enter" in bindings
    return item.get("key") == "shift+enter" and "terminal" in str(item.get("when", "")).lower()
