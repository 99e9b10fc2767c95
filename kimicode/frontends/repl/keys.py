"""Keys prompt-toolkit does not know by itself: Shift-Enter as terminals report it, and kitty's CSI u keys.

Shift-Enter reaches a program in one of three shapes, and all three become the newline key (the same
``Escape, Enter`` pair that Alt-Enter sends, bound in input.py):

- the kitty keyboard protocol, ``CSI 13;2u`` (kitty, Ghostty, WezTerm, foot, iTerm2 …; pushed with
  ``CSI > 1 u`` while the prompt reads keys);
- xterm's modifyOtherKeys, ``CSI 27;2;13~`` (xterm, tmux with ``extended-keys``);
- ``ESC CR``, which the VS Code/Cursor keybinding from ``/terminal-setup`` sends.

With the kitty protocol on, Ctrl-C, Ctrl-D, Esc and Alt-keys arrive as CSI u too (``CSI 99;5u`` …); the
parser below decodes every such sequence into the key prompt-toolkit expects, so no binding changes.

The keyboard mode is switched on exactly while prompt-toolkit owns the terminal: it rides on the
bracketed-paste switch, which prompt-toolkit turns on when it draws the prompt and off when the prompt
ends, before an editor or a command runs in the terminal (``run_in_terminal``), on suspend and on every
exit path, errors and SIGTERM included. So during a turn Ctrl-C is a real SIGINT again, and the user's
shell never inherits the mode; an ``atexit`` hook pops it should the process die with it still on.
"""

from __future__ import annotations

import atexit
import re
import sys
from typing import TYPE_CHECKING, Any

from prompt_toolkit.input import ansi_escape_sequences, vt100_parser
from prompt_toolkit.key_binding.key_processor import KeyPress
from prompt_toolkit.keys import Keys

if TYPE_CHECKING:
    from prompt_toolkit.key_binding import KeyBindings

    from kimicode.frontends.repl.control import ReplControl

# What every form of Shift-Enter becomes: the key pair input.py binds to "insert a newline".
NEWLINE_KEYS = (Keys.Escape, Keys.ControlM)
# xterm-style modifier parameters: 2 shift, 3 alt, 4 shift+alt, 5 ctrl, 6 ctrl+shift, 7 ctrl+alt, 8 all.
_MODIFIED = range(2, 9)
_CSI_U = r"\x1b\[(\d+)(?::\d*)*(?:;(\d+)(?::\d+)?)?(?:;[\d:]*)?u\Z"  # compiled (and cached by re) on first use
# kitty's keypad keys (numbers from its protocol's table): text they stand for, or the key.
_KEYPAD_TEXT = {57399 + i: str(i) for i in range(10)} | {
    57409: ".", 57410: "/", 57411: "*", 57412: "-", 57413: "+", 57415: "=", 57416: ",",
}
_KEYPAD_KEYS = {
    57414: Keys.ControlM, 57417: Keys.Left, 57418: Keys.Right, 57419: Keys.Up, 57420: Keys.Down,
    57421: Keys.PageUp, 57422: Keys.PageDown, 57423: Keys.Home, 57424: Keys.End, 57425: Keys.Insert,
    57426: Keys.Delete,
}
_CTRL_PUNCTUATION = {
    " ": Keys.ControlAt, "@": Keys.ControlAt, "[": Keys.Escape, "\\": Keys.ControlBackslash,
    "]": Keys.ControlSquareClose, "^": Keys.ControlCircumflex, "_": Keys.ControlUnderscore,
    "/": Keys.ControlUnderscore,
}
_SHIFT, _ALT, _CTRL = 1, 2, 4
_OTHER_MODIFIERS = 8 | 16 | 32  # super, hyper, meta: no binding uses them

_installed = False


def install_sequences() -> None:
    """Teach prompt-toolkit's input parser the Shift-Enter sequences (idempotent, cheap)."""
    global _installed
    if _installed:
        return
    for modifier in _MODIFIED:
        ansi_escape_sequences.ANSI_SEQUENCES[f"\x1b[13;{modifier}u"] = NEWLINE_KEYS
        ansi_escape_sequences.ANSI_SEQUENCES[f"\x1b[27;{modifier};13~"] = NEWLINE_KEYS
    # The parser caches which prefixes may still grow into a known sequence; it must see the new ones.
    vt100_parser._IS_PREFIX_OF_LONGER_MATCH_CACHE.clear()
    _installed = True


