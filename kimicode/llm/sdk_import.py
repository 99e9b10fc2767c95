"""Importing the openai SDK without the type modules a chat-completions client never touches.

``import openai`` runs ``openai/types/__init__.py``, which imports every request and response model of every
API the SDK covers (responses, evals, graders, batches, videos, ...): several hundred pydantic classes, about
half of the SDK's import time, before a one-shot run can send its first request. kimicode posts its own
request bytes and reads the stream itself (llm/transport.py), so it needs almost none of them.

``defer_sdk_types()`` puts a finder in front of the import system that changes one thing: a package under
``openai.types`` is created without running its ``__init__``. The package's submodules import as before
(``openai.types.chat.chat_completion``), and the first time anyone reads a name the package's ``__init__``
would have defined (``openai.types.ChatCompletion``, ``from openai.types.chat import *``), that ``__init__``
runs, once, and the name is there: every name the SDK offers stays reachable, only later.

Installed before the SDK's first import; if the SDK was imported already, it changes nothing.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import os
import sys
import threading
from collections.abc import Sequence
from types import ModuleType
from typing import Any

DEFERRED = "openai.types"  # this package and the packages below it

_lock = threading.RLock()  # a package's __init__ runs once even when two threads ask for a name at once


class _DeferredInit(importlib.abc.Loader):
    """Creates the package as its own loader would, and runs its ``__init__`` when a name of it is read."""

    def __init__(self, real: importlib.abc.Loader) -> None:
        self.real = real

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.real.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        real = self.real
        folders = list(getattr(module, "__path__", []))

        def __getattr__(name: str) -> Any:
            # The import system asks for names that are submodules (`from openai.types import chat`) before
            # it imports them, and for dunders while it sets the module up: neither needs the __init__.
            if (name.startswith("__") and name != "__all__") or _is_submodule(folders, name):
                raise AttributeError(name)
            with _lock:
                if module.__dict__.get("__getattr__") is __getattr__:
                    del module.__dict__["__getattr__"]
                    real.exec_module(module)
            try:
                return module.__dict__[name]
            except KeyError:
                raise AttributeError(f"module {module.__name__!r} has no attribute {name!r}") from None

        module.__getattr__ = __getattr__  # type: ignore[method-assign]


def _is_submodule(folders: list[str], name: str) -> bool:
    # (a name that is not found here is looked up in the __init__, which is always right, only later)
    return any(
        os.path.isdir(os.path.join(folder, name))
        or any(os.path.isfile(os.path.join(folder, name + suffix)) for suffix in importlib.machinery.all_suffixes())
        for folder in folders
    )


class _DeferTypesFinder(importlib.abc.MetaPathFinder):
    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != DEFERRED and not fullname.startswith(DEFERRED + "."):
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.submodule_search_locations is None or spec.loader is None:
            return spec  # a plain module, or not found: as usual
        spec.loader = _DeferredInit(spec.loader)
        return spec


def defer_sdk_types() -> None:
    """From now on, the SDK's type packages run their ``__init__`` only when one of its names is read."""
    with _lock:
        if DEFERRED in sys.modules or any(isinstance(f, _DeferTypesFinder) for f in sys.meta_path):
            return  # already imported the usual way, or already deferred
        sys.meta_path.insert(0, _DeferTypesFinder())


def ask_platform() -> None:
    """What the SDK asks about the machine before its first request (for its X-Stainless-* headers), asked
    now: ``platform.platform()`` runs ``uname -p`` in a new process, which the first request would otherwise
    wait for. The platform module keeps the answers, so the SDK's own later call reads them from there."""
    import platform

    platform.platform()
    platform.machine()
    with contextlib.suppress(OSError):
        platform.freedesktop_os_release()


def import_sdk() -> ModuleType:
    """The ``openai`` module, imported with its type packages deferred."""
    defer_sdk_types()
    import openai  # heavy: only for callers that will send a request

    return openai
