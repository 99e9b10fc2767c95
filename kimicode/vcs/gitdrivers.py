"""The filter, diff and merge driver programs a repository's config defines, each emptied for kimicode's git.

git itself lists them (``git config --get-regexp``, which follows includes); the listing is kept per git
directory until one of the files it came from changes. A file is known by its stat *and* its bytes (config
files are small): a rewrite within the file system's timestamp granularity keeps every stat field, so a
stat alone could not tell a just-written config (every new checkout's) from its rewrite. Linked worktrees of
one repository share a listing when no file read has an include (an ``includeIf`` names a worktree's git
directory or branch), none has its own ``config.worktree`` and no config comes from the environment: then
git reads the very same files for each. The overrides travel as GIT_CONFIG_KEY_n /
GIT_CONFIG_VALUE_n: like ``-c`` they outrank every config file, and a driver name holding ``=`` cannot
split them.
"""

from __future__ import annotations

import os
import re
import stat
import threading
from collections.abc import Callable
from pathlib import Path

from kimicode.vcs import githarden

# A config file larger than this is not kept in memory to compare: its listing is not cached.
MAX_KEPT_BYTES = 1 << 20
_INCLUDE_PATH = re.compile(r"^\s*path\s*=\s*(.*?)\s*$", re.IGNORECASE | re.MULTILINE)

_lock = threading.Lock()
_cache: dict[str, tuple[tuple[object, ...], list[tuple[str, str]]]] = {}
_stat = os.stat


def driver_overrides(git_dir: Path, common_dir: Path, env: dict[str, str], listing: Callable[[], str]) -> dict[str, str]:
    """GIT_CONFIG_COUNT/KEY/VALUE entries emptying every driver program; ``listing`` runs git's listing."""
    sources = _sources_key(git_dir, common_dir, env)
    name, key = sources if sources is not None else ("", None)
    with _lock:
        cached = _cache.get(name)
    if key is not None and cached is not None and cached[0] == key:
        pairs = cached[1]
    else:
        pairs = overrides_from_listing(listing())
        # Kept only if nothing changed while git read: else git's listing may be of other bytes than the key's.
        if sources is not None and _sources_key(git_dir, common_dir, env) == sources:
            with _lock:
                _cache[name] = (sources[1], pairs)
    entries: dict[str, str] = {"GIT_CONFIG_COUNT": str(len(pairs))}
    for n, (config_key, value) in enumerate(pairs):
        entries[f"GIT_CONFIG_KEY_{n}"] = config_key
        entries[f"GIT_CONFIG_VALUE_{n}"] = value
    return entries


def overrides_from_listing(config_listing: str) -> list[tuple[str, str]]:
    """(key, value) pairs emptying every driver program in ``git config -z --get-regexp`` output."""
    pairs: list[tuple[str, str]] = []
    seen: set[str] = set()
    for record in config_listing.split("\0"):
        key = record.split("\n", 1)[0].strip()
        match = githarden.DRIVER_KEY.match(key)
        if match is None or key in seen:
            continue
        seen.add(key)
        kind, name, program = match.group(1).lower(), match.group(2), match.group(3).lower()
        pairs.append((f"{kind}.{name}.{program}", githarden.DRIVER_VALUE.get(program, "")))
        if kind == "filter":
            pairs.append((f"filter.{name}.required", "false"))
    return pairs


def _sources_key(git_dir: Path, common_dir: Path, env: dict[str, str]) -> tuple[str, tuple[object, ...]] | None:
    """Under which name a listing is kept, and the stat and bytes of every config file git would read
    (includes followed); None when not to cache."""
    home = Path(os.path.expanduser("~"))
    xdg = Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config")
    roots = [Path(os.environ["GIT_CONFIG_GLOBAL"])] if os.environ.get("GIT_CONFIG_GLOBAL") else [
        home / ".gitconfig", xdg / "git" / "config"]
    # HEAD: an `includeIf "onbranch:..."` turns on with a branch switch.
    roots += [common_dir / "config", git_dir / "config.worktree", git_dir / "HEAD"]
    seen: dict[Path, object] = {}
    pending = list(roots)
    while pending and len(seen) < 64:
        path = pending.pop()
        if path in seen:
            continue
        try:
            st = _stat(path)
            # Only a regular file is read (a FIFO would block); git reads nothing else either.
            data = _read(path, st.st_size) if stat.S_ISREG(st.st_mode) else b""
        except OSError:
            seen[path] = None
            continue
        if data is None:
            return None
        seen[path] = (st.st_mode, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, data)
        pending += _include_candidates(path, data, home)
    if pending:
        return None  # too many includes to watch: list every time
    own = (git_dir / "config.worktree", git_dir / "HEAD")
    # Any include at all (one this walk could not follow may hold an includeIf), or config from the
    # environment: kept per git directory only.
    includes = any(isinstance(s, tuple) and b"include" in s[-1].lower() for s in seen.values())
    from_environment = any(v in env or v in os.environ for v in ("GIT_CONFIG_COUNT", "GIT_CONFIG_PARAMETERS"))
    name = str(git_dir)
    if not includes and not from_environment and seen.get(own[0]) is None:  # the same files in every worktree
        name = f"common {common_dir}"
        seen = {path: s for path, s in seen.items() if path not in own}
    return name, (tuple(sorted((str(p), s) for p, s in seen.items())), env.get("GIT_CONFIG_PARAMETERS", ""))


def _read(path: Path, size: int) -> bytes | None:
    """The file's bytes; None when it is (or has grown) too large to keep."""
    if size > MAX_KEPT_BYTES:
        return None
    with open(path, "rb") as handle:
        data = handle.read(MAX_KEPT_BYTES + 1)
    return data if len(data) <= MAX_KEPT_BYTES else None


def _include_candidates(path: Path, data: bytes, home: Path) -> list[Path]:
    """Every `path = ...` line of a config file, read as an include (more than git follows: only a cost)."""
    text = data.decode("utf-8", errors="replace")
    found = []
    for raw in _INCLUDE_PATH.findall(text):
        value = raw.split(" #")[0].split(" ;")[0].strip().strip('"')
        if not value or "%(" in value:
            continue
        target = Path(os.path.expanduser(value)) if value.startswith("~") else path.parent / value
        found.append(target)
    return found
