"""The macOS sandbox-exec (Seatbelt) profile with the same shape as the bubblewrap arguments.

Untested: no macOS where the tests run. Seatbelt decides by path, so protected paths that do not exist yet
need no placeholder, and it has neither user nor PID namespaces.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def seatbelt_profile(
    writable: Sequence[Path], temp: Path, protected: Sequence[Path], secrets: tuple[list[Path], list[Path]], network: bool
) -> str:
    """A sandbox-exec profile with the same shape as the bubblewrap arguments (untested: no macOS here)."""

    def q(path: Path) -> str:
        return '"' + str(path).replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = ["(version 1)", "(allow default)", "(deny file-write*)"]
    allowed = [f"(subpath {q(p)})" for p in (*writable, temp)]
    lines.append(f'(allow file-write* {" ".join(allowed)} (literal "/dev/null") (literal "/dev/tty"))')
    if protected:
        lines.append("(deny file-write* " + " ".join(f"(subpath {q(p)})" for p in protected) + ")")
    dirs, files = secrets
    hidden = [f"(subpath {q(p)})" for p in dirs] + [f"(literal {q(p)})" for p in files]
    if hidden:
        lines.append("(deny file-read* file-write* " + " ".join(hidden) + ")")
    if not network:
        lines.append("(deny network*)")
        lines.append('(allow network* (remote unix-socket (path-literal "/private/var/run/mDNSResponder")))')
    return "\n".join(lines)
