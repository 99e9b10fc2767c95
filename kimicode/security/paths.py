"""Path classes the policy cares about: inside the workspace, protected (writes always ask), secret (denied).

Every check looks at both the path as written and the path with symlinks resolved: a link in the workspace
that points at ``~/.ssh`` is a secret path, and a link named ``notes`` that points into ``.git/hooks`` is a
protected one.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from pathlib import Path

# Writes below these folders (anywhere in the workspace) steer kimicode or other tools: its own and other
# agents' settings, git's hooks and config, editors' task runners, CI workflows.
PROTECTED_DIRS: tuple[tuple[str, ...], ...] = (
    (".kimicode",),
    (".git",),
    (".vscode",),
    (".cursor",),
    (".zed",),
    (".claude",),
    (".codex",),
    (".agents",),
    (".github", "workflows"),
)
PROTECTED_FILES = frozenset({".mcp.json"})
# Shell start-up files in the user's home: a write there runs code in every later shell.
SHELL_STARTUP = (
    ".bashrc",
    ".bash_profile",
    ".bash_login",
    ".bash_logout",
    ".bash_aliases",
    ".profile",
    ".zshrc",
    ".zshenv",
    ".zprofile",
    ".zlogin",
    ".zlogout",
    ".kshrc",
    ".mkshrc",
    ".cshrc",
    ".tcshrc",
    ".config/fish",
    ".inputrc",
)
# Folders in the user's home where other tools (coding agents first) read settings, skills and hooks: a
# write there steers them. ~/.config covers git's, fish's and most programs' own settings.
AGENT_CONFIG_DIRS = (".claude", ".codex", ".gemini", ".cursor", ".kimi", ".agents", ".aider", ".continue", ".config")
# Git reads these as the user's configuration (aliases, pager, fsmonitor: all run code).
GIT_CONFIG_FILES = (".gitconfig", ".config/git")
# Secrets in the user's home (folders cover everything below them). The one list: the policy refuses
# reads of them (view, screenshot, command arguments), the sandbox hides them (kimicode/security/sandbox.py).
HOME_SECRETS = (
    ".ssh",
    ".gnupg",
    ".aws",
    ".azure",
    ".config/gcloud",
    ".config/gh",
    ".kube",
    ".docker",
    ".netrc",
    ".git-credentials",
    ".config/git/credentials",
    ".npmrc",
    ".pypirc",
)
# Secrets in KIMICODE_HOME (folders cover everything below them): the user's config holds the API key;
# trust.json decides what runs unasked; MCP servers' sign-in tokens; the local server's token.
KIMICODE_SECRETS = ("config.toml", "trust.json", "mcp-tokens", "serve.token")
# `.env` files hold keys; these templates hold none, and builds read them.
ENV_TEMPLATES = frozenset({".env.example", ".env.sample", ".env.template", ".env.dist", ".env.defaults"})


def is_env_file(name: str) -> bool:
    return name.startswith(".env") and name not in ENV_TEMPLATES


def user_home() -> Path:
    return Path(os.path.expanduser("~"))


# Paths resolved during the decision in progress (one_decision), by the text as written. One decision asks
# for the same few paths many times (the target, the workspace, kimicode's home: ~10 resolutions, each an
# lstat per component); the next decision starts empty, so it sees the file system as it is by then.
_RESOLVED: ContextVar[dict[str, list[Path]] | None] = ContextVar("kimicode_resolved_paths", default=None)


@contextmanager
def one_decision() -> Iterator[None]:
    """Within this block (one policy decision, which never awaits) each path is resolved once."""
    if _RESOLVED.get() is not None:  # a decision inside a decision (a hook's answer weighed): the same one
        yield
        return
    token = _RESOLVED.set({})
    try:
        yield
    finally:
        _RESOLVED.reset(token)


def variants(path: Path) -> list[Path]:
    """The path as written (normalised) and with symlinks resolved, without duplicates."""
    text = str(path)
    memo = _RESOLVED.get()
    if memo is not None and text in memo:
        return list(memo[text])
    literal = Path(os.path.normpath(text))
    try:
        real = Path(os.path.realpath(literal))
    except OSError:
        real = literal
    found = [literal] if real == literal else [literal, real]
    if memo is not None:
        memo[text] = found
    return list(found)


def inside(path: Path, root: Path) -> bool:
    """``path`` is ``root`` or below it (both normalised; a string test: ``Path.parents`` is slow)."""
    return inside_text(str(path), str(root))


def is_inside_workspace(path: Path, workspace: Path) -> bool:
    """Every form of the path (written and resolved) lies in the workspace."""
    roots = variants(workspace)
    return all(any(inside(p, root) for root in roots) for p in variants(path))


def _relative(path: Path, roots: list[Path]) -> tuple[str, ...] | None:
    for root in roots:
        if inside(path, root):
            return path.relative_to(root).parts
    return None


def protected_reason(path: Path, workspace: Path, home: Path | None = None) -> str:
    """Why writing ``path`` is a protected write ("" when it is not): names the path class."""
    home = home or user_home()
    roots = variants(workspace)
    for p in variants(path):
        parts = _relative(p, roots)
        if parts is not None:
            for i in range(len(parts)):
                for prefix in PROTECTED_DIRS:
                    if parts[i : i + len(prefix)] == prefix and i + len(prefix) <= len(parts):
                        return f"a protected path ({'/'.join(prefix)}/)"
            if parts and parts[-1] in PROTECTED_FILES:
                return f"a protected path ({parts[-1]})"
    return ""


def inside_text(text: str, base: str) -> bool:
    """``inside`` for paths already turned into text (normalised)."""
    return text == base or text.startswith(base if base.endswith(os.sep) else base + os.sep)


@lru_cache(maxsize=64)
def joined(base: str, names: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """(name, base/name as text) for each name: text only, no file system (so it may be kept)."""
    return tuple((name, os.path.join(base, name)) for name in names)


def secret_reason(path: Path, kimicode_home: Path, home: Path | None = None) -> str:
    """Why ``path`` is a secret path ("" when it is not)."""
    home = home or user_home()
    home_secrets = joined(str(home), HOME_SECRETS)
    bases = variants(kimicode_home)
    own_secrets = [(name, os.path.join(str(base), name)) for name in KIMICODE_SECRETS for base in bases]
    for p in variants(path):
        text = str(p)
        for name, root in home_secrets:
            if inside_text(text, root):
                return f"a secret path (~/{name})"
        for name, root in own_secrets:
            if inside_text(text, root):
                return f"a secret path (kimicode's {name})"
        if is_env_file(p.name):
            return "a secret path (.env files)"
        if is_process_environment(str(p)):
            return PROCESS_ENVIRONMENT
    return ""


PROCESS_ENVIRONMENT = "a secret path (a process's environment, where kimicode's own key lives)"
# /proc/<pid>/environ and /proc/<pid>/task/<tid>/environ, with the pid written any way ($PPID, self, 1234).
_PROC_ENVIRON = re.compile(r"^/proc/[^/]+(/task/[^/]+)?/environ$")


def is_process_environment(text: str) -> bool:
    """A path (or a shell word naming one, variables unexpanded) to some process's environment."""
    return bool(_PROC_ENVIRON.match(os.path.normpath(text) if text.startswith("/") else text))


def expand_word(word: str, workspace: Path, home: Path | None = None) -> Path | None:
    """A shell word read as a path when it plausibly is one (has a slash, a ~ or a dot-name); else None."""
    home = home or user_home()
    text = word
    for var in ("$HOME", "${HOME}"):
        if text.startswith(var):
            text = str(home) + text[len(var) :]
    if text.startswith("~"):
        text = os.path.expanduser(text) if not text.startswith("~/") else str(home) + text[1:]
    if "=" in text and not text.startswith("/"):
        text = text.split("=", 1)[1]  # --key=path, VAR=path
    if not text or text.startswith("-") or "$" in text or "://" in text:
        return None
    if "/" not in text and not text.startswith("."):
        return None
    candidate = Path(text)
    if not candidate.is_absolute():
        candidate = workspace / candidate
    return Path(os.path.normpath(str(candidate)))
