"""The policy's decisions, call by call: rules, protected and secret paths, shell commands, the headless stance."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any, ClassVar

import pytest

from kimicode.security.decision import Action
from kimicode.security.policy import Policy
from kimicode.security.rules import RuleError, parse_rule
from kimicode.tools.base import Tool, ToolContext
from kimicode.tools.bash import BashTool
from kimicode.tools.createfile import CreateFileTool
from kimicode.tools.screenshot import ScreenshotTool
from kimicode.tools.view import ViewTool
from tests.security.offline import no_name_lookup

BASH, VIEW, CREATE, SHOT = BashTool(), ViewTool(), CreateFileTool(), ScreenshotTool()


class McpWrite(Tool):
    name: ClassVar[str] = "mcp__srv__write"
    description: ClassVar[str] = "writes"
    parameters: ClassVar[dict[str, Any]] = {"type": "object", "properties": {}}


class McpRead(McpWrite):
    name: ClassVar[str] = "mcp__srv__read"
    read_only: ClassVar[bool] = True


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    user = tmp_path / "userhome"
    (user / ".ssh").mkdir(parents=True)
    (user / ".ssh" / "id_rsa").write_text("PRIVATE")
    monkeypatch.setenv("HOME", str(user))
    kimi = tmp_path / "kimihome"
    kimi.mkdir()
    (kimi / "config.toml").write_text('api_key = "sk-secret"\n')
    ws = tmp_path / "proj"
    ws.mkdir()
    (ws / "README").write_text("hello\n")
    return {"user": user, "kimi": kimi, "ws": ws, "tmp": tmp_path}


def policy(env: dict[str, Path], **kw: Any) -> Policy:
    return Policy(workspace=env["ws"], home=env["kimi"], **kw)


def ctx(env: dict[str, Path], sandbox: Any = None) -> ToolContext:
    c = ToolContext(workspace=env["ws"])
    if sandbox is not None:
        c.sandbox = sandbox  # type: ignore[attr-defined]
    return c


def bash(p: Policy, env: dict[str, Path], command: str, **extra: Any):
    return p.decide(BASH, {"command": command, **extra}, ctx(env))


# -- shell commands after a session approval ------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["pytest -q", "npm test", "make build"])
def test_session_approval_covers_one_simple_command_only(env, prefix: str) -> None:
    p = policy(env)
    assert bash(p, env, prefix).action == "ask"
    p.remember(BASH, {"command": prefix}, ctx(env))
    assert bash(p, env, prefix).action == "allow"
    assert bash(p, env, prefix + " -x").action == "allow"
    assert bash(p, env, f"{prefix} && {prefix}").action == "allow"
    for attack, new_part in [
        (f"{prefix} && touch X", "touch X"),
        (f"{prefix}\ntouch X", "touch X"),
        (f"{prefix} $(touch X)", "command substitution"),
        (f"{prefix} `touch X`", "command substitution"),
        (f"{prefix} || rm -rf dir; rm -rf dir", "rm -rf dir"),
        (f"{prefix} | sh", "sh"),
        (f"{prefix} > f", "writes to f"),
    ]:
        decision = bash(p, env, attack)
        assert decision.action == "ask", attack
        assert new_part in decision.reason, (attack, decision.reason)


def test_read_only_commands_run_unasked_and_compounds_with_writes_do_not(env) -> None:
    p = policy(env)
    for command in ["git status", "git status -s", "git status && git status", "ls | wc -l", "cat README"]:
        assert bash(p, env, command).action == "allow", command
    assert "touch X" in bash(p, env, "git status && touch X").reason
    assert bash(p, env, "git status > f").action == "ask"


def test_headless_runs_only_read_only_commands(env) -> None:
    p = policy(env, headless=True)
    assert bash(p, env, "git status && ls").action == "allow"
    refused = bash(p, env, "touch X")
    assert refused.action == "deny" and "read-only" in refused.reason and "-y" in refused.reason
    assert "rm x" in bash(p, env, "ls && rm x").reason
    assert policy(env, headless=True, yolo=True).decide(BASH, {"command": "touch X"}, ctx(env)).action == "allow"


def test_a_bash_command_naming_a_secret_is_denied(env) -> None:
    p = policy(env, yolo=True)
    assert bash(p, env, "cat ~/.ssh/id_rsa").action == "deny"
    assert bash(p, env, "cat .env").action == "deny"
    assert bash(p, env, f"cat {env['kimi'] / 'config.toml'}").action == "deny"


def test_bash_writes_into_protected_paths_ask_and_are_not_rememberable(env) -> None:
    p = policy(env)
    for command in ["echo x > .git/hooks/pre-commit", "cp evil .github/workflows/ci.yml", "echo x >> ~/.bashrc", "rm -rf .kimicode"]:
        decision = bash(p, env, command)
        assert decision.action == "ask" and not decision.rememberable, command
        assert "protected" in decision.reason or "start-up" in decision.reason
    assert bash(p, env, "cat .git/config").action == "allow"  # reading is fine
    assert policy(env, headless=True, yolo=True).decide(BASH, {"command": "rm -rf .git"}, ctx(env)).action == "deny"
    assert policy(env, yolo=True, trusted=True).decide(BASH, {"command": "rm -rf .git"}, ctx(env)).action == "allow"


class FakeSandbox:
    mode = "workspace-write"


def test_sandbox_in_a_trusted_folder_runs_commands_unasked_but_escalation_asks(env) -> None:
    p = policy(env, trusted=True, sandbox=FakeSandbox())
    assert p.decide(BASH, {"command": "touch X && make"}, ctx(env)).action == "allow"
    escalated = p.decide(BASH, {"command": "curl https://pypi.org", "escalate": "needs the network"}, ctx(env))
    assert escalated.action == "ask" and not escalated.rememberable and "needs the network" in escalated.reason
    # -y does not approve leaving the sandbox; --allow-escalation does
    assert policy(env, trusted=True, sandbox=FakeSandbox(), yolo=True).decide(
        BASH, {"command": "curl x", "escalate": "network"}, ctx(env)
    ).action == "ask"
    assert policy(env, trusted=True, sandbox=FakeSandbox(), yolo=True, allow_escalation=True).decide(
        BASH, {"command": "curl x", "escalate": "network"}, ctx(env)
    ).action == "allow"
    untrusted = policy(env, sandbox=FakeSandbox())
    assert untrusted.decide(BASH, {"command": "touch X"}, ctx(env)).action == "ask"
    off = FakeSandbox()
    off.mode = "off"
    assert policy(env, trusted=True, sandbox=off).decide(BASH, {"command": "touch X"}, ctx(env)).action == "ask"
    denied = policy(env, trusted=True, sandbox=FakeSandbox(), rules=[("deny", "bash(rm *)", "user config")])
    assert denied.decide(BASH, {"command": "rm -rf x"}, ctx(env)).action == "deny"


# -- protected paths ------------------------------------------------------------------------------------


PROTECTED = [".kimicode/config.toml", ".git/hooks/pre-commit", ".github/workflows/x.yml", ".mcp.json", ".vscode/settings.json", "~/.bashrc"]


@pytest.mark.parametrize("path", PROTECTED)
def test_protected_writes_ask_every_time(env, path: str) -> None:
    p = policy(env)
    p.remember(CREATE, {"path": "notes.md", "content": ""}, ctx(env))
    assert p.decide(CREATE, {"path": "notes.md", "content": ""}, ctx(env)).action == "allow"
    decision = p.decide(CREATE, {"path": path, "content": "x"}, ctx(env))
    assert decision.action == "ask" and not decision.rememberable
    p.remember(CREATE, {"path": path, "content": "x"}, ctx(env))
    assert p.decide(CREATE, {"path": path, "content": "x"}, ctx(env)).action == "ask"
    assert policy(env, headless=True).decide(CREATE, {"path": path, "content": "x"}, ctx(env)).action == "deny"
    assert policy(env, headless=True, yolo=True).decide(CREATE, {"path": path, "content": "x"}, ctx(env)).action == "deny"
    trusted = policy(env, headless=True, yolo=True, trusted=True)
    # a trusted folder with -y may change its own settings, never the user's start-up files
    expected = "deny" if path.startswith("~/") else "allow"
    assert trusted.decide(CREATE, {"path": path, "content": "x"}, ctx(env)).action == expected


def test_a_symlink_into_a_protected_folder_is_protected(env) -> None:
    (env["ws"] / ".git" / "hooks").mkdir(parents=True)
    (env["ws"] / "innocent").symlink_to(env["ws"] / ".git" / "hooks")
    decision = policy(env, yolo=True).decide(CREATE, {"path": "innocent/pre-commit", "content": "x"}, ctx(env))
    assert decision.action == "ask" and ".git" in decision.reason


# -- reads ----------------------------------------------------------------------------------------------


def test_secret_paths_are_denied_even_under_yolo(env) -> None:
    (env["ws"] / "key").symlink_to(env["user"] / ".ssh" / "id_rsa")
    (env["ws"] / ".env").write_text("TOKEN=1")
    for p in (policy(env), policy(env, yolo=True), policy(env, headless=True)):
        for path in ["~/.ssh/id_rsa", str(env["kimi"] / "config.toml"), ".env", "key", "sub/.env.local"]:
            decision = p.decide(VIEW, {"path": path}, ctx(env))
            assert decision.action == "deny", (path, decision)
            assert "secret" in decision.reason


def test_an_allow_rule_opens_a_secret_path(env) -> None:
    p = policy(env, headless=True, rules=[("allow", "view(~/.ssh/**)", "user config")])
    assert p.decide(VIEW, {"path": "~/.ssh/id_rsa"}, ctx(env)).action == "allow"
    assert p.decide(VIEW, {"path": ".env"}, ctx(env)).action == "deny"


def test_reads_outside_the_workspace_ask_or_are_refused_headless(env) -> None:
    outside = env["tmp"] / "elsewhere.txt"
    outside.write_text("x")
    assert policy(env).decide(VIEW, {"path": "README"}, ctx(env)).action == "allow"
    p = policy(env)
    assert p.decide(VIEW, {"path": str(outside)}, ctx(env)).action == "ask"
    p.remember(VIEW, {"path": str(outside)}, ctx(env))
    assert p.decide(VIEW, {"path": str(outside)}, ctx(env)).action == "allow"
    assert policy(env, headless=True).decide(VIEW, {"path": str(outside)}, ctx(env)).action == "deny"
    assert policy(env, headless=True, yolo=True).decide(VIEW, {"path": str(outside)}, ctx(env)).action == "allow"
    skills = env["tmp"] / "skills" / "pdf"
    skills.mkdir(parents=True)
    (skills / "SKILL.md").write_text("x")
    with_skills = policy(env, headless=True, skill_dirs=[skills])
    assert with_skills.decide(VIEW, {"path": str(skills / "SKILL.md")}, ctx(env)).action == "allow"


# -- screenshots ----------------------------------------------------------------------------------------


def test_screenshot_of_a_remote_page_asks_local_ones_run(env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "getaddrinfo", no_name_lookup)  # no name is looked up: nothing leaves the machine
    p = policy(env, headless=True)
    for target in ["http://127.0.0.1:8000/", "http://localhost:3000/x", "http://[::1]:8080/", "index.html"]:
        assert p.decide(SHOT, {"target": target}, ctx(env)).action == "allow", target
    refused = p.decide(SHOT, {"target": "http://collect.invalid/collect?k=sk-1"}, ctx(env))
    assert refused.action == "deny" and "collect.invalid" in refused.reason
    assert policy(env).decide(SHOT, {"target": "https://example.com/"}, ctx(env)).action == "ask"
    ruled = policy(env, headless=True, rules=[("allow", "screenshot(https://*.example.com/*)", "user config")])
    assert ruled.decide(SHOT, {"target": "https://docs.example.com/page"}, ctx(env)).action == "allow"
    assert ruled.decide(SHOT, {"target": "https://evil.com/?x=.example.com/"}, ctx(env)).action == "deny"
    assert p.decide(SHOT, {"target": str(env["kimi"] / "config.toml")}, ctx(env)).action == "deny"


# -- rules ----------------------------------------------------------------------------------------------


def test_deny_beats_yolo_and_allow_and_ask_beats_allow(env) -> None:
    rules = [("allow", "bash(rm *)", "user config"), ("deny", "bash(rm *)", "project config")]
    decision = policy(env, yolo=True, rules=rules).decide(BASH, {"command": "ls && rm -rf /"}, ctx(env))
    assert decision.action == "deny" and "bash(rm *)" in decision.reason and "project config" in decision.reason
    for wrapped in ["sudo rm -rf /", "find . -exec rm {} +", "/bin/rm -f x", "timeout 5 rm x"]:
        assert policy(env, yolo=True, rules=rules).decide(BASH, {"command": wrapped}, ctx(env)).action == "deny", wrapped
    asked = policy(env, rules=[("allow", "bash(git push *)", "user config"), ("ask", "bash(git push *)", "user config")])
    decision = asked.decide(BASH, {"command": "git push origin main"}, ctx(env))
    assert decision.action == "ask" and not decision.rememberable


def test_allow_rule_lets_headless_run_a_command(env) -> None:
    p = policy(env, headless=True, rules=[("allow", "bash(npm test *)", "user config")])
    assert p.decide(BASH, {"command": "npm test -- -k x"}, ctx(env)).action == "allow"
    assert p.decide(BASH, {"command": "npm test"}, ctx(env)).action == "allow"
    assert p.decide(BASH, {"command": "npm test && npm publish"}, ctx(env)).action == "deny"


def test_mcp_rules_and_read_only_hints(env) -> None:
    p = policy(env, headless=True)
    assert p.decide(McpRead(), {}, ctx(env)).action == "allow"
    assert p.decide(McpWrite(), {}, ctx(env)).action == "deny"
    assert policy(env, headless=True, rules=[("allow", "mcp__srv__*", "user config")]).decide(McpWrite(), {}, ctx(env)).action == "allow"
    assert policy(env, rules=[("deny", "mcp__srv__*", "user config")]).decide(McpRead(), {}, ctx(env)).action == "deny"
    interactive = policy(env)
    assert interactive.decide(McpWrite(), {}, ctx(env)).action == "ask"
    interactive.remember(McpWrite(), {}, ctx(env))
    assert interactive.decide(McpWrite(), {}, ctx(env)).action == "allow"


def test_rule_syntax() -> None:
    rule = parse_rule("bash(npm test *)", "allow", "user config")
    assert (rule.tool, rule.pattern) == ("bash", "npm test *")
    assert parse_rule("mcp__github__*").pattern is None
    assert parse_rule("bash(*)").pattern is None
    with pytest.raises(RuleError):
        parse_rule("bash(oops", "allow")
    with pytest.raises(RuleError):
        parse_rule("bash(x)", "maybe")


def test_decisions_read_and_serialize_as_the_plain_words(env) -> None:
    """The action is an enum; what the user reads and any JSON made from a decision stay the plain words."""
    p = policy(env, rules=[("deny", "bash(rm *)", "project config")])
    decision = bash(p, env, "rm -rf build")
    assert decision.action is Action.DENY and decision.action == "deny"
    assert decision.reason == "denied by the rule deny bash(rm *) (project config)"
    assert json.dumps({"action": decision.action}) == '{"action": "deny"}'
    assert f"{bash(p, env, 'ls').action}" == "allow"
    assert [f"{r.kind}" for r in p.listing()] == ["deny"]


def test_session_answers_are_listed_as_rules(env) -> None:
    p = policy(env, rules=[("deny", "bash(rm *)", "user config")])
    p.remember(BASH, {"command": "pytest -q tests && make"}, ctx(env))
    listed = [(r.kind, r.text, r.source) for r in p.listing()]
    assert listed == [
        ("deny", "bash(rm *)", "user config"),
        ("allow", "bash(pytest *)", "this session"),
        ("allow", "bash(make *)", "this session"),
    ]


def test_keep_rule_saves_through_the_trust_store(env) -> None:
    from kimicode.security import trust

    p = policy(env)
    saved = p.keep_rule(BASH, {"command": "pytest -q"}, ctx(env))
    assert saved == "bash(pytest *)"
    assert trust.TrustStore(env["kimi"]).rules(env["ws"]) == ["bash(pytest *)"]
    assert bash(p, env, "pytest -x").action == "allow"


def test_home_is_read_from_the_environment(env) -> None:
    assert os.path.expanduser("~") == str(env["user"])


def test_a_screenshot_reference_is_a_read_of_that_file(env) -> None:
    """`reference` sends the image's pixels to the model: it is judged like a `view` of the same path."""
    page = {"target": "index.html"}
    p = policy(env, headless=True)
    (env["user"] / ".ssh" / "design.png").write_bytes(b"\x89PNG")
    for secret in [str(env["user"] / ".ssh" / "design.png"), "~/.ssh/id_rsa", str(env["kimi"] / "config.toml")]:
        decision = p.decide(SHOT, {**page, "reference": secret}, ctx(env))
        assert decision.action == "deny", secret
    outside = env["tmp"] / "elsewhere.png"
    outside.write_bytes(b"\x89PNG")
    assert p.decide(SHOT, {**page, "reference": str(outside)}, ctx(env)).action == "deny"
    assert policy(env).decide(SHOT, {**page, "reference": str(outside)}, ctx(env)).action == "ask"
    (env["ws"] / "design.png").write_bytes(b"\x89PNG")
    assert p.decide(SHOT, {**page, "reference": "design.png"}, ctx(env)).action == "allow"
    # A remote target still asks even when the reference is harmless.
    assert p.decide(SHOT, {"target": "https://example.com/", "reference": "design.png"}, ctx(env)).action == "deny"


def test_a_process_environment_is_a_secret_path(env) -> None:
    """kimicode's own environment holds the API key; /proc/<pid>/environ of the parent would hand it over."""
    p = policy(env, headless=True)
    for path in ["/proc/self/environ", f"/proc/{os.getpid()}/environ", "/proc/1/task/1/environ"]:
        assert p.decide(VIEW, {"path": path}, ctx(env)).action == "deny", path
    for command in ["cat /proc/$PPID/environ", f"cat /proc/{os.getppid()}/environ", "strings /proc/self/environ"]:
        assert bash(p, env, command).action == "deny", command
