"""Patterns compiled on first use (kimicode/security/lazy_re.py) decide exactly as compiled ones, and a
session whose first commands are ordinary does not compile the ones only unusual commands need."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from kimicode.security import programs, readonly, shell_walk, shell_words
from kimicode.security.lazy_re import LazyPattern

REPO = Path(__file__).resolve().parents[2]

LAZY = {
    module.__name__: sorted(name for name, value in vars(module).items() if isinstance(value, LazyPattern))
    for module in (shell_words, readonly, shell_walk, programs)
}


def test_every_module_listed_has_lazy_patterns() -> None:
    assert all(LAZY.values()), LAZY


@pytest.mark.parametrize(
    ("source", "flags", "text"),
    [
        (r"\\(x[0-9a-fA-F]{1,2}|.)", re.S, "a\\x41b\\\nc"),
        (r"^~(?:/[A-Za-z0-9_./@%+,:=-]*)?$", 0, "~/src/x.py"),
        (r"@P\}$", 0, "${x@P}"),
        (r"^[0-9]*-?$", 0, "2-"),
    ],
)
def test_a_lazy_pattern_matches_searches_and_substitutes_as_the_compiled_one(source: str, flags: int, text: str) -> None:
    lazy, compiled = LazyPattern(source, flags), re.compile(source, flags)
    assert not lazy.is_compiled()
    for pos in (0, 1):
        got, want = lazy.match(text, pos), compiled.match(text, pos)
        assert (got and got.group(0)) == (want and want.group(0))
        got, want = lazy.search(text, pos), compiled.search(text, pos)
        assert (got and got.span()) == (want and want.span())
    assert lazy.sub("<>", text) == compiled.sub("<>", text)
    assert lazy.sub(lambda m: m.group(0).upper(), text, 1) == compiled.sub(lambda m: m.group(0).upper(), text, 1)
    assert lazy.is_compiled() and lazy.pattern == source


_PROBE = """
import json, sys, tempfile
from pathlib import Path
from kimicode.security.policy import Policy
from kimicode.tools.base import ToolContext
from kimicode.tools.bash import BashTool
from kimicode.security.lazy_re import LazyPattern
import kimicode.security.programs, kimicode.security.readonly, kimicode.security.shell_walk, kimicode.security.shell_words

ws = Path(tempfile.mkdtemp())
(ws / "a.py").write_text("")
policy = Policy(headless=True, workspace=ws)
out = {}
for command in sys.argv[1:]:
    decision = policy.decide(BashTool(), {"command": command}, ToolContext(workspace=ws))
    compiled = sorted(
        f"{module.__name__}.{name}"
        for module in (kimicode.security.programs, kimicode.security.readonly, kimicode.security.shell_walk,
                       kimicode.security.shell_words)
        for name, value in vars(module).items()
        if isinstance(value, LazyPattern) and value.is_compiled()
    )
    out[command] = [decision.action.value, compiled]
print(json.dumps(out))
"""


def _decide_in_fresh_process(*commands: str) -> dict[str, list]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *commands], env=env, capture_output=True, text=True, timeout=60, check=True
    )
    return json.loads(done.stdout)


def test_ordinary_first_commands_compile_none_and_unusual_ones_are_decided_as_before() -> None:
    got = _decide_in_fresh_process(
        "true", "ls -la", "git status", "cat a.py | grep foo",  # ordinary: nothing compiled
        "ls *.py", "echo $'\\x41'", 'echo "$HOME"', "cat a.py 2>&-", "echo ${x@P}",  # each needs one
        "sed -n 1p a.py", "sed -n 1w_out a.py", "[[ 1 -eq 2 ]]", "[[ x -eq 2 ]]", "test -v name",
    )
    assert got["true"] == ["allow", []] and got["git status"][1] == [] and got["cat a.py | grep foo"][1] == []
    assert got["ls -la"] == ["allow", []]
    # The unusual ones: compiled when first needed, and decided as a read-only check decides them.
    assert got["ls *.py"][0] == "allow" and "kimicode.security.readonly._GLOB_WORD" in got["ls *.py"][1]
    assert got["echo $'\\x41'"][0] == "allow" and "kimicode.security.shell_words._ANSI_C" in got["echo $'\\x41'"][1]
    assert got['echo "$HOME"'][0] == "allow"
    assert got["cat a.py 2>&-"][0] == "allow" and "kimicode.security.readonly._FD_TARGET" in got["cat a.py 2>&-"][1]
    assert got["echo ${x@P}"][0] == "deny"  # a prompt expansion runs what the variable holds
    assert "kimicode.security.shell_words._PROMPT_EXPANSION" in got["echo ${x@P}"][1]
    programs_compiled = {p for _, compiled in got.values() for p in compiled if ".programs." in p}
    assert programs_compiled == {f"kimicode.security.programs.{name}" for name in ("_SED_STEP", "_INTEGER", "_NAME")}
    assert got["sed -n 1p a.py"][0] == "allow" and got["sed -n 1w_out a.py"][0] != "allow"  # w writes a file
    assert got["[[ 1 -eq 2 ]]"][0] == "allow" and got["[[ x -eq 2 ]]"][0] != "allow"  # x is evaluated
    assert got["test -v name"][0] == "allow"
