"""Read-only is a proof: every part a known program with known-safe arguments, nothing that executes while
bash expands words. Decided through the real Policy.decide in the stances that run read-only commands
unasked: headless without -y, the REPL (and ACP: the same policy, not headless), and plan mode."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from kimicode.security.policy import Policy
from kimicode.tools.base import ToolContext
from kimicode.tools.bash import BashTool

BASH = BashTool()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    user = tmp_path / "userhome"
    (user / ".ssh").mkdir(parents=True)
    (user / ".ssh" / "id_rsa").write_text("PRIVATE")
    (user / ".git-credentials").write_text("https://u:p@example.com\n")
    monkeypatch.setenv("HOME", str(user))
    kimi = tmp_path / "kimihome"
    kimi.mkdir()
    ws = tmp_path / "proj"
    (ws / "src").mkdir(parents=True)
    (ws / "src" / "a.py").write_text("x = 1\n")
    (ws / "file").write_text("hello\n")
    subprocess.run(["git", "init", "-q"], cwd=ws, check=True)
    return {"user": user, "kimi": kimi, "ws": ws}


STANCES: dict[str, dict[str, Any]] = {
    "headless": {"headless": True},
    "repl": {},
    "plan": {"stance": "plan"},
}
# What each stance does with a command that is not proven read-only.
REFUSED = {"headless": "deny", "repl": "ask", "plan": "deny"}


def decide(env: dict[str, Path], command: str, **kw: Any):
    policy = Policy(workspace=env["ws"], home=env["kimi"], user_home=env["user"], **kw)
    return policy.decide(BASH, {"command": command}, ToolContext(workspace=env["ws"]))


ATTACKS = [
    "[[ 'x[$(touch W)]' -eq 0 ]]",
    "[[ 0 -lt 'x[$(touch W)]' ]]",
    "[ -v 'a[$(touch W)]' ]",
    "test -v 'a[$(touch W)]'",
    "[[ -v 'a[$(touch W)]' ]]",
    "test 'x[$(touch W)]' -eq 0",
    "(( x[$(touch W)] ))",
    "(( 'x[$(touch W)]' )) && ls",
    "echo $(( 'a[$(touch W)]' ))",
    "echo ${a['$(touch W)']}",
    'echo "${a["$(touch W)"]}"',
    "echo ${x:=$(touch W)}",
    "echo ${x:=W}",
    "echo ${x=W}",
    "[[ -f x ]] && echo ${x:0:'a[$(touch W)]'}",
    "cat < /dev/${PATH:0:0}tcp/127.0.0.1/9",
    "cat < /dev/tcp/127.0.0.1/9",
    "cat < /dev/udp/127.0.0.1/9",
    "ls > out.txt",
    "ls 2> err.txt",
    "cat < ../outside.txt",
    "cat ~/.ss?/id_rsa ~/.git-credential?",
    "cat /etc/*.conf",
    "ls ../*",
    "cat .*/id_rsa",
    "cat src/../../*",
    "git -C evil.git diff",
    "git --git-dir=evil.git log",
    "git --work-tree=.. status",
    "git -c core.pager=sh log",
    "git diff --ext-diff",
    "git diff --textconv",
    "git log --output=x",
    "find . -exec touch W ;",
    "find . -execdir touch W ;",
    "find . -ok touch W ;",
    "find . -delete",
    "find . -fprint W",
    "rg --pre ./x foo",
    "rg --pre-glob '*' --pre ./x foo",
    "sort -o W file",
    "sed -i s/a/b/ file",
    "sed -n 'w W' file",
    "sed 's/a/b/w W' file",
    "sed 's/a/b/e' file",
    "sed '1e touch W' file",
    "sed -f script.sed file",
    "ls | tee W",
    "grep -R key .",
    "rg -L key",
]


@pytest.mark.parametrize("stance", STANCES)
@pytest.mark.parametrize("command", ATTACKS)
def test_what_could_write_or_leak_is_not_read_only(env, stance: str, command: str) -> None:
    decision = decide(env, command, **STANCES[stance])
    assert decision.action == REFUSED[stance], decision
    if stance == "plan":
        assert decision.planning


ORDINARY = [
    "ls",
    "ls -la src",
    "cat file",
    "cat file | head -5",
    "grep -rn x .",
    "grep -n x src/*.py",
    "git status",
    "git diff",
    "git log -p",
    "git log --oneline -5 | cat",
    "git show HEAD",
    "rg foo",
    "rg -n foo src",
    "find . -name '*.py'",
    "find . -name '*.py' -type f | wc -l",
    "[[ -f x ]]",
    "[[ -f file ]] && cat file",
    "[ -d src ] || echo none",
    "test -d y",
    "[[ 3 -eq 3 ]]",
    "test 1 -lt 2",
    "wc -l file",
    "wc -l src/*.py",
    "head -n 3 file",
    "tail -n 3 file",
    "ls 2>/dev/null",
    "ls 2>&1 | grep a",
    "cat < file",
    "echo $HOME",
    "echo ${HOME}",
    "cat <<EOF\nhello\nEOF",
    "sort file | uniq -c",
    "cd src && ls",
    "pwd && echo done",
    "sed -n 1,5p file",
    "sed 's/a/b/' file",
]


@pytest.mark.parametrize("stance", STANCES)
@pytest.mark.parametrize("command", ORDINARY)
def test_ordinary_reading_runs_unasked(env, stance: str, command: str) -> None:
    assert decide(env, command, **STANCES[stance]).action == "allow", command


def test_a_glob_that_matches_a_link_to_a_secret_is_not_read_only(env) -> None:
    (env["ws"] / "src" / "key").symlink_to(env["user"] / ".ssh" / "id_rsa")
    assert decide(env, "cat src/*", headless=True).action == "deny"
    assert decide(env, "cat */k?y", headless=True).action == "deny"
    assert decide(env, f"cat {env['ws']}/src/*", headless=True).action == "deny"
    assert decide(env, "cat src/*.py", headless=True).action == "allow"
    assert decide(env, f"cat {env['ws']}/*/*.py", headless=True).action == "allow"
    (env["ws"] / "src" / ".env").write_text("TOKEN=x\n")
    assert decide(env, "cat src/.e*", headless=True).action == "deny"


def test_a_glob_that_matches_an_option_is_not_read_only(env) -> None:
    (env["ws"] / "src" / "--pre=sh").write_text("")
    assert decide(env, "cd src && rg foo *", headless=True).action == "deny"
    assert decide(env, "rg foo src/*", headless=True).action == "allow"  # every match starts with src/


def test_git_is_not_read_only_in_a_repository_whose_config_runs_programs(env) -> None:
    subprocess.run(["git", "config", "diff.external", "touch W"], cwd=env["ws"], check=True)
    assert decide(env, "git diff", headless=True).action == "deny"
    assert decide(env, "git diff", headless=True, trusted=True).action == "allow"


def test_git_into_a_bare_repository_inside_the_workspace_is_not_read_only(env) -> None:
    bare = env["ws"] / "evil.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    assert decide(env, "cd evil.git && git diff", headless=True).action == "deny"
    assert decide(env, "git -C src status", headless=True).action == "allow"


def test_plan_mode_and_headless_run_read_only_commands_with_the_workspace_read_only(env) -> None:
    for kw in ({"headless": True}, {"stance": "plan"}):
        decision = decide(env, "cat file", **kw)
        assert decision.action == "allow" and decision.read_only_everything, kw
    assert decide(env, "cat file", stance="plan", yolo=True, trusted=True).read_only_everything
    # Under -y, or approved by a rule, a command may write: the sandbox is the ordinary one.
    assert not decide(env, "cat file", headless=True, yolo=True).read_only_everything
    assert not decide(env, "cat file").read_only_everything


def test_cd_out_of_the_workspace_then_a_relative_secret_is_not_read_only(env) -> None:
    assert decide(env, f"cd {env['user']}/.ssh && cat id_rsa", headless=True).action == "deny"
    assert decide(env, "cd ~ && cat .git-credentials", headless=True).action == "deny"


@pytest.mark.parametrize("command", ['cat "$HOME/.ssh/id_rsa"', 'cat "$HOME"/.ssh/id_rsa', 'cat "${HOME}/.ssh/id_rsa"'])
def test_a_quoted_home_variable_does_not_hide_a_secret_from_yes(env, command: str) -> None:
    assert decide(env, command, yolo=True).action == "deny"
