"""Approvals are for what the user saw: "a" and "always" cover the program and the argument pattern the
question showed, never a later option that makes it load other code (`make -f`, `pytest -p`,
`npm test --script-shell`). Through the real `Policy.remember`/`keep_rule`/`decide` and the real REPL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kimicode.security.codeflags import ENV, GENERIC, PROGRAMS
from kimicode.security.policy import Policy
from kimicode.tools.base import ToolContext
from kimicode.tools.bash import BashTool
from tests.fake_llm import FakeLLM, Reply, ToolCall
from tests.replpty import Repl

BASH = BashTool()

CASES = [
    ("make", ["make -f /tmp/x", "make --file=/tmp/x", "make -C /tmp/other", "make --eval='$(shell touch X)'",
              "MAKEFLAGS=-f/tmp/x make", "make -E 'x:=$(shell id)'"],
     ["make", "make build", "make -j4 test", "make -k"]),
    ("pytest", ["pytest -p evil", "pytest -pevil", "pytest -qp evil", "pytest -c /tmp/evil.ini", "pytest -o addopts=-pevil",
                "PYTEST_ADDOPTS='-p evil' pytest", "pytest --rootdir=/tmp/x", "PYTHONPATH=/tmp/x pytest"],
     ["pytest", "pytest -q", "pytest -x tests/test_a.py", "pytest -k 'name and not slow' -vv"]),
    ("npm test", ["npm test --script-shell=/tmp/x", "npm test --script-shell /tmp/x", "npm test -- --config evil.js",
                  "npm test -- -c evil.js", "npm test --prefix /tmp/x", "npm test --node-options='--require /tmp/x.js'",
                  "npm_config_script_shell=/tmp/x npm test"],
     ["npm test", "npm test -- -t name", "npm test -- --watch=false"]),
]


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    path = tmp_path / "proj"
    path.mkdir()
    return path


def decide(p: Policy, ws: Path, command: str) -> Any:
    return p.decide(BASH, {"command": command}, ToolContext(workspace=ws))


@pytest.mark.parametrize("approved,attacks,covered", CASES, ids=[c[0] for c in CASES])
def test_a_session_approval_does_not_cover_code_loading_options(ws: Path, tmp_path: Path, approved: str, attacks: list[str], covered: list[str]) -> None:
    p = Policy(workspace=ws, home=tmp_path / "kimi")
    assert decide(p, ws, approved).action == "ask"
    p.remember(BASH, {"command": approved}, ToolContext(workspace=ws))
    for command in covered:
        assert decide(p, ws, command).action == "allow", command
    for command in attacks:
        decision = decide(p, ws, command)
        assert decision.action == "ask", command


def test_always_saves_the_same_pattern_and_it_holds_in_the_next_run(ws: Path, tmp_path: Path) -> None:
    home = tmp_path / "kimi"
    p = Policy(workspace=ws, home=home)
    assert p.keep_rule(BASH, {"command": "pytest -q"}, ToolContext(workspace=ws)) == "bash(pytest *)"
    from kimicode.security.trust import TrustStore

    saved = [("allow", text, "saved for this project") for text in TrustStore(home).rules(ws)]
    later = Policy(workspace=ws, home=home, rules=saved, headless=True)
    assert decide(later, ws, "pytest tests").action == "allow"
    assert decide(later, ws, "pytest -p evil").action == "deny"


def test_approving_a_code_loading_command_covers_that_command_only(ws: Path, tmp_path: Path) -> None:
    p = Policy(workspace=ws, home=tmp_path / "kimi")
    ctx = ToolContext(workspace=ws)
    assert p.rule_texts(BASH, {"command": "pytest -p xdist -q"}, ctx) == ["bash(pytest -p xdist -q)"]
    p.remember(BASH, {"command": "pytest -p xdist -q"}, ctx)
    assert decide(p, ws, "pytest -p xdist -q").action == "allow"
    assert decide(p, ws, "pytest -p xdist -q -p evil").action == "ask"
    assert decide(p, ws, "pytest -p evil -q").action == "ask"


def test_a_configured_rule_covers_a_code_loading_option_only_when_it_spells_it_out(ws: Path, tmp_path: Path) -> None:
    rules = [("allow", "bash(make *)", "user config"), ("allow", "bash(make -f ci.mk *)", "user config")]
    p = Policy(workspace=ws, home=tmp_path / "kimi", rules=rules, headless=True)
    assert decide(p, ws, "make test").action == "allow"
    assert decide(p, ws, "make -f ci.mk test").action == "allow"
    assert decide(p, ws, "make -f /tmp/x test").action == "deny"
    any_file = Policy(workspace=ws, home=tmp_path / "kimi", rules=[("allow", "bash(make -f *)", "user config")], headless=True)
    assert decide(any_file, ws, "make -f other.mk").action == "allow"
    env = Policy(workspace=ws, home=tmp_path / "kimi", rules=[("allow", "bash(CI=1 npm test *)", "user config")], headless=True)
    assert decide(env, ws, "CI=1 npm test").action == "allow"


def test_every_listed_option_has_a_reason() -> None:
    for table in [GENERIC, ENV, *PROGRAMS.values()]:
        for name, why in table.items():
            assert why.strip() and name.strip(), name


# -- the REPL shows what it stores and asks again ------------------------------------------------------


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "Makefile").write_text("all:\n\t@echo built > built.txt\n")
    return ws


def test_the_repl_shows_the_pattern_and_asks_again_for_make_f(spawn, fake_llm: FakeLLM, workspace: Path, tmp_path: Path) -> None:
    evil = tmp_path / "x.mk"
    evil.write_text("all:\n\t@touch PWNED\n")
    fake_llm.script(
        Reply(tool_calls=[ToolCall("bash", {"command": "make"})]),
        Reply(tool_calls=[ToolCall("bash", {"command": f"make -f {evil}"})]),
        Reply(content="All tried"),
    )
    repl: Repl = spawn()
    repl.wait_prompt()
    repl.send_line("build")
    shown = repl.expect("yes for this session")
    assert "allow: bash(make *)" in shown
    repl.send("a")
    repl.expect(f"make -f {evil}")
    repl.expect("yes once")  # asked again, not covered by the session answer
    repl.send("n")
    repl.expect("reason")
    repl.send("\r")
    repl.expect("All tried")
    assert (workspace / "built.txt").exists()
    assert not (workspace / "PWNED").exists()


def test_one_answer_covers_editing_the_project_with_any_editing_tool(ws: Path, tmp_path: Path) -> None:
    from kimicode.tools.createfile import CreateFileTool
    from kimicode.tools.insert import InsertTool
    from kimicode.tools.strreplace import StrReplaceTool

    (ws / "a.py").write_text("a\n")
    p = Policy(workspace=ws, home=tmp_path / "kimi")
    ctx = ToolContext(workspace=ws)
    replace = (StrReplaceTool(), {"path": "a.py", "old_str": "a", "new_str": "b"})
    assert p.decide(*replace, ctx).action == "ask"
    assert p.rule_texts(*replace, ctx) == ["edit"]
    p.remember(*replace, ctx)
    assert p.decide(InsertTool(), {"path": "a.py", "insert_line": 0, "new_str": "x"}, ctx).action == "allow"
    assert p.decide(CreateFileTool(), {"path": "b/c.py", "content": "x"}, ctx).action == "allow"
    # not outside the workspace, not its protected folders
    outside = p.decide(CreateFileTool(), {"path": str(tmp_path / "elsewhere.py"), "content": "x"}, ctx)
    assert outside.action == "ask" and not outside.rememberable
    assert p.decide(CreateFileTool(), {"path": ".git/hooks/pre-commit", "content": "x"}, ctx).action == "ask"
