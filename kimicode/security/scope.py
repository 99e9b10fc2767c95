"""What `-y` covers: the workspace and the folders added with `--add-dir` — minus the guarded places.

A guarded place is one where a write changes what runs later, outside this run: kimicode's own home (its
mcp.json starts servers with the user's key, skills/ goes into every prompt, sessions/ is replayed as the
user's words), other agents' and tools' settings, shell start-up files, folders on PATH and git config files.
A write there needs a rule that names the path, or `--add-dir` naming the guarded folder itself (or a folder
inside it). The workspace counts as named too when it lies inside a guarded folder (a project in
``~/.config/nvim`` stays writable), but never by being above one: a workspace that is the home folder does
not open ``~/.bashrc``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from kimicode.security.paths import (
    AGENT_CONFIG_DIRS,
    GIT_CONFIG_FILES,
    SHELL_STARTUP,
    inside,
    inside_text,
    is_inside_workspace,
    joined,
    variants,
)


@dataclass(frozen=True)
class Guard:
    root: Path  # the guarded folder (everything below it) or file
    what: str  # names the class for the user: "a shell start-up file (~/.bashrc)"


def path_dirs(value: str | None = None) -> list[Path]:
    """The absolute folders on PATH (relative entries name the current folder, which is the workspace)."""
    text = os.environ.get("PATH", "") if value is None else value
    found: list[Path] = []
    for entry in text.split(os.pathsep):
        if os.path.isabs(entry):
            path = Path(os.path.normpath(entry))
            if path != Path(path.anchor) and path not in found:  # "/" on PATH would guard everything
                found.append(path)
    return found


def guards(path: Path, *, kimicode_home: Path, home: Path, on_path: Sequence[Path]) -> list[Guard]:
    """Every guarded place ``path`` (as written or resolved) lies in, most specific first."""
    found: list[Guard] = []

    def add(root: Path, what: str) -> None:
        if not any(g.root == root for g in found):
            found.append(Guard(root, what))

    homes = variants(kimicode_home)
    user = str(home)
    # (text, not Path, so a check costs no Path built per name: this runs on every write decision)
    in_home = [
        *((name, root, f"a shell start-up file (~/{name})") for name, root in joined(user, SHELL_STARTUP)),
        *((name, root, f"git's configuration (~/{name})") for name, root in joined(user, GIT_CONFIG_FILES)),
        *((name, root, f"another tool's settings (~/{name}/)") for name, root in joined(user, AGENT_CONFIG_DIRS)),
    ]
    for p in variants(path):
        text = str(p)
        for base in homes:
            if inside(p, base):
                add(base, f"kimicode's home ({base})")
        for name, root, what in in_home:
            if inside_text(text, root):
                add(home / name, what)
        for folder in on_path:
            if inside(p, folder):
                add(folder, f"a folder on PATH ({folder})")
        git = _git_config(p)
        if git is not None:
            add(git, f"a git config file ({git})")
    return found


def _git_config(path: Path) -> Path | None:
    """``.git/config`` (and ``config.worktree``) of any repository, worktrees' own included."""
    parts = path.parts
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] == ".git":
            rest = parts[i + 1 :]
            if rest and rest[0].startswith("config"):
                return Path(*parts[: i + 2])
            if len(rest) >= 3 and rest[0] == "worktrees" and rest[2].startswith("config"):
                return Path(*parts[: i + 4])
            return None
    return None


def guard_reason(
    path: Path, bases: Sequence[Path], *, kimicode_home: Path, home: Path, on_path: Sequence[Path]
) -> str:
    """The guarded place a write to ``path`` would change ("" when none): a base (the workspace, an added
    folder) lying inside the guarded place and holding ``path`` is the user having named it."""
    for guard in guards(path, kimicode_home=kimicode_home, home=home, on_path=on_path):
        named = any(
            any(inside(b, guard.root) for b in variants(base)) and is_inside_workspace(path, base) for base in bases
        )
        if not named:
            return guard.what
    return ""


def literal_root(pattern: str) -> Path:
    """The path a glob pattern names before its first wildcard (`/h/.claude/**` → /h/.claude)."""
    cut = min((i for i, c in enumerate(pattern) if c in "*?["), default=len(pattern))
    head = pattern[:cut]
    if cut < len(pattern) and not head.endswith("/"):
        head = head.rsplit("/", 1)[0]  # the wildcard is inside a name: its folder
    return Path(os.path.normpath(head or "/"))


def in_scope(path: Path, bases: Sequence[Path]) -> bool:
    """Inside the workspace or a folder added with --add-dir (every form of the path)."""
    return any(is_inside_workspace(path, base) for base in bases)


# `git config` options that only read; any other use of `git config` writes a config file.
_GIT_CONFIG_READS = frozenset(
    {"--get", "--get-all", "--get-regexp", "--get-urlmatch", "--get-color", "--get-colorbool", "-l", "--list",
     "get", "list", "--show-origin", "--show-scope", "--name-only"}
)


def git_config_writes(words: tuple[str, ...]) -> list[str]:
    """The file a `git config` command writes (as a shell word), none when it only reads."""
    if not words or os.path.basename(words[0]) != "git":
        return []
    i = 1
    while i < len(words) and words[i].startswith("-"):  # global options: `git -C dir config`
        i += 2 if words[i] in ("-C", "-c", "--git-dir", "--work-tree") else 1
    if i >= len(words) or words[i] != "config":
        return []
    rest = words[i + 1 :]
    if any(word in _GIT_CONFIG_READS for word in rest) or len([w for w in rest if not w.startswith("-")]) < 2:
        if not any(word in ("set", "unset", "--unset", "--unset-all", "--add", "--replace-all", "rename-section",
                            "remove-section", "--rename-section", "--remove-section") for word in rest):
            return []
    for j, word in enumerate(rest):
        if word in ("--file", "-f") and j + 1 < len(rest):
            return [rest[j + 1]]
        if word.startswith("--file="):
            return [word.split("=", 1)[1]]
    if "--global" in rest:
        return ["~/.gitconfig"]
    if "--system" in rest:
        return ["/etc/gitconfig"]
    return [".git/config"]


# Programs whose path arguments are what they write: all of them, or the last one (the destination).
_WRITES_EVERY_PATH = frozenset({"tee", "touch", "mkdir", "rm", "rmdir", "truncate", "chmod", "chown", "chgrp", "shred", "unlink"})
_WRITES_LAST_PATH = frozenset({"cp", "mv", "install", "ln", "rsync", "scp"})


def command_writes(words: tuple[str, ...]) -> list[str]:
    """The words a simple command is known to write to (`cp a b` → b, `tee -a f` → f, `dd of=f` → f)."""
    if not words:
        return []
    name = os.path.basename(words[0])
    args = [w for w in words[1:] if not w.startswith("-")]
    if name in _WRITES_EVERY_PATH:
        return args[1:] if name in ("chmod", "chown", "chgrp") else args
    if name in _WRITES_LAST_PATH:
        target = next((w.split("=", 1)[1] for w in words if w.startswith("--target-directory=")), None)
        return [target] if target else args[-1:] if len(args) >= 2 else []
    if name == "dd":
        return [w[3:] for w in words[1:] if w.startswith("of=")]
    return git_config_writes(words)
