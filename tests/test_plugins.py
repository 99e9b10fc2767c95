"""Plugins through the real CLI and the scripted model server: installed from a local git repository, its
command, agent, hook, skill and MCP server working in one run; disabled, none of them load; marketplaces;
bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kimicode.extensions.plugin_index import index_path
from tests.clirun import run_cli, write_home_config
from tests.fake_llm import FakeLLM, RecordedRequest, Reply, ToolCall
from tests.mcp_servers.fixtures import DEMO_SERVER
from tests.swarm_script import is_sub_agent, main_requests, steps_done, sub_requests

SETTINGS = "retry_base_delay = 0.01\nmax_retries = 1\nmcp_startup_wait = 30\n"
HELPER = "---\nname: helper\ndescription: Helps with demos\ntools: Read\n---\nYou are HELPER-3.\n"
SKILL = "---\nname: demo-skill\ndescription: Shows how demos are done\n---\nDo demos.\n"
HOOKS = {"hooks": {"PostToolUse": [{"matcher": "Write", "hooks": [
    {"type": "command", "command": "${CLAUDE_PLUGIN_ROOT}/hooks/touch.sh"}]}]}}


def make_plugin(folder: Path, name: str = "demo") -> Path:
    """A plugin in Claude Code's layout bringing a command, an agent, a hook, a skill and an MCP server."""
    (folder / ".claude-plugin").mkdir(parents=True)
    manifest = {"name": name, "version": "1.2.0", "description": "Demo plugin"}
    (folder / ".claude-plugin" / "plugin.json").write_text(json.dumps(manifest))
    (folder / "commands" / "ns").mkdir(parents=True)
    (folder / "commands" / "ns" / "review.md").write_text("Review $ARGUMENTS\n")
    (folder / "agents").mkdir()
    (folder / "agents" / "helper.md").write_text(HELPER)
    (folder / "skills" / "demo-skill").mkdir(parents=True)
    (folder / "skills" / "demo-skill" / "SKILL.md").write_text(SKILL)
    (folder / "hooks").mkdir()
    (folder / "hooks" / "hooks.json").write_text(json.dumps(HOOKS))
    (folder / "hooks" / "touch.sh").write_text("#!/bin/sh\ntouch hooked\n")
    (folder / "hooks" / "touch.sh").chmod(0o755)
    shutil.copy(DEMO_SERVER, folder / "server.py")
    server = {"command": sys.executable, "args": ["${CLAUDE_PLUGIN_ROOT}/server.py", "--name", "plugin-demo"]}
    (folder / ".mcp.json").write_text(json.dumps({"mcpServers": {"demo": server}}))
    return folder


def git_repository(folder: Path) -> str:
    def git(*args: str) -> None:
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=folder, check=True,
                       capture_output=True)

    git("init", "-q")
    git("add", "-A")
    git("commit", "-q", "-m", "plugin")
    return folder.as_uri()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "kimihome"
    write_home_config(home, SETTINGS)
    return home


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    workspace = tmp_path / "proj"
    workspace.mkdir()
    return workspace


def cli(args: list[str], home: Path, cwd: Path, fake_llm: FakeLLM | None = None) -> subprocess.CompletedProcess[str]:
    return run_cli(args, home=home, cwd=cwd, base_url=fake_llm.base_url if fake_llm else None, timeout=90)


def responder(request: RecordedRequest) -> Reply:
    if is_sub_agent(request):
        return Reply(tool_calls=[ToolCall("submit", {"summary": "helped"})])
    if steps_done(request) == 0:
        return Reply(tool_calls=[
            ToolCall("mcp__demo__echo", {"text": "from the plugin"}),
            ToolCall("createfile", {"path": "notes.txt", "content": "x\n"}),  # its PostToolUse hook on Write
            ToolCall("spawn_agents", {"agents": [{"role": "h", "task": "Help.", "agent": "helper"}]}),
        ])
    return Reply(content="done")


def test_a_plugin_from_a_git_repository_brings_its_agent_skill_and_server_until_disabled(
    fake_llm: FakeLLM, home: Path, workspace: Path, tmp_path: Path
) -> None:
    url = git_repository(make_plugin(tmp_path / "src"))
    proc = cli(["plugin", "install", url], home, workspace)
    assert proc.returncode == 0, proc.stderr
    root = home / "plugins" / "demo"
    assert f"installed plugin demo 1.2.0 into {root} (enabled)" in proc.stdout
    assert (root / "agents" / "helper.md").is_file() and not (root / ".git").exists()
    assert not (workspace / "hooked").exists()  # nothing of it ran at install

    listing = cli(["plugin", "list"], home, workspace).stdout
    assert f"demo 1.2.0 — Demo plugin [enabled] from {url}" in listing
    for line in ("commands: /demo:ns:review", "agents: helper", "skills: demo-skill", "hooks: PostToolUse",
                 "mcp servers: demo"):
        assert line in listing

    fake_llm.responder = responder
    # an untrusted folder: installing the plugin was the act of trust
    proc = cli(["-p", "-y", "--mode", "swarm", "/demo:ns:review src"], home, workspace, fake_llm)
    assert proc.returncode == 0, proc.stderr
    first, second = main_requests(fake_llm.chat_requests)[:2]
    assert first.messages[-1]["content"].rstrip() == "Review src"  # its command
    assert (workspace / "hooked").exists()  # its hook ran after the write
    prompt = first.messages[0]["content"]
    assert "demo-skill — Shows how demos are done" in prompt and "- helper — Helps with demos" in prompt
    assert "mcp__demo__echo" in first.tool_names()
    assert second.tool_results()[0]["content"] == "from the plugin"
    (sub,) = sub_requests(fake_llm.chat_requests)
    assert "You are HELPER-3." in sub.messages[0]["content"] and set(sub.tool_names()) == {"view", "submit"}

    assert cli(["plugin", "disable", "demo"], home, workspace).stdout == "plugin demo disabled\n"
    assert "[disabled]" in cli(["plugin", "list"], home, workspace).stdout
    before = len(fake_llm.chat_requests)
    fake_llm.responder = lambda request: (
        Reply(tool_calls=[ToolCall("createfile", {"path": "more.txt", "content": "x\n"})])
        if steps_done(request) == 0 else Reply(content="plain")
    )
    (workspace / "hooked").unlink()
    proc = cli(["-p", "-y", "--mode", "swarm", "/demo:ns:review src"], home, workspace, fake_llm)
    assert proc.returncode == 0, proc.stderr
    first = fake_llm.chat_requests[before]
    assert first.messages[-1]["content"] == "/demo:ns:review src"  # no such command: sent as written
    assert (workspace / "more.txt").exists() and not (workspace / "hooked").exists()  # written, and no hook ran
    assert "demo-skill" not in first.messages[0]["content"] and "helper" not in first.messages[0]["content"]
    assert not [name for name in first.tool_names() if name.startswith("mcp__")]
    proc = cli(["--agent", "helper", "-p", "x"], home, workspace, fake_llm)
    assert proc.returncode == 2 and "no agent named 'helper'" in proc.stderr

    assert cli(["plugin", "remove", "demo"], home, workspace).returncode == 0
    assert not root.exists() and json.loads(index_path(home).read_text()) == {"plugins": []}


