"""The trust fingerprint covers the bytes that are loaded: a project MCP file that appears between the
fingerprint and the load (created and removed in a loop by an attacker) must not start a server. The file
appears at the exact point between the two by a hook loaded into the CLI process (sitecustomize)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.clirun import REPO, run_cli, write_home_config
from tests.fake_llm import FakeLLM, Reply
from tests.mcp_servers.fixtures import live_processes_with, stdio_config

# Runs in the CLI process: right after the trust decision, the project's .mcp.json appears.
HOOK = '''
import os
_file, _text = os.environ.get("WRITE_AFTER_TRUST", ""), os.environ.get("WRITE_TEXT", "")
if _file:
    from kimicode.security import trust as _trust
    _is_trusted = _trust.TrustStore.is_trusted
    def is_trusted(self, workspace, *args, **kw):
        answer = _is_trusted(self, workspace, *args, **kw)
        with open(_file, "w") as f:
            f.write(_text)
        return answer
    _trust.TrustStore.is_trusted = is_trusted
'''


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "kimihome"
    write_home_config(home, "retry_base_delay = 0.01\nmax_retries = 1\nmcp_startup_wait = 30\n")
    return home


def test_an_mcp_file_that_appears_after_the_trust_check_is_not_loaded(
    fake_llm: FakeLLM, home: Path, workspace: Path
) -> None:
    trusted = run_cli(["trust"], home=home, cwd=workspace)
    assert trusted.returncode == 0 and "trusted" in trusted.stdout, trusted.stderr
    server = stdio_config("proj")
    marker = server.args[server.args.index("--name") + 1]
    text = json.dumps({"mcpServers": {"proj": {"command": server.command, "args": server.args}}})
    hook = home.parent / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(HOOK)
    env = {
        "PYTHONPATH": f"{hook}{os.pathsep}{REPO}",
        "WRITE_AFTER_TRUST": str(workspace / ".mcp.json"),
        "WRITE_TEXT": text,
    }
    fake_llm.script(Reply(content="done"))
    proc = run_cli(["-p", "hi"], home=home, cwd=workspace, base_url=fake_llm.base_url, env_extra=env, timeout=90)
    assert proc.returncode == 0, proc.stderr
    assert (workspace / ".mcp.json").read_text() == text  # it did appear
    assert not any(name.startswith("mcp__proj__") for name in fake_llm.chat_requests[0].tool_names())
    assert live_processes_with(marker) == []


# Runs in the CLI process: right after `kimicode trust` has listed what it trusts, the .mcp.json appears.
SHOWN_HOOK = '''
import os
_file, _text = os.environ.get("WRITE_AFTER_SHOWN", ""), os.environ.get("WRITE_TEXT", "")
if _file:
    import kimicode.config as _config
    _widening = _config.widening_settings
    def widening_settings(*args, **kw):
        lines = _widening(*args, **kw)
        with open(_file, "w") as f:
            f.write(_text)
        return lines
    _config.widening_settings = widening_settings
'''


def test_trust_covers_what_was_shown_not_what_appeared_after(fake_llm: FakeLLM, home: Path, workspace: Path) -> None:
    server = stdio_config("proj")
    marker = server.args[server.args.index("--name") + 1]
    text = json.dumps({"mcpServers": {"proj": {"command": server.command, "args": server.args}}})
    hook = home.parent / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(SHOWN_HOOK)
    env = {
        "PYTHONPATH": f"{hook}{os.pathsep}{REPO}",
        "WRITE_AFTER_SHOWN": str(workspace / ".mcp.json"),
        "WRITE_TEXT": text,
    }
    trusted = run_cli(["trust"], home=home, cwd=workspace, env_extra=env)
    assert trusted.returncode == 0, trusted.stderr
    assert "MCP server proj" not in trusted.stdout  # the user was shown nothing of it
    assert (workspace / ".mcp.json").read_text() == text
    fake_llm.script(Reply(content="done"))
    proc = run_cli(["-p", "hi"], home=home, cwd=workspace, base_url=fake_llm.base_url, timeout=90)
    assert proc.returncode == 0, proc.stderr
    assert not any(name.startswith("mcp__proj__") for name in fake_llm.chat_requests[0].tool_names())
    assert "not trusted" in proc.stderr
    assert live_processes_with(marker) == []


@pytest.mark.parametrize("name", [".mcp.json", ".kimicode/config.toml"])
def test_a_fifo_among_the_project_files_does_not_hang_the_run(
    fake_llm: FakeLLM, home: Path, workspace: Path, name: str
) -> None:
    (workspace / name).parent.mkdir(exist_ok=True)
    os.mkfifo(workspace / name)
    fake_llm.script(Reply(content="done"))
    proc = run_cli(["-p", "hi"], home=home, cwd=workspace, base_url=fake_llm.base_url, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "done"
