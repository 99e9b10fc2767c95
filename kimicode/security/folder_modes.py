"""Whether a folder's own permissions may change what this process's lookups through it find, in a way
this process or a command it runs could bring about (hostwatch.py asks, to know whether a folder's watch
must report the folder's own changes in place, which costs the kernel a walk of the folder's cached entries).

Not for a process whose capabilities pass any permission bits (root, usually: CAP_DAC_OVERRIDE or
CAP_DAC_READ_SEARCH): permissions decide none of its lookups. Else yes for a folder it owns (a folder's
permissions are its owner's to change) or for every folder where it may change any folder's (CAP_FOWNER).
A folder another user owns can be changed only by that user or root, neither of which a command of this one is.
"""

from __future__ import annotations

import os

# Effective capabilities (from <linux/capability.h>): with either of the first two, permission bits decide
# no lookup; with the third, any folder's permissions can be changed.
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER = 1 << 1, 1 << 2, 1 << 3


def own_changes_matter(folder: str) -> bool:
    """Whether a change to ``folder``'s own permissions may change what this process's lookups through it
    find and may be made by this process or its commands: not where permissions decide no lookup of this
    process (the capabilities root has); else for a folder it owns (its permissions are its owner's to
    change), or any where it may change any folder's. Where it cannot be told: yes."""
    capabilities = _capabilities()
    if capabilities is None:
        return True
    if capabilities & (CAP_DAC_OVERRIDE | CAP_DAC_READ_SEARCH):
        return False
    if capabilities & CAP_FOWNER:
        return True
    try:
        return os.lstat(folder).st_uid == os.geteuid()
    except OSError:
        return True


_CAPABILITIES: list[int | None] = []  # (read once: a process's capabilities are set when it starts)


def _capabilities() -> int | None:
    """This process's effective capabilities (``CapEff`` in /proc/self/status); None where not known."""
    if not _CAPABILITIES:
        found = None
        try:
            with open("/proc/self/status", "rb") as status:
                for line in status:
                    if line.startswith(b"CapEff:"):
                        found = int(line.split()[1], 16)
                        break
        except (OSError, ValueError, IndexError):
            found = None
        _CAPABILITIES.append(found)
    return _CAPABILITIES[0]