def decode_csi_u(sequence: str) -> list[KeyPress] | None:
    """The key presses a kitty-protocol ``CSI code;modifiers u`` sequence stands for; None if it is not one."""
    match = re.match(_CSI_U, sequence)
    if match is None:
        return None
    code = int(match.group(1))
    modifiers = max(int(match.group(2) or 1) - 1, 0) & 0b111111  # caps/num lock (64, 128) change nothing here
    if modifiers & _OTHER_MODIFIERS:
        return [KeyPress(Keys.Ignore, sequence)]
    alt, ctrl, shift = modifiers & _ALT, modifiers & _CTRL, modifiers & _SHIFT
    if code in (13, 57414):
        return [KeyPress(key, "") for key in NEWLINE_KEYS] if modifiers else [KeyPress(Keys.ControlM, "\r")]
    if code == 27:
        return [KeyPress(Keys.Escape, "\x1b")]
    if code == 9:
        return [KeyPress(Keys.BackTab if shift else (Keys.Ignore if modifiers else Keys.ControlI), "\t")]
    if code in (127, 8):
        presses = [KeyPress(Keys.ControlH, "\x7f")]
        return [KeyPress(Keys.Escape, "")] + presses if alt else presses
    if code in _KEYPAD_KEYS:
        return [KeyPress(_KEYPAD_KEYS[code], "")]
    char = _KEYPAD_TEXT.get(code)
    if char is None:
        if code < 32 or 57344 <= code <= 63743 or code > 0x10FFFF:  # controls, kitty's private-use keys
            return [KeyPress(Keys.Ignore, sequence)]
        char = chr(code)
    if shift and char.isalpha():
        char = char.upper()
    if ctrl:
        key = _ctrl_key(char)
        if key is None:
            return [KeyPress(Keys.Ignore, sequence)]
        return ([KeyPress(Keys.Escape, "")] if alt else []) + [KeyPress(key, "")]
    text = KeyPress(char, char)
    return [KeyPress(Keys.Escape, ""), text] if alt else [text]


def _ctrl_key(char: str) -> Keys | None:
    lowered = char.lower()
    if "a" <= lowered <= "z" and len(lowered) == 1:
        return Keys(f"c-{lowered}")
    if char.isdigit() and len(char) == 1:
        return Keys(f"c-{char}")
    return _CTRL_PUNCTUATION.get(char)


class _Decoded(tuple[KeyPress, ...]):
    """Key presses decoded from one CSI u sequence (a non-empty tuple, so the parser sees a match)."""


class CsiUParser(vt100_parser.Vt100Parser):
    """prompt-toolkit's parser, plus kitty's CSI u key encoding.

    Its partial-sequence logic already waits on ``ESC [ digits ;`` (a cursor-position reply looks the
    same), so only the complete sequence needs decoding."""

    def _get_match(self, prefix: str) -> Any:
        match = super()._get_match(prefix)
        if match is None and prefix.endswith("u"):
            presses = decode_csi_u(prefix)
            if presses:
                return _Decoded(presses)
        return match

    def _call_handler(self, key: Any, insert_text: str) -> None:
        if isinstance(key, _Decoded):
            for press in key:
                self.feed_key_callback(press)
            return
        super()._call_handler(key, insert_text)


def prompt_input() -> Any:
    """The main prompt's input with the CSI u decoder, or None to let prompt-toolkit choose (Windows)."""
    if sys.platform == "win32":
        return None
    from prompt_toolkit.input.defaults import create_input
    from prompt_toolkit.input.vt100 import Vt100Input

    created = create_input()
    if isinstance(created, Vt100Input):
        created.vt100_parser = CsiUParser(created.vt100_parser.feed_key_callback)
    return created


def prompt_output(mode: tuple[str, str] | None) -> Any:
    """An output that switches ``mode`` (enable, disable) on while the prompt owns the terminal, or None."""
    if mode is None or sys.platform == "win32" or not sys.stdout.isatty():
        return None
    import os

    from prompt_toolkit.output.vt100 import Vt100_Output

    enable, disable = mode

    class KeyboardModeOutput(Vt100_Output):
        mode_on = False

        def enable_bracketed_paste(self) -> None:
            super().enable_bracketed_paste()
            self.write_raw(enable)
            KeyboardModeOutput.mode_on = True

        def disable_bracketed_paste(self) -> None:
            self.write_raw(disable)
            KeyboardModeOutput.mode_on = False
            super().disable_bracketed_paste()

    def restore() -> None:
        if KeyboardModeOutput.mode_on:
            try:
                os.write(sys.stdout.fileno(), disable.encode())
            except (OSError, ValueError):
                pass

    atexit.register(restore)
    return KeyboardModeOutput.from_pty(sys.stdout, term=os.environ.get("TERM"))


def prompt_bindings(repl: ReplControl) -> KeyBindings:
    """Ctrl-G (edit the prompt in an editor) and Ctrl-V (paste a clipboard image) for the main prompt."""
    from prompt_toolkit.application import run_in_terminal
    from prompt_toolkit.document import Document
    from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent

    bindings = KeyBindings()

    @bindings.add("c-g")
    def _edit(event: KeyPressEvent) -> None:
        from kimicode.frontends.repl.editor import EditorError, edit_text, editor_command

        buffer = event.current_buffer

        def run() -> str | None:
            try:
                argv, name = editor_command(repl.terminal)
                repl.renderer.dim(f"editing the prompt in {name}; save and close it to come back")
                return edit_text(buffer.text, argv)
            except EditorError as exc:
                repl.renderer.error(str(exc))
                return None

        async def edit() -> None:
            edited = await run_in_terminal(run, in_executor=True)
            if edited is not None:
                buffer.document = Document(edited, len(edited))

        event.app.create_background_task(edit())

    @bindings.add("c-v")
    def _paste_image(event: KeyPressEvent) -> None:
        from kimicode.frontends.repl.clipboard import ClipboardError, clipboard_images

        def run() -> None:
            try:
                repl.attach_images(clipboard_images(repl.config.home))
            except ClipboardError as exc:
                repl.renderer.error(str(exc))

        async def paste() -> None:
            await run_in_terminal(run, in_executor=True)

        event.app.create_background_task(paste())

    return bindings
