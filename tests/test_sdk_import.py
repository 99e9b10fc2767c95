"""The openai SDK imported with its type packages deferred (kimicode/llm/sdk_import.py): every name the SDK
offers is still there, the same object as after a plain import, and its models still parse.

Each side runs in a fresh interpreter: this test process may have imported the SDK already.
"""

from __future__ import annotations

import json
import subprocess
import sys

from tests.clirun import REPO

PACKAGES = ("openai.types", "openai.types.chat", "openai.types.responses", "openai.types.shared", "openai.types.graders")

LIST_NAMES = """
import importlib, json, sys
{setup}
import openai
names = {{}}
for package in {packages!r}:
    module = importlib.import_module(package)
    names[package] = {{name: f"{{getattr(module, name).__module__}}:{{getattr(getattr(module, name), '__qualname__', name)}}"
                      for name in {wanted}
                      if not name.startswith("_") and hasattr(getattr(module, name), "__module__")}}
loaded = sorted(m for m in sys.modules if m.startswith("openai.types"))
print(json.dumps({{"names": names, "loaded": loaded}}))
"""

DEFER = "from kimicode.llm.sdk_import import defer_sdk_types; defer_sdk_types()"


def _run(code: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_every_name_of_the_types_packages_is_the_same_after_a_deferred_import() -> None:
    plain = _run(LIST_NAMES.format(setup="", packages=PACKAGES, wanted="list(vars(module))"))
    wanted = json.dumps({package: sorted(names) for package, names in plain["names"].items()})
    deferred = _run(
        LIST_NAMES.format(setup=DEFER, packages=PACKAGES, wanted=f"json.loads({wanted!r})[package]")
    )
    assert deferred["names"] == plain["names"]
    assert len(plain["names"]["openai.types"]) > 100  # the comparison covered the SDK's names, not an empty list


def test_the_deferred_import_loads_fewer_type_modules_and_models_still_parse() -> None:
    code = f"""
import json, sys
{DEFER}
import openai
before = sorted(m for m in sys.modules if m.startswith("openai.types"))
from openai.types.graders import *  # noqa: F403 - a package not loaded yet: its __init__ runs for the star
from openai.types.chat import ChatCompletion
from openai.types import CompletionUsage  # a name of the root package, whose __init__ runs now
usage = CompletionUsage(prompt_tokens=1, completion_tokens=2, total_tokens=3)
reply = ChatCompletion.model_validate({{"id": "c", "object": "chat.completion", "created": 1, "model": "m",
    "choices": [{{"index": 0, "finish_reason": "stop", "message": {{"role": "assistant", "content": "hi"}}}}]}})
print(json.dumps({{"before": before, "content": reply.choices[0].message.content,
    "star": "MultiGrader" in globals(), "usage": usage.total_tokens}}))
"""
    state = _run(code)
    plain = _run(LIST_NAMES.format(setup="", packages=(), wanted="[]"))
    assert (state["content"], state["star"], state["usage"]) == ("hi", True, 3)
    assert "openai.types.graders" not in state["before"]
    assert len(state["before"]) * 4 < len(plain["loaded"])  # a fraction of the type modules, not all of them
