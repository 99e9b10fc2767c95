"""Keep kimicode's memory away from the user's other processes: ``prctl(PR_SET_DUMPABLE, 0)``.

The model's key lives in kimicode's heap however the environment is blanked (childenv.py), and any process
of the same user may read a dumpable process's ``/proc/<pid>/mem`` and ``environ`` — a script the model
wrote and the user let run outside the sandbox, too. A process that is not dumpable has its ``/proc``
files owned by root: only root (CAP_SYS_PTRACE) reads them, and it writes no core dump. Programs kimicode
starts are dumpable again: ``execve`` resets the flag.

The price: a debugger or profiler attaching to a running kimicode (``gdb -p``, ``py-spy dump``,
``strace -p``) needs root, and a crash leaves no core file (SECURITY.md).

Through ``_ctypes`` (the C module, well under a millisecond to import) rather than ``ctypes``, whose
Python layer costs tens of milliseconds at start-up.
"""

from __future__ import annotations

import sys

PR_SET_DUMPABLE = 4
PR_GET_DUMPABLE = 3


def _prctl(option: int) -> int:
    import _ctypes

    class _Int(_ctypes._SimpleCData):
        _type_ = "i"

    class _Function(_ctypes.CFuncPtr):
        _flags_ = _ctypes.FUNCFLAG_CDECL
        _restype_ = _Int

    class _Process:  # what CFuncPtr looks a symbol up in: the running program and the libc it links
        # The stub allows a path only; dlopen(NULL) is the running program itself.
        _handle = _ctypes.dlopen(None, 0)  # type: ignore[arg-type]

    # The stub wants a CDLL; CFuncPtr reads only `_handle`, and importing ctypes for CDLL is what this avoids.
    prctl = _Function(("prctl", _Process()))  # type: ignore[arg-type]
    return int(prctl(option, 0, 0, 0, 0))


def forbid_inspection() -> bool:
    """Make this process not dumpable (Linux); True when it is not dumpable afterwards."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        _prctl(PR_SET_DUMPABLE)  # option 4 with argument 0: not dumpable
        return _prctl(PR_GET_DUMPABLE) == 0
    except (ImportError, AttributeError, OSError, TypeError):
        return False
