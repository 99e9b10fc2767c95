"""Regular expressions compiled on their first use instead of at import.

The policy's shell modules are imported by the session's first tool call, inside a step the user waits
for. Most of their patterns serve only unusual commands (ANSI-C quoting, `${x@P}`, globs and variables in
a read-only check): compiled at import, every session would pay for them on its first step. A pattern
used by every command gains nothing from this and is compiled as usual.

The compiled pattern is the one ``re.compile`` gives for the same text and flags: matching behaves the
same, only the moment of compiling moves.
"""

from __future__ import annotations

import re
import threading
from typing import Callable


class LazyPattern:
    """``re.compile(source, flags)``, done on the first ``match``/``search``/``sub``."""

    __slots__ = ("_source", "_flags", "_compiled")

    def __init__(self, source: str, flags: int = 0) -> None:
        self._source = source
        self._flags = flags
        self._compiled: re.Pattern[str] | None = None

    @property
    def pattern(self) -> str:
        return self._source

    def compiled(self) -> re.Pattern[str]:
        compiled = self._compiled
        if compiled is None:
            with _LOCK:  # (two threads compiling at once would only waste the work; the lock keeps one)
                compiled = self._compiled
                if compiled is None:
                    compiled = self._compiled = re.compile(self._source, self._flags)
        return compiled

    def is_compiled(self) -> bool:
        return self._compiled is not None

    def match(self, string: str, pos: int = 0) -> re.Match[str] | None:
        return self.compiled().match(string, pos)

    def search(self, string: str, pos: int = 0) -> re.Match[str] | None:
        return self.compiled().search(string, pos)

    def sub(self, repl: str | Callable[[re.Match[str]], str], string: str, count: int = 0) -> str:
        return self.compiled().sub(repl, string, count)


_LOCK = threading.Lock()
