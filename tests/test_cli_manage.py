"""The management commands as a user runs them: `kimicode mcp ...` and `kimicode skills list`."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from kimicode.config import Config
from kimicode.mcp.store import load_servers
from kimicode.manage.mcp_import import first_run_mcp_offer
from tests.clirun import run_cli
from tests.mcp_servers.fixtures import DEMO_SERVER, http_server


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "kimihome"


@pytest.fixture
def user_home(tmp_path: Path) -> Path:
    return tmp_path / "userhome"  # clirun points HOME here


@pytest.fixture
def project(tmp_path: Path) -> Path:
    project = tmp_path / "proj"
    project.mkdir()
    return project


def kimicode(home: Path, cwd: Path, *args: str, stdin: str = ""):
    return run_cli(list(args), home=home, cwd=cwd, stdin=stdin, timeout=90)


def stored(home: Path) -> dict:
    return json.loads((home / "mcp.json").read_text())["mcpServers"]


def write_other_agents(user_home: Path) -> None:
    claude = user_home / ".config" / "Claude" / "claude_desktop_config.json"
    claude.parent.mkdir(parents=True)
    claude.write_text(json.dumps({"mcpServers": {"files": {"command": "npx", "args": ["-y", "server-files", "/tmp"]}}}))
    cursor = user_home / ".cursor" / "mcp.json"
    cursor.parent.mkdir(parents=True)
    cursor.write_text(json.dumps({"mcpServers": {"docs": {"url": "https://docs.example/mcp", "headers": {"X-Key": "${DOCS_KEY}"}}}}))


def test_add_list_remove(home: Path, project: Path) -> None:
    proc = kimicode(home, project, "mcp", "add", "demo", "--", sys.executable, str(DEMO_SERVER), "--name", "x")
    assert proc.returncode == 0, proc.stderr
    proc = kimicode(home, project, "mcp", "add", "web", "--url", "http://127.0.0.1:1/sse", "--header", "Authorization: Bearer ${TOKEN}")
    assert proc.returncode == 0, proc.stderr
    servers = stored(home)
    assert servers["demo"]["command"] == sys.executable
    assert servers["demo"]["args"] == [str(DEMO_SERVER), "--name", "x"]  # options after -- belong to the command
    assert servers["web"] == {
        "type": "sse",
        "url": "http://127.0.0.1:1/sse",
        "headers": {"Authorization": "Bearer ${TOKEN}"},
        "source": "kimicode mcp add",
    }

    proc = kimicode(home, project, "mcp", "list")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split()[:2] == ["demo", "stdio"] and str(DEMO_SERVER) in lines[0]
    assert lines[1].split()[:3] == ["web", "sse", "http://127.0.0.1:1/sse"]

    duplicate = kimicode(home, project, "mcp", "add", "demo", "--", "other")
    assert duplicate.returncode == 2 and "already exists" in duplicate.stderr

    proc = kimicode(home, project, "mcp", "remove", "web")
    assert proc.returncode == 0, proc.stderr
    assert set(stored(home)) == {"demo"}
    missing = kimicode(home, project, "mcp", "remove", "web")
    assert missing.returncode == 2 and "no MCP server named 'web'" in missing.stderr and "demo" in missing.stderr


def test_add_needs_a_command_or_a_url(home: Path, project: Path) -> None:
    neither = kimicode(home, project, "mcp", "add", "x")
    assert neither.returncode == 2 and "--url" in neither.stderr
    both = kimicode(home, project, "mcp", "add", "x", "--url", "http://127.0.0.1:1/mcp", "--", "cmd")
    assert both.returncode == 2
    bad_header = kimicode(home, project, "mcp", "add", "x", "--url", "http://127.0.0.1:1/mcp", "--header", "novalue")
    assert bad_header.returncode == 2 and "K" in bad_header.stderr
    assert not (home / "mcp.json").exists()


def test_list_check_and_test_start_real_servers(home: Path, project: Path) -> None:
    assert kimicode(home, project, "mcp", "add", "demo", "--", sys.executable, str(DEMO_SERVER)).returncode == 0
    assert kimicode(home, project, "mcp", "add", "ghost", "--", "no-such-mcp-binary").returncode == 0
    with http_server() as url:
        assert kimicode(home, project, "mcp", "add", "web", "--url", url).returncode == 0
        proc = kimicode(home, project, "mcp", "list", "--check")
        assert proc.returncode == 0, proc.stderr
        rows = {line.split()[0]: line for line in proc.stdout.splitlines()}
        assert "ready (5 tools)" in rows["demo"] and "ready (5 tools)" in rows["web"]
        assert "failed" in rows["ghost"]
        assert "'ghost'" in proc.stderr and str(home / "logs" / "ghost.log") in proc.stderr

        proc = kimicode(home, project, "mcp", "test", "web")
        assert proc.returncode == 0, proc.stderr
        assert "mcp__web__add" in proc.stdout and "mcp__web__echo (read-only)" in proc.stdout

    proc = kimicode(home, project, "mcp", "test", "ghost")
    assert proc.returncode == 1
    assert "no-such-mcp-binary" in proc.stderr and "ghost.log" in proc.stderr
    unknown = kimicode(home, project, "mcp", "test", "nope")
    assert unknown.returncode == 2 and "configured: demo, ghost, web" in unknown.stderr


def test_import_from_other_agents(home: Path, user_home: Path, project: Path) -> None:
    write_other_agents(user_home)
    # Not a terminal and no --yes: show what was found, change nothing, exit 2 with the way forward.
    proc = kimicode(home, project, "mcp", "import")
    assert proc.returncode == 2
    assert "files" in proc.stdout and "docs" in proc.stdout and "--yes" in proc.stderr
    assert not (home / "mcp.json").exists()

    proc = kimicode(home, project, "mcp", "import", "--yes")
    assert proc.returncode == 0, proc.stderr
    servers = stored(home)
    assert servers["files"]["command"] == "npx" and servers["files"]["args"] == ["-y", "server-files", "/tmp"]
    assert servers["files"]["source"].endswith("claude_desktop_config.json")
    assert servers["docs"]["url"] == "https://docs.example/mcp"
    assert servers["docs"]["headers"] == {"X-Key": "${DOCS_KEY}"}  # secrets stay references
    assert servers["docs"]["source"].endswith(".cursor/mcp.json")

    again = kimicode(home, project, "mcp", "import", "--all")
    assert again.returncode == 0 and "nothing new to import" in again.stdout
    assert stored(home) == servers


def test_first_run_offer_imports_on_one_yes_and_asks_once(home: Path, user_home: Path, project: Path) -> None:
    write_other_agents(user_home)
    config = Config(work_dir=project, home=home)
    questions: list[str] = []
    out = io.StringIO()
    added = first_run_mcp_offer(config, ask=lambda q: questions.append(q) or "", out=out, home=user_home)
    assert {s.name for s in added} == {"files", "docs"}
    assert len(questions) == 1 and "files" in out.getvalue()
    assert {s.name for s in load_servers(home)} == {"files", "docs"}
    # mcp.json exists now: never asked again
    assert first_run_mcp_offer(config, ask=lambda q: pytest.fail("asked twice"), out=io.StringIO(), home=user_home) == []


def test_first_run_offer_declined_is_remembered(home: Path, user_home: Path, project: Path) -> None:
    write_other_agents(user_home)
    config = Config(work_dir=project, home=home)
    assert first_run_mcp_offer(config, ask=lambda q: "n", out=io.StringIO(), home=user_home) == []
    assert load_servers(home) == [] and (home / "mcp.json").exists()
    assert first_run_mcp_offer(config, ask=lambda q: pytest.fail("asked twice"), out=io.StringIO(), home=user_home) == []


def test_first_run_offer_without_findings_writes_nothing(home: Path, user_home: Path, project: Path) -> None:
    config = Config(work_dir=project, home=home)
    assert first_run_mcp_offer(config, ask=lambda q: pytest.fail("nothing to ask"), out=io.StringIO(), home=user_home) == []
    assert not (home / "mcp.json").exists()


def test_skills_list_shows_sources_shadowed_and_invalid(home: Path, user_home: Path, project: Path) -> None:
    (project / ".git").mkdir()

    def skill(root: Path, folder: str, text: str) -> Path:
        path = root / folder / "SKILL.md"
        path.parent.mkdir(parents=True)
        path.write_text(text)
        return path

    user_deploy = skill(user_home / ".claude" / "skills", "deploy", "---\nname: deploy\ndescription: old\n---\n")
    project_deploy = skill(project / ".agents" / "skills", "deploy", "---\nname: deploy\ndescription: new\n---\n")
    broken = skill(project / ".agents" / "skills", "broken", "no frontmatter at all\n")
    proc = kimicode(home, project, "skills", "list")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    deploy_row = next(line for line in out.splitlines() if line.startswith("deploy "))
    assert "project:.agents/skills" in deploy_row and str(project_deploy) in deploy_row
    shadow_row = next(line for line in out.splitlines() if str(user_deploy) in line)
    assert "shadowed by project:.agents/skills" in shadow_row
    assert f"{broken}:" in out and "invalid" in out
