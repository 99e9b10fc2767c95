"""Which terminal the REPL runs in, and what it can do: hyperlinks, keyboard modes, notifications.

Everything here reads environment variables only (no terminal queries, no subprocesses), so detecting
costs microseconds and adds nothing to start-up. What each terminal sets, as found in their sources and
trackers:

| terminal          | variables                                                   | OSC 8 | keys        | notification |
|-------------------|-------------------------------------------------------------|-------|-------------|--------------|
| VS Code           | TERM_PROGRAM=vscode, TERM_PROGRAM_VERSION, VSCODE_*         | yes   | kitty push¹ | bell         |
| Cursor            | as VS Code, plus CURSOR_TRACE_ID or a Cursor askpass path    | yes   | kitty push¹ | bell         |
| Windsurf          | as VS Code, with a Windsurf askpass path                    | yes   | kitty push¹ | bell         |
| Zed               | TERM_PROGRAM=zed, ZED_TERM=true                             | yes   | kitty push¹ | OSC 9        |
| JetBrains IDEs    | TERMINAL_EMULATOR=JetBrains-JediTerm                        | yes   | —           | bell         |
| iTerm2            | TERM_PROGRAM=iTerm.app, LC_TERMINAL=iTerm2                  | yes   | kitty push  | OSC 9        |
| kitty             | TERM=xterm-kitty, KITTY_WINDOW_ID                           | yes   | kitty push  | OSC 9        |
| WezTerm           | TERM_PROGRAM=WezTerm, WEZTERM_PANE                          | yes   | kitty push¹ | OSC 9        |
| Ghostty           | TERM_PROGRAM=ghostty, TERM=xterm-ghostty                    | yes   | kitty push  | OSC 9        |
| Windows Terminal  | WT_SESSION, WT_PROFILE_ID                                   | yes   | —           | OSC 777²     |
| foot, Alacritty   | TERM=foot / TERM=alacritty                                  | yes   | kitty push  | OSC 777/bell |
| xterm             | XTERM_VERSION                                               | no³   | modifyOtherKeys 1 | bell   |
| tmux              | TMUX, TERM_PROGRAM=tmux                                     | no³   | modifyOtherKeys 1 | bell   |

¹ ignored unless the terminal has the protocol switched on (WezTerm's ``enable_kitty_keyboard``, VS Code's
  kitty keyboard setting); a terminal that does not know the push ignores it. Inside VS Code and Cursor the
  reliable route is the ``ESC CR`` keybinding that ``/terminal-setup`` adds.
² Windows Terminal's OSC 9 is ConEmu's (progress, working directory), not a notification; it shows
  OSC 777 notifications since 2026. ³ off by default; ``FORCE_HYPERLINK=1`` turns links on.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

# Editors whose integrated terminal we can recognise, with the command-line launcher each installs.
EDITOR_COMMANDS: dict[str, tuple[str, ...]] = {
    "vscode": ("code",),
    "vscode-insiders": ("code-insiders",),
    "cursor": ("cursor",),
    "windsurf": ("windsurf",),
    "vscodium": ("codium",),
    "zed": ("zed", "zeditor"),  # some Linux packages name the launcher zeditor
}
EDITOR_LABELS = {
    "vscode": "VS Code",
    "vscode-insiders": "VS Code Insiders",
    "cursor": "Cursor",
    "windsurf": "Windsurf",
    "vscodium": "VSCodium",
    "zed": "Zed",
    "jetbrains": "a JetBrains IDE",
}
VSCODE_FAMILY = frozenset({"vscode", "vscode-insiders", "cursor", "windsurf", "vscodium"})

# Keyboard modes pushed while the prompt reads keys, popped whenever it stops (see keys.py).
KITTY_PUSH, KITTY_POP = "\x1b[>1u", "\x1b[<u"
MODIFY_OTHER_KEYS_ON, MODIFY_OTHER_KEYS_OFF = "\x1b[>4;1m", "\x1b[>4m"

_KITTY_KEYBOARD = frozenset(
    {"kitty", "ghostty", "wezterm", "foot", "alacritty", "rio", "iterm2", "zed"} | VSCODE_FAMILY
)
_HYPERLINKS = frozenset(
    {"kitty", "ghostty", "wezterm", "foot", "alacritty", "rio", "iterm2", "zed", "jetbrains", "windows-terminal",
     "vte", "konsole", "contour", "hyper", "warp"}
    | VSCODE_FAMILY
)
# Terminals that report Shift-Enter once the kitty protocol is pushed, with no setting to change.
_SHIFT_ENTER_NATIVE = frozenset({"kitty", "ghostty", "foot", "iterm2", "rio", "alacritty"})
_OSC9 = frozenset({"iterm2", "kitty", "wezterm", "ghostty", "zed"})
_OSC777 = frozenset({"windows-terminal", "foot", "konsole", "contour", "rxvt", "warp"})


class Terminal:
    """What runs the REPL's screen. ``name`` is the emulator drawing it; ``editor`` the editor it lives in
    (also known inside tmux when the editor's variables are inherited).

    A plain class rather than a dataclass: it is built on every start-up, and generating a dataclass's
    methods costs a millisecond there."""

    __slots__ = ("name", "version", "editor", "multiplexer", "remote", "tty", "no_color", "force_hyperlinks")

    def __init__(
        self,
        name: str = "unknown",
        version: str = "",
        editor: str | None = None,
        multiplexer: str | None = None,  # "tmux" or "screen"
        remote: bool = False,  # over SSH (or in a container/WSL from an editor): local file:// is not the viewer's
        tty: bool = True,
        no_color: bool = False,
        force_hyperlinks: bool | None = None,  # FORCE_HYPERLINK=1/0
    ) -> None:
        self.name = name
        self.version = version
        self.editor = editor
        self.multiplexer = multiplexer
        self.remote = remote
        self.tty = tty
        self.no_color = no_color
        self.force_hyperlinks = force_hyperlinks

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"Terminal({fields})"

    @property
    def label(self) -> str:
        return EDITOR_LABELS.get(self.name) or {
            "iterm2": "iTerm2", "kitty": "kitty", "wezterm": "WezTerm", "ghostty": "Ghostty",
            "windows-terminal": "Windows Terminal", "apple-terminal": "Terminal.app",
        }.get(self.name, self.name)

    @property
    def hyperlinks(self) -> bool:
        """Whether file paths are printed as OSC 8 links."""
        if not self.tty or self.no_color:
            return False
        if self.force_hyperlinks is not None:
            return self.force_hyperlinks
        if self.multiplexer:  # tmux drops OSC 8 unless told the outer terminal has it
            return False
        return self.name in _HYPERLINKS

    @property
    def keyboard_mode(self) -> tuple[str, str] | None:
        """(enable, disable) escape sequences that make Shift-Enter distinguishable, or None."""
        if not self.tty or sys.platform == "win32":
            return None
        if self.multiplexer == "tmux":
            return MODIFY_OTHER_KEYS_ON, MODIFY_OTHER_KEYS_OFF  # tmux forwards it when extended-keys is on
        if self.multiplexer:
            return None
        if self.name in _KITTY_KEYBOARD:
            return KITTY_PUSH, KITTY_POP
        if self.name == "xterm":
            return MODIFY_OTHER_KEYS_ON, MODIFY_OTHER_KEYS_OFF
        return None

    @property
    def notification(self) -> str:
        """"osc9", "osc777" or "bell": how a finished turn calls the user back."""
        if self.multiplexer:
            return "bell"  # tmux passes a bell on to the outer terminal; OSC sequences need passthrough set up
        if self.name in _OSC9:
            return "osc9"
        if self.name in _OSC777:
            return "osc777"
        return "bell"

    def editor_commands(self) -> tuple[str, ...]:
        return EDITOR_COMMANDS.get(self.editor or "", ())

    def newline_hint(self) -> str:
        """How to start a new line here, for the banner (Shift-Enter only where it is known to work)."""
        if self.name in VSCODE_FAMILY or self.name == "zed":
            return "Alt-Enter new line (Shift-Enter: /terminal-setup)"
        if self.keyboard_mode is not None and self.keyboard_mode[0] == KITTY_PUSH and self.name in _SHIFT_ENTER_NATIVE:
            return "Shift-Enter or Alt-Enter new line"
        return "Alt-Enter or Ctrl-J new line"


def detect(env: Mapping[str, str] | None = None, tty: bool | None = None) -> Terminal:
    """The terminal described by ``env`` (default: this process's environment)."""
    env = os.environ if env is None else env
    if tty is None:
        tty = _stdout_is_tty()
    program = env.get("TERM_PROGRAM", "")
    term = env.get("TERM", "")
    multiplexer = "tmux" if env.get("TMUX") or program == "tmux" else ("screen" if env.get("STY") else None)
    name, version = _emulator(env, program, term)
    force = env.get("FORCE_HYPERLINK") or None  # empty counts as unset, as NO_COLOR does
    return Terminal(
        name=name,
        version=version,
        editor=_editor(env, program, name),
        multiplexer=multiplexer,
        remote=bool(env.get("SSH_CONNECTION") or env.get("SSH_TTY") or env.get("REMOTE_CONTAINERS")
                    or env.get("CODESPACES") or env.get("WSL_DISTRO_NAME")),
        tty=tty,
        no_color=bool(env.get("NO_COLOR")),  # no-color.org: set and not empty
        force_hyperlinks=None if force is None else force.strip().lower() not in ("0", "false", "no"),
    )


def _emulator(env: Mapping[str, str], program: str, term: str) -> tuple[str, str]:
    version = env.get("TERM_PROGRAM_VERSION", "")
    lowered = program.lower()
    if lowered == "vscode":
        return _vscode_flavour(env), version
    if lowered == "zed" or env.get("ZED_TERM"):
        return "zed", version
    if env.get("TERMINAL_EMULATOR", "").startswith("JetBrains"):
        return "jetbrains", ""
    if lowered == "iterm.app" or env.get("LC_TERMINAL") == "iTerm2":
        return "iterm2", version or env.get("LC_TERMINAL_VERSION", "")
    if lowered == "wezterm" or env.get("WEZTERM_PANE"):
        return "wezterm", version
    if lowered == "ghostty" or term == "xterm-ghostty":
        return "ghostty", version
    if term == "xterm-kitty" or env.get("KITTY_WINDOW_ID"):
        return "kitty", ""
    if env.get("WT_SESSION"):
        return "windows-terminal", ""
    if lowered == "apple_terminal":
        return "apple-terminal", version
    if lowered in ("hyper", "warpterminal"):
        return ("hyper" if lowered == "hyper" else "warp"), version
    if term.startswith("foot"):
        return "foot", ""
    if term == "alacritty" or env.get("ALACRITTY_WINDOW_ID"):
        return "alacritty", ""
    if lowered == "rio" or term == "rio":
        return "rio", version
    if env.get("KONSOLE_VERSION"):
        return "konsole", env["KONSOLE_VERSION"]
    if term.startswith("rxvt"):
        return "rxvt", ""
    vte = env.get("VTE_VERSION", "")
    if vte.isdigit() and int(vte) >= 5000:  # OSC 8 since VTE 0.50
        return "vte", vte
    if env.get("XTERM_VERSION"):
        return "xterm", env["XTERM_VERSION"]
    return "unknown", ""


def _vscode_flavour(env: Mapping[str, str]) -> str:
    """VS Code and its forks all say TERM_PROGRAM=vscode; the launcher paths they export tell them apart."""
    if env.get("CURSOR_TRACE_ID"):
        return "cursor"
    paths = " ".join(
        env.get(name, "") for name in ("VSCODE_GIT_ASKPASS_NODE", "VSCODE_GIT_ASKPASS_MAIN", "GIT_ASKPASS")
    ).lower()
    for marker, flavour in (("cursor", "cursor"), ("windsurf", "windsurf"), ("codium", "vscodium"),
                            ("insiders", "vscode-insiders")):
        if marker in paths:
            return flavour
    if env.get("TERM_PROGRAM_VERSION", "").endswith("-insider"):
        return "vscode-insiders"
    return "vscode"


def _editor(env: Mapping[str, str], program: str, name: str) -> str | None:
    if name in VSCODE_FAMILY or name in ("zed", "jetbrains"):
        return name
    # Inside tmux (or another program) started from an editor's terminal, its variables are inherited.
    if env.get("VSCODE_INJECTION") or env.get("VSCODE_GIT_IPC_HANDLE") or env.get("CURSOR_TRACE_ID"):
        return _vscode_flavour(env)
    if env.get("ZED_TERM"):
        return "zed"
    return None


def _stdout_is_tty() -> bool:
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


# -- notifications ------------------------------------------------------------------------------------


def notification_sequence(kind: str, title: str, body: str) -> str:
    """The bytes that raise a desktop notification (or ring the bell) in a terminal of that ``kind``."""
    title, body = _osc_text(title), _osc_text(body)
    if kind == "osc9":
        return f"\x1b]9;{title}: {body}\x07"
    if kind == "osc777":
        return f"\x1b]777;notify;{title};{body}\x07"
    return "\x07"


def _osc_text(text: str) -> str:
    # An OSC string ends at BEL or ESC; a semicolon would split OSC 777's fields.
    cleaned = "".join(ch if ch.isprintable() else " " for ch in text)
    return " ".join(cleaned.replace(";", ",").split())[:200]
