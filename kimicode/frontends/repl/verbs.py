"""Session verbs and editor-terminal commands: /init, /fork, /export, /title, /terminal-setup, and ``!cmd``.

They are listed in ``COMMANDS`` (kimicode.frontends.repl.catalog puts them in the registry); each handler
is small and leaves the work to the module that owns it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from kimicode.frontends.repl.commands import SHELL_ESCAPE, SlashCommand
from kimicode.wording import plural

if TYPE_CHECKING:
    from kimicode.frontends.repl.control import ReplControl

YES_NO = {"y": "yes", "n": "no", "escape": "no", "enter": "no"}


async def _init(repl: ReplControl, arg: str) -> None:
    from string import Template

    from kimicode.agent.prompt import INSTRUCTION_FILES, load_prompt

    found = [name for name in INSTRUCTION_FILES if (repl.config.work_dir / name).is_file()]
    existing = (
        f"The workspace already has {', '.join(found)}: read it first, keep what is right, and put the result "
        "in AGENTS.md." if found else ""
    )
    focus = f"The user asks you to pay particular attention to: {arg}" if arg else ""
    await repl.run_turn(Template(load_prompt("init.md")).safe_substitute(existing=existing, focus=focus).strip())


async def _fork(repl: ReplControl, arg: str) -> None:
    from kimicode.frontends.common.sessions import fork_of

    source = repl.opened.session
    if not source.path.exists():
        repl.renderer.dim("nothing to fork yet: this session has no messages")
        return
    forked = fork_of(repl.config, source)
    if arg:
        forked.session.set_title(arg)
    repl.switch_to(forked)
    repl.renderer.dim(
        f"forked: now in session {forked.session.id} ({plural(len(forked.history), 'message')}); "
        f"session {source.id} is unchanged (/resume {source.id} goes back)"
    )


async def _export(repl: ReplControl, arg: str) -> None:
    from kimicode.frontends.common.media import resolve_user_path
    from kimicode.frontends.repl.export import transcript_markdown
    from kimicode.frontends.repl.input import ask_choice

    session = repl.opened.session
    messages = session.transcript()
    if not any(message.get("role") in ("user", "assistant") for message in messages):
        repl.renderer.dim("nothing to export yet: this session has no messages")
        return
    path = resolve_user_path(arg, repl.config.work_dir) if arg else repl.config.work_dir / f"kimicode-{session.id}.md"
    if path.is_dir():
        path = path / f"kimicode-{session.id}.md"
    if path.exists():
        repl.renderer.listing(f"  {path} exists")
        if await ask_choice("  [y] replace it  [n] keep it  › ", YES_NO) != "yes":
            repl.renderer.dim("not exported")
            return
    text = transcript_markdown(messages, session.header, session.id)
    try:
        _write_atomically(path, text)
    except OSError as exc:
        repl.renderer.error(f"cannot write {path}: {exc.strerror or exc}; give another file: /export FILE")
        return
    count = sum(1 for message in messages if message.get("role") in ("user", "assistant"))
    repl.renderer.listing(f"exported {plural(count, 'message')} to {path}", "green")


async def _title(repl: ReplControl, arg: str) -> None:
    from kimicode.frontends.common.sessions import session_store

    session = repl.opened.session
    if arg:
        repl.renderer.dim(f"title: {session.set_title(arg)}")
        return
    info = next((i for i in session_store(repl.config).list(repl.config.work_dir) if i.id == session.id), None)
    if info is None or not info.title:
        repl.renderer.dim("no title yet (the first message names a session); set one: /title TEXT")
    else:
        repl.renderer.info(f"title: {info.title}")


async def _terminal_setup(repl: ReplControl, arg: str) -> None:
    from kimicode.frontends.repl.input import ask_choice
    from kimicode.frontends.repl.terminal import KITTY_PUSH
    from kimicode.frontends.repl.terminal_setup import VSCODE_FOLDERS, SetupError, apply, keybindings_path, plan

    terminal = repl.terminal
    editors = (*VSCODE_FOLDERS, "zed")
    editor = arg.strip().lower() or terminal.editor
    if editor not in editors:
        if arg:
            repl.renderer.error(f"unknown editor {arg!r}: use one of {', '.join(editors)}")
        elif terminal.keyboard_mode and terminal.keyboard_mode[0] == KITTY_PUSH:
            repl.renderer.dim(f"{terminal.label} reports Shift-Enter itself (kitty keyboard protocol): nothing to set up")
        elif terminal.name == "windows-terminal":
            repl.renderer.dim('Windows Terminal: add to the "actions" of its settings.json:')
            repl.renderer.listing('  { "command": { "action": "sendInput", "input": "\\u001b\\r" }, "keys": "shift+enter" }')
        else:
            repl.renderer.dim(
                "not in an editor's terminal; /terminal-setup vscode|cursor|windsurf|zed sets one up. "
                "Alt-Enter and Ctrl-J insert a newline in every terminal"
            )
        return
    try:
        path = keybindings_path(editor)
        change = plan(editor, path)
    except SetupError as exc:
        repl.renderer.error(str(exc))
        return
    if change.present:
        repl.renderer.dim(f"Shift-Enter is set up already in {path}")
        return
    if terminal.remote and not arg:
        repl.renderer.warn(f"this is a remote session: the editor's keybindings live on your own machine ({path.name} there)")
    repl.renderer.listing(f"  {path}{'' if change.old_text is not None else ' (new file)'} — adds:")
    for line in _entry_lines(change.entry):
        repl.renderer.listing(f"  + {line}", "green")
    for other in change.conflicts:
        repl.renderer.warn(f"it already binds Shift-Enter in the terminal: {other}; the new entry comes later and wins")
    if await ask_choice("  [y] write it (a copy of the old file is kept)  [n] leave it  › ", YES_NO) != "yes":
        repl.renderer.dim("left unchanged")
        return
    try:
        backup = apply(change)
    except OSError as exc:
        repl.renderer.error(f"cannot write {path}: {exc.strerror or exc}")
        return
    repl.renderer.listing(f"  written {path}" + (f" (old file kept as {backup.name})" if backup else ""), "green")
    repl.renderer.dim("  the editor picks it up at once: Shift-Enter now starts a new line here")


def _entry_lines(entry: dict[str, object]) -> list[str]:
    import json

    return json.dumps(entry, indent=2).splitlines()


async def _shell(repl: ReplControl, arg: str) -> None:
    from kimicode.frontends.repl.shell_escape import run_shell_escape

    await run_shell_escape(repl, arg)


def _write_atomically(path: Path, text: str) -> None:
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        os.chmod(temporary, path.stat().st_mode & 0o7777 if path.exists() else 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


COMMANDS = (
    SlashCommand("init", "explore the repository and write AGENTS.md (edits ask as usual)", _init, "[FOCUS]"),
    SlashCommand(
        "fork", "continue in a new session with the conversation so far (this one stays as it was)", _fork, "[TITLE]"
    ),
    SlashCommand("export", "write this conversation as Markdown (default: kimicode-<session>.md here)", _export, "[FILE]"),
    SlashCommand("title", "show or set this session's title (kimicode sessions lists it)", _title, "[TEXT]"),
    SlashCommand(
        "terminal-setup", "make Shift-Enter insert a newline in VS Code, Cursor, Windsurf or Zed", _terminal_setup, "[EDITOR]"
    ),
    SlashCommand(SHELL_ESCAPE, "run a shell command yourself; its output goes with your next message", _shell, "cmd"),
)
