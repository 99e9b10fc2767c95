"""The cyclic garbage collector around start-up and exit.

Start-up creates tens of thousands of objects that live as long as the process (modules, classes, the
openai SDK's several hundred pydantic models) and frees almost none of them, so every collection pass while
they load walks a growing heap and finds nothing: about a third of the SDK's import time. At exit the
interpreter's own last collections walk that same heap again (a few hundred milliseconds after the result
is printed). So:

- while the process loads, the collector is paused (reference counting still frees what is dropped);
- once the run's modules are loaded, what exists is moved out of the collector's view (``gc.freeze``) and
  collection resumes for what the run itself creates;
- at exit, what is left is moved out of view too: the process is ending and frees it all at once.

Invariant: every path that runs for long (a headless run, the REPL, ACP, the management commands) calls
``loaded()`` before it starts its work, so collection is paused only while modules load.
"""

from __future__ import annotations

import gc


def pause_collection() -> None:
    """First thing at start-up: no collection while the modules load."""
    gc.disable()


def loaded() -> None:
    """The modules are loaded: keep what exists out of later collections, and collect again."""
    gc.freeze()
    gc.enable()


def before_exit() -> None:
    """The work is done: spare the interpreter's last collections a walk over everything still alive."""
    gc.freeze()
