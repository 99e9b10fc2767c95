"""Which repository a git command reads, and whether that repository's configuration can run programs.

A read-only git command is only read-only in the workspace's own repository with a configuration that names
no program: `git -C evil.git diff` on a bare repository committed as plain files runs its `diff.external`,
and a downloaded folder's `.git/config` can set `core.fsmonitor`, which `git status` runs.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path

# Configuration keys that make git run a program (section, subsection or "*", key), with the reason.
# Keys are compared in lower case; "*" stands for any subsection or key.
PROGRAM_KEYS: dict[tuple[str, str, str], str] = {
    ("core", "", "fsmonitor"): "core.fsmonitor runs a hook on every status and diff",
    ("core", "", "pager"): "core.pager runs a program",
    ("pager", "*", "*"): "pager.* runs a program",
    ("pager", "", "*"): "pager.* runs a program",
    ("core", "", "sshcommand"): "core.sshCommand runs a program",
    ("core", "", "askpass"): "core.askPass runs a program",
    ("core", "", "editor"): "core.editor runs a program",
    ("core", "", "gitproxy"): "core.gitProxy runs a program",
    ("core", "", "alternaterefscommand"): "core.alternateRefsCommand runs a program",
    ("core", "", "hookspath"): "core.hooksPath points hooks elsewhere",
    ("core", "", "worktree"): "core.worktree reads files outside the repository",
    ("diff", "", "external"): "diff.external runs a program for every diff",
    ("diff", "*", "command"): "diff.<driver>.command runs a program",
    ("diff", "*", "textconv"): "diff.<driver>.textconv runs a program",
    ("filter", "*", "*"): "filter.<driver> runs clean/smudge programs",
    ("gpg", "", "program"): "gpg.program runs a program",
    ("gpg", "*", "program"): "gpg.<format>.program runs a program",
    ("include", "", "path"): "include.path reads more configuration",
    ("includeif", "*", "path"): "includeIf reads more configuration",
    ("credential", "", "helper"): "credential.helper runs a program",
    ("credential", "*", "helper"): "credential.helper runs a program",
    ("interactive", "", "difffilter"): "interactive.diffFilter runs a program",
    ("sequence", "", "editor"): "sequence.editor runs a program",
    ("merge", "*", "driver"): "merge.<driver>.driver runs a program",
    ("uploadpack", "", "packobjectshook"): "uploadpack.packObjectsHook runs a program",
    ("remote", "*", "uploadpack"): "remote.<name>.uploadpack runs a program",
    ("remote", "*", "receivepack"): "remote.<name>.receivepack runs a program",
}
_HEADER = re.compile(r'^\s*\[\s*([A-Za-z0-9.-]+)(?:\s+"((?:[^"\\]|\\.)*)")?\s*\](.*)$')
_KEY = re.compile(r"^\s*([A-Za-z][A-Za-z0-9-]*)\s*(?:=(.*))?$")
_FALSE = frozenset({"false", "no", "off", "0", ""})


def is_git_dir(path: Path) -> bool:
    """What git itself takes for a repository folder (bare or `.git`): HEAD, objects/ and refs/."""
    return (path / "HEAD").is_file() and (path / "objects").is_dir() and (path / "refs").is_dir()


def discover(start: Path) -> Path | None:
    """The git folder git would use when run in ``start`` (None: no repository), as git finds it."""
    current = Path(os.path.realpath(start))
    while True:
        dotgit = current / ".git"
        if dotgit.is_dir():
            return Path(os.path.realpath(dotgit))
        if dotgit.is_file():
            return _gitfile(dotgit)
        if is_git_dir(current):
            return current
        if current.parent == current:
            return None
        current = current.parent


def _gitfile(dotgit: Path) -> Path | None:
    try:
        text = dotgit.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None
    if not text.startswith("gitdir:"):
        return None
    target = Path(text[len("gitdir:") :].strip())
    return Path(os.path.realpath(dotgit.parent / target))


def config_files(git_dir: Path) -> list[Path]:
    """The repository's own configuration files: config, the shared one of a worktree, config.worktree."""
    files = [git_dir / "config", git_dir / "config.worktree"]
    common = git_dir / "commondir"
    if common.is_file():
        try:
            shared = Path(os.path.realpath(git_dir / common.read_text(encoding="utf-8").strip()))
        except OSError:
            return [common]  # unreadable: judged as unsafe by program_reason
        files += [shared / "config", shared / "config.worktree"]
    return files


def program_reason(git_dir: Path, worktree: Path | None) -> str:
    """Why git in this repository can run a program its configuration names ("" when it cannot)."""
    for path in config_files(git_dir):
        try:
            stat = path.stat()
        except FileNotFoundError:
            continue
        except OSError:
            return f"cannot read {path.name}"
        reason = _config_reason(str(path), stat.st_mtime_ns, stat.st_size)
        if reason:
            return reason
    if worktree is not None and (worktree / ".gitmodules").exists():
        return "the repository has submodules, whose configuration git also reads"
    return ""


@lru_cache(maxsize=64)
def _config_reason(path: str, mtime_ns: int, size: int) -> str:
    del mtime_ns, size  # part of the cache key: a changed file is read again
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "cannot read the repository's configuration"
    section, subsection = "", ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        header = _HEADER.match(line)
        if header is not None:
            name = header.group(1).lower()
            # [section.subsection] is the old spelling of [section "subsection"].
            section, _, old_sub = name.partition(".")
            subsection = header.group(2) if header.group(2) is not None else old_sub
            line = header.group(3).strip()
            if not line or line[0] in "#;":
                continue
        key = _KEY.match(line)
        if key is None or line.endswith("\\"):
            return "the repository's configuration has lines kimicode does not read"
        name, value = key.group(1).lower(), (key.group(2) or "").strip().strip('"').lower()
        if (section, name) == ("core", "fsmonitor") and value in _FALSE | {"true", "yes", "on", "1"}:
            continue  # the built-in daemon, or off
        for (want_section, want_sub, want_key), reason in PROGRAM_KEYS.items():
            if want_section != section or want_key not in ("*", name):
                continue
            if (want_sub == "" and subsection == "") or (want_sub == "*" and subsection != ""):
                return f"the repository's configuration sets {reason}"
    return ""
