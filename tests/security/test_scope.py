"""What `-y` covers, decided by the real `Policy.decide`: the workspace (and `--add-dir` folders), never
kimicode's home, other agents' settings, shell start-up files, folders on PATH or git config files; and
never an escalation out of the sandbox without `--allow-escalation`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from kimicode.security import paths as P
from kimicode.security.policy import Policy
from kimicode.tools.base import ToolContext
from kimicode.tools.bash import BashTool
from kimicode.tools.createfile import CreateFileTool
from kimicode.tools.insert import InsertTool
from kimicode.tools.strreplace import StrReplaceTool
from kimicode.tools.view import ViewTool

BASH, VIEW, CREATE, INSERT, REPLACE = BashTool(), ViewTool(), CreateFileTool(), InsertTool(), StrReplaceTool()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    user = tmp_path / "userhome"
    (user / ".local" / "bin").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(user))
    monkeypatch.setenv("PATH", f"{user / '.local' / 'bin'}{os.pathsep}{os.environ.get('PATH', '/usr/bin')}")
    kimi = tmp_path / "kimihome"
    (kimi / "sessions").mkdir(parents=True)
    ws = tmp_path / "proj"
    ws.mkdir()
    other = tmp_path / "other"
    other.mkdir()
    return {"user": user, "kimi": kimi, "ws": ws, "other": other}


def policy(env: dict[str, Path], workspace: Path | None = None, **kw: Any) -> Policy:
    kw.setdefault("yolo", True)
    kw.setdefault("headless", True)
    return Policy(workspace=workspace or env["ws"], home=env["kimi"], **kw)


def create(p: Policy, path: Path | str, workspace: Path) -> Any:
    return p.decide(CREATE, {"path": str(path), "content": "x"}, ToolContext(workspace=workspace))


def guarded_paths(env: dict[str, Path]) -> list[Path]:
    user, kimi = env["user"], env["kimi"]
    return [
        kimi / "mcp.json",
        kimi / "skills" / "x" / "SKILL.md",
        kimi / "sessions" / "old.jsonl",
        kimi / "config.toml",
        user / ".config" / "git" / "config",
        user / ".gitconfig",
        user / ".local" / "bin" / "git",
        user / ".bash_aliases",
        user / ".bashrc",
        user / ".zshenv",
        user / ".config" / "fish" / "config.fish",
        user / ".claude" / "skills" / "x" / "SKILL.md",
        user / ".codex" / "config.toml",
        user / ".gemini" / "settings.json",
        user / ".kimi" / "config.toml",
        env["other"] / "repo" / ".git" / "config",
    ]


def test_yolo_alone_never_writes_outside_the_workspace(env) -> None:
    p = policy(env)
    for path in [*guarded_paths(env), env["other"] / "notes.txt"]:
        decision = create(p, path, env["ws"])
        assert decision.action == "deny", path
        assert not decision.rememberable, path
    # the same through the other editing tools
    for tool, args in [
        (INSERT, {"path": str(env["kimi"] / "sessions" / "old.jsonl"), "insert_line": 1, "new_str": "{}"}),
        (REPLACE, {"path": str(env["user"] / ".bash_aliases"), "old_str": "a", "new_str": "b"}),
    ]:
        assert p.decide(tool, args, ToolContext(workspace=env["ws"])).action == "deny"
    # inside the workspace -y still approves
    assert create(p, env["ws"] / "src" / "a.py", env["ws"]).action == "allow"


def test_trust_does_not_widen_yolo_to_start_up_files_or_git_config(env) -> None:
    p = policy(env, trusted=True)
    for path in [env["user"] / ".bashrc", env["ws"] / ".git" / "config", env["kimi"] / "mcp.json"]:
        assert create(p, path, env["ws"]).action == "deny", path


def test_interactive_yolo_asks_for_guarded_paths_every_time(env) -> None:
    p = policy(env, headless=False)
    decision = create(p, env["user"] / ".bash_aliases", env["ws"])
    assert decision.action == "ask" and not decision.rememberable


def test_the_refusal_says_how_to_allow_it(env) -> None:
    reason = create(policy(env), env["other"] / "notes.txt", env["ws"]).reason
    assert "--add-dir" in reason
    reason = create(policy(env), env["user"] / ".bashrc", env["ws"]).reason
    assert "start-up" in reason and "createfile(" in reason


def test_add_dir_opens_an_ordinary_folder_but_not_what_is_guarded_inside_it(env) -> None:
    p = policy(env, add_dirs=[env["other"], env["user"]])
    assert create(p, env["other"] / "notes.txt", env["ws"]).action == "allow"
    assert create(p, env["user"] / "notes.txt", env["ws"]).action == "allow"
    for path in [env["user"] / ".bashrc", env["user"] / ".config" / "git" / "config", env["user"] / ".local" / "bin" / "git",
                 env["user"] / ".claude" / "x", env["other"] / "repo" / ".git" / "config"]:
        assert create(p, path, env["ws"]).action == "deny", path
    # naming the guarded folder itself opens it
    claude = policy(env, add_dirs=[env["user"] / ".claude"])
    assert create(claude, env["user"] / ".claude" / "skills" / "x" / "SKILL.md", env["ws"]).action == "allow"
    assert create(claude, env["user"] / ".bashrc", env["ws"]).action == "deny"


def test_an_explicit_rule_naming_the_path_opens_it(env) -> None:
    p = policy(env, rules=[("allow", "createfile(~/.bash_aliases)", "user config")])
    assert create(p, env["user"] / ".bash_aliases", env["ws"]).action == "allow"
    assert create(p, env["user"] / ".bashrc", env["ws"]).action == "deny"
    broad = policy(env, rules=[("allow", "createfile", "user config")])
    assert create(broad, env["user"] / ".bash_aliases", env["ws"]).action == "deny"


def test_a_workspace_that_is_the_home_folder_still_guards_its_start_up_files(env) -> None:
    home = env["user"]
    p = policy(env, workspace=home)
    assert create(p, home / "notes.txt", home).action == "allow"
    for path in [home / ".bashrc", home / ".bash_aliases", home / ".config" / "git" / "config", home / ".gitconfig",
                 home / ".local" / "bin" / "git", home / ".claude" / "settings.json"]:
        assert create(p, path, home).action == "deny", path


def test_a_workspace_inside_a_guarded_folder_stays_writable(env) -> None:
    nvim = env["user"] / ".config" / "nvim"
    nvim.mkdir(parents=True)
    p = policy(env, workspace=nvim)
    assert create(p, nvim / "init.lua", nvim).action == "allow"
    assert create(p, env["user"] / ".config" / "git" / "config", nvim).action == "deny"
    assert create(p, nvim / ".git" / "config", nvim).action == "deny"


def test_a_symlink_in_the_workspace_to_a_guarded_file_is_guarded(env) -> None:
    (env["user"] / ".bash_aliases").write_text("")
    (env["ws"] / "aliases").symlink_to(env["user"] / ".bash_aliases")
    assert create(policy(env), env["ws"] / "aliases", env["ws"]).action == "deny"


# -- shell commands with known write targets -----------------------------------------------------------


class Sandbox:
    def __init__(self, mode: str) -> None:
        self.mode = mode


def bash(p: Policy, env: dict[str, Path], command: str, **extra: Any) -> Any:
    return p.decide(BASH, {"command": command, **extra}, ToolContext(workspace=env["ws"]))


@pytest.mark.parametrize("sandbox", ["off", "workspace-write"])
def test_yolo_commands_writing_guarded_paths_are_refused(env, sandbox: str) -> None:
    p = policy(env, sandbox=Sandbox(sandbox), trusted=True)
    for command in [
        "echo 'alias ls=x' >> ~/.bash_aliases",
        f"cp evil {env['user']}/.local/bin/git",
        "tee -a ~/.config/git/config < x",
        f"echo '{{}}' > {env['kimi']}/mcp.json",
        f"echo forged >> {env['kimi']}/sessions/old.jsonl",
        "git config --global alias.st '!touch X'",
        "git config core.fsmonitor 'touch X'",
    ]:
        decision = bash(p, env, command)
        assert decision.action == "deny", command
    assert bash(p, env, "git config --get user.name").action == "allow"
    assert bash(p, env, "echo ok > out.txt").action == "allow"


@pytest.mark.parametrize("form", ["echo x > {t}", "cp a {t}", "tee -a {t} < a", "rm -f {t}", "dd if=a of={t}", "touch {t}"])
def test_yolo_without_a_sandbox_refuses_known_writes_outside_the_workspace(env, form: str) -> None:
    command = form.format(t=env["other"] / "f")
    assert bash(policy(env, sandbox=Sandbox("off")), env, command).action == "deny"
    assert bash(policy(env, sandbox=Sandbox("off"), add_dirs=[env["other"]]), env, command).action == "allow"
    # inside the sandbox the same command cannot write there: -y runs it
    assert bash(policy(env, sandbox=Sandbox("workspace-write"), trusted=True), env, command).action == "allow"
    # reading from outside is no write
    assert bash(policy(env, sandbox=Sandbox("off")), env, f"cp {env['other'] / 'f'} here").action == "allow"


# -- escalation ------------------------------------------------------------------------------------------


def test_escalation_needs_allow_escalation_not_yolo(env) -> None:
    p = policy(env, sandbox=Sandbox("workspace-write"), trusted=True)
    decision = bash(p, env, "touch out", escalate="write outside")
    assert decision.action == "deny" and "--allow-escalation" in decision.reason
    allowed = policy(env, sandbox=Sandbox("workspace-write"), trusted=True, allow_escalation=True)
    assert bash(allowed, env, "touch out", escalate="write outside").action == "allow"
    # the escalation opt-in does not open guarded paths
    assert bash(allowed, env, "echo x >> ~/.bashrc", escalate="write outside").action == "deny"
    # interactive: asked every time
    asks = policy(env, sandbox=Sandbox("workspace-write"), headless=False)
    decision = bash(asks, env, "touch out", escalate="write outside")
    assert decision.action == "ask" and not decision.rememberable


# -- secret paths: one list --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", [".git-credentials", ".kube/config", ".npmrc", ".pypirc", ".docker/config.json", ".aws/credentials",
             ".config/gcloud/credentials.db", ".azure/accessTokens.json", ".netrc", ".ssh/id_rsa", ".gnupg/x"]
)
def test_view_of_a_secret_file_is_refused_under_yolo(env, name: str) -> None:
    path = env["user"] / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("secret")
    decision = policy(env).decide(VIEW, {"path": str(path)}, ToolContext(workspace=env["ws"]))
    assert decision.action == "deny" and "secret" in decision.reason


def test_the_sandbox_hides_the_same_list(env) -> None:
    from kimicode.security.sandbox import Sandbox as RealSandbox

    for i, name in enumerate(P.HOME_SECRETS):
        path = env["user"] / name
        if i % 2:  # folders and files alike: the sandbox empties one and blanks the other
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("s")
    box = RealSandbox("workspace-write", "bwrap", False, workspace=env["ws"], home=env["kimi"])
    dirs, files = box._secrets()
    hidden = {str(p) for p in [*dirs, *files]}
    for name in P.HOME_SECRETS:
        assert str(env["user"] / name) in hidden, name


def test_at_path_attachments_leave_secret_files_out(env) -> None:
    from kimicode.frontends.common.media import image_mentions
    from kimicode.frontends.repl.next_message import attach_mentions

    (env["user"] / ".npmrc").write_text("//registry/:_authToken=TOPSECRET\n")
    (env["user"] / ".ssh").mkdir()
    (env["user"] / ".ssh" / "key.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (env["ws"] / "notes").symlink_to(env["user"] / ".npmrc")
    (env["ws"] / "plain.txt").write_text("ordinary\n")
    text, attached = attach_mentions(f"see @notes @{env['user']}/.npmrc and @plain.txt", env["ws"])
    assert attached == ["plain.txt"] and "TOPSECRET" not in text and "ordinary" in text
    assert image_mentions("@../userhome/.ssh/key.png", env["ws"]) == []


def test_a_projects_add_dirs_and_escalation_wait_for_trust(env) -> None:
    from kimicode.config import load_config

    (env["ws"] / ".kimicode").mkdir()
    (env["ws"] / ".kimicode" / "config.toml").write_text(f'add_dirs = ["{env["user"]}"]\nescalation = "auto"\n')
    environ = {"KIMICODE_HOME": str(env["kimi"]), "HOME": str(env["user"])}
    untrusted = load_config(work_dir=env["ws"], env=environ)
    assert untrusted.add_dirs == [] and untrusted.escalation == "ask"
    assert any("add_dirs" in line for line in untrusted.ignored_project_settings)
    assert any("escalation" in line for line in untrusted.ignored_project_settings)
    trusted = load_config(work_dir=env["ws"], env=environ, flags={"trust": True, "add_dirs": [env["other"]]})
    assert trusted.add_dirs == [env["user"], env["other"]] and trusted.escalation == "auto"


def test_only_a_rule_naming_the_guarded_place_opens_it(env) -> None:
    broad = policy(env, rules=[("allow", "edit(~/**)", "user config"), ("allow", "bash(echo *)", "user config")])
    assert create(broad, env["user"] / ".bashrc", env["ws"]).action == "deny"
    assert create(broad, env["user"] / "notes.txt", env["ws"]).action == "allow"  # the rule covers the rest of ~
    assert bash(broad, env, "echo x >> ~/.bashrc").action == "deny"
    named = policy(env, rules=[("allow", "edit(~/.claude/**)", "user config"), ("allow", "bash(echo x >> ~/.bashrc)", "user config")])
    assert create(named, env["user"] / ".claude" / "skills" / "x" / "SKILL.md", env["ws"]).action == "allow"
    assert bash(named, env, "echo x >> ~/.bashrc").action == "allow"
    assert bash(named, env, "echo y >> ~/.bashrc").action == "deny"