def test_a_marketplace_lists_plugins_to_install_by_name(home: Path, workspace: Path, tmp_path: Path) -> None:
    market = tmp_path / "market"
    two = make_plugin(market / "plugins" / "two", name="two")
    manifest = json.loads((two / ".claude-plugin" / "plugin.json").read_text())
    manifest["mcpServers"] = {"inline": {"command": "${KIMICODE_PLUGIN_ROOT}/serve"}}
    (two / ".claude-plugin" / "plugin.json").write_text(json.dumps(manifest))
    (market / ".claude-plugin").mkdir()
    listing = {"name": "team", "plugins": [
        {"name": "two", "source": "./plugins/two", "description": "The second"},
        {"name": "escape", "source": "../../outside"},
    ]}
    (market / ".claude-plugin" / "marketplace.json").write_text(json.dumps(listing))
    proc = cli(["plugin", "marketplace", "add", str(market)], home, workspace)
    assert proc.returncode == 0, proc.stderr
    assert "added marketplace team (2 plugins)" in proc.stdout and "two@team — The second" in proc.stdout
    proc = cli(["plugin", "install", "two@team"], home, workspace)
    assert proc.returncode == 0, proc.stderr
    listing = cli(["plugin", "list"], home, workspace).stdout
    assert "[enabled] from two@team" in listing and "mcp servers: demo, inline" in listing
    from kimicode.discovery.mcp_configs import find_plugin_mcp_servers

    servers = {server.name: server for server in find_plugin_mcp_servers(home).servers}
    assert servers["inline"].command == str(home / "plugins" / "two" / "serve")
    assert servers["demo"].args[0] == str(home / "plugins" / "two" / "server.py")
    proc = cli(["plugin", "install", "escape@team"], home, workspace)
    assert proc.returncode == 1 and "outside the marketplace" in proc.stderr


def test_bad_installs_say_one_line_and_change_nothing(home: Path, workspace: Path, tmp_path: Path) -> None:
    plugin = make_plugin(tmp_path / "src")
    (plugin / "skills" / "leak").symlink_to("/etc")
    assert cli(["plugin", "install", str(plugin)], home, workspace).returncode == 0
    assert not (home / "plugins" / "demo" / "skills" / "leak").exists()  # links are not copied
    reserved = make_plugin(tmp_path / "reserved", name="marketplaces")
    for args, said in (
        (["plugin", "install", str(plugin)], "a plugin named 'demo' is installed already"),
        (["plugin", "install", str(tmp_path / "nowhere")], "is neither a folder nor a git URL"),
        (["plugin", "install", str(workspace)], "is not a plugin: no .kimicode-plugin/plugin.json"),
        (["plugin", "enable", "ghost"], "no plugin named 'ghost' is installed (installed: demo)"),
        (["plugin", "install", "x@nomarket"], "no marketplace named 'nomarket'"),
        (["plugin", "install", str(reserved)], "may not be named 'marketplaces'"),
    ):
        proc = cli(args, home, workspace)
        assert proc.returncode == 1, args
        assert len(proc.stderr.strip().splitlines()) == 1 and said in proc.stderr, proc.stderr
    assert sorted(p.name for p in (home / "plugins").iterdir()) == ["demo", "plugins.json"]  # no staging left


def test_cloning_a_plugin_runs_no_git_hook(home: Path, workspace: Path, tmp_path: Path) -> None:
    """A post-checkout hook the user's git config points every clone at does not run for a plugin install."""
    marker = tmp_path / "hook-ran"
    hooks = tmp_path / "githooks"
    hooks.mkdir()
    (hooks / "post-checkout").write_text(f"#!/bin/sh\ntouch {marker}\n")
    (hooks / "post-checkout").chmod(0o755)
    userhome = home.parent / "userhome"  # HOME of the CLI runs (tests/clirun.py)
    userhome.mkdir(parents=True, exist_ok=True)
    (userhome / ".gitconfig").write_text(f"[core]\n\thooksPath = {hooks}\n")
    url = git_repository(make_plugin(tmp_path / "src"))
    proc = cli(["plugin", "install", url], home, workspace)
    assert proc.returncode == 0, proc.stderr
    assert (home / "plugins" / "demo" / ".claude-plugin" / "plugin.json").is_file()
    assert not marker.exists()
