"""The environment kimicode hands to the programs it starts: the model's commands and MCP servers.

The model's API keys stay with kimicode: a command the model runs (or a server a project names) has no
business with them, and a prompt-injected ``env | curl ...`` must not find them. A user whose own tools
need one of these variables names it in config.toml: ``pass_env = ["OPENAI_API_KEY"]`` (commands only;
an MCP server gets exactly the ``env`` values its own configuration gives it).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping

# Keys for the model's endpoint; never inherited by a child unless passed on purpose.
WITHHELD = ("KIMI_API_KEY", "MOONSHOT_API_KEY", "OPENAI_API_KEY")
# The withheld keys, taken out of os.environ at start-up (see withhold_keys).
_taken: dict[str, str] = {}


def withhold_keys() -> None:
    """Move the model's keys out of this process's environment, once, at start-up.

    Every program kimicode starts inherits os.environ unless told otherwise: the model's commands, MCP
    servers, git, the browser and its driver (a page can show ``file:///proc/<pid>/environ``). Taking the
    keys out at the source covers them all, including programs a library starts on its own.
    """
    for name in WITHHELD:
        value = os.environ.pop(name, None)
        if value is not None:
            _taken[name] = value
    if _taken:
        scrub_start_environment(set(_taken))


def scrub_start_environment(names: set[str]) -> bool:
    """Blank ``names`` in the environment block this process was started with (Linux); True when done.

    ``/proc/<pid>/environ`` shows that block, not the current environment: a key taken out of os.environ
    is still there for any process of the same user to read (an unsandboxed script the model runs,
    ``cat /proc/$PPID/environ``). Once unset, nothing points into those bytes any more (unsetenv drops
    the pointer; os.environ holds copies), so they are overwritten with NULs in place, as programs that
    take a password on their command line blank their argv. Through ``/proc/self/mem``: a wrong address
    is an error, never a crash, and no ctypes import on the start-up path.
    """
    if not sys.platform.startswith("linux") or not names:
        return False
    try:
        with open("/proc/self/stat", "rb") as f:
            stat = f.read()
        fields = stat[stat.rfind(b")") + 2 :].split()  # fields[0] is field 3 (state)
        start = int(fields[47])  # env_start (field 50 of proc(5))
        with open("/proc/self/environ", "rb") as f:
            block = f.read()  # the bytes from env_start to env_end
        blanked = False
        memory = os.open("/proc/self/mem", os.O_RDWR)
        try:
            offset = 0
            for entry in block.split(b"\0"):
                if entry.partition(b"=")[0].decode("utf-8", "replace") in names:
                    os.pwrite(memory, bytes(len(entry)), start + offset)
                    blanked = True
                offset += len(entry) + 1
        finally:
            os.close(memory)
        return blanked
    except (OSError, IndexError, ValueError):
        return False


# The last view built, with the raw os.environ and the withheld keys it was built from: every command
# asks for the environment, and decoding each variable again costs more than comparing the raw bytes.
_view: tuple[dict[bytes, bytes], dict[str, str], dict[str, str]] | None = None


def environment() -> dict[str, str]:
    """kimicode's own view of its environment: what it was started with, withheld keys included."""
    return dict(_current())


def _current() -> dict[str, str]:
    """The view of this moment, shared: never to be changed by a caller."""
    global _view
    raw = getattr(os.environ, "_data", None)  # (CPython's encoded variables: what os.environ decodes)
    if not isinstance(raw, dict):
        return {**os.environ, **_taken}
    if _view is None or _view[0] != raw or _view[1] != _taken:  # the same bytes decode to the same view
        _view = (dict(raw), dict(_taken), {**os.environ, **_taken})
    return _view[2]


def command_env(extra: Mapping[str, str] | None = None, pass_env: Iterable[str] = ()) -> dict[str, str]:
    """kimicode's environment without the withheld keys (except those in ``pass_env``), plus ``extra``."""
    keep = set(pass_env)
    env = {k: v for k, v in _current().items() if k not in WITHHELD or k in keep}
    env.update(extra or {})
    return env


def server_env(configured: Mapping[str, str] | None) -> dict[str, str] | None:
    """The variables an MCP stdio server is given on top of the SDK's short safe list (HOME, PATH, USER,
    SHELL, TERM, LOGNAME): its own configured ``env`` and nothing else of ours."""
    return dict(configured) if configured else None
