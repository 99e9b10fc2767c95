"""MCP server discovery from a fake home holding all nine config formats, and the kimicode store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kimicode.discovery.jsonc import loads_jsonc
from kimicode.discovery.mcp_configs import discover_mcp_servers, find_mcp_servers
from kimicode.mcp.server_config import McpServerConfig, expand_vars
from kimicode.mcp.store import (
    McpStoreError,
    add_server,
    import_servers,
    load_servers,
    remove_server,
    store_path,
)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture()
def fake_setup(tmp_path: Path) -> dict[str, Path]:
    home = tmp_path / "home"
    project = tmp_path / "project"
    (project / ".git").mkdir(parents=True)
    files = {
        "claude_desktop": write(
            home / ".config/Claude/claude_desktop_config.json",
            json.dumps({"mcpServers": {"filesystem": {"command": "npx", "args": ["-y", "fs-server", "/tmp"]}}}),
        ),
        "claude_code_project": write(
            project / ".mcp.json",
            json.dumps({"mcpServers": {"sentry": {"type": "http", "url": "https://mcp.sentry.dev/mcp",
                                                  "headers": {"Authorization": "Bearer ${SENTRY_TOKEN}"}}}}),
        ),
        "claude_code_user": write(
            home / ".claude.json",
            json.dumps({
                "numStartups": 3,
                "mcpServers": {"memory": {"type": "stdio", "command": "memory-server", "env": {"MODE": "fast"}}},
                "projects": {
                    str(project): {"mcpServers": {"db": {"command": "db-mcp", "args": ["--ro"]}}},
                    "/elsewhere": {"mcpServers": {"other": {"command": "not-for-this-project"}}},
                },
            }),
        ),
        "cursor": write(
            home / ".cursor/mcp.json",
            json.dumps({"mcpServers": {"linear": {"url": "https://mcp.linear.app/sse"}}}),
        ),
        "vscode": write(
            project / ".vscode/mcp.json",
            """{
  // VS Code uses "servers", not "mcpServers"
  "servers": {
    "playwright": {
      "type": "stdio",
      "command": "npx",
      "args": ["@playwright/mcp", "--output", "${workspaceFolder}/out",], /* trailing comma */
      "env": {"TOKEN": "${env:PW_TOKEN}"},
    },
    "remote": {"type": "sse", "url": "http://127.0.0.1:9/sse"},
  },
}
""",
        ),
        "zed": write(
            home / ".config/zed/settings.json",
            """// Zed settings
{
  "theme": "One Dark", // comment after a value
  "context_servers": {
    "nested": {"command": {"path": "/usr/bin/zed-mcp", "args": ["--stdio"], "env": {"A": "1"}}},
    "flat": {"source": "custom", "command": "flat-mcp", "args": ["x//not-a-comment"],},
    "extension-only": {"source": "extension", "settings": {}},
  },
}
""",
        ),
        "windsurf": write(
            home / ".codeium/windsurf/mcp_config.json",
            json.dumps({"mcpServers": {"docs": {"serverUrl": "https://docs.example/mcp"},
                                       "off": {"command": "off-server", "disabled": True}}}),
        ),
        "gemini": write(
            home / ".gemini/settings.json",
            json.dumps({"mcpServers": {
                "events": {"url": "http://127.0.0.1:7/events"},
                "api": {"httpUrl": "http://127.0.0.1:8/mcp", "headers": {"X-Key": "${API_KEY:-none}"}},
                "local": {"command": "gem-mcp", "cwd": "/srv"},
            }}),
        ),
        "codex": write(
            home / ".codex/config.toml",
            """model = "o3"

[mcp_servers.git]
command = "uvx"
args = ["mcp-server-git"]
env = { "GIT_DIR" = "/repo/.git" }

[mcp_servers.figma]
url = "https://figma.example/mcp"
bearer_token_env_var = "FIGMA_TOKEN"
""",
        ),
        "kimi": write(
            home / ".kimi/mcp.json",
            json.dumps({"mcpServers": {"context7": {"url": "https://mcp.context7.com/mcp", "transport": "http"}}}),
        ),
    }
    return {"home": home, "project": project, **files}


def by_name(servers: list[McpServerConfig]) -> dict[str, McpServerConfig]:
    return {server.name: server for server in servers}


def test_every_format_found_and_normalised(fake_setup: dict[str, Path]) -> None:
    workspace = fake_setup["project"]
    servers = by_name(discover_mcp_servers(workspace, fake_setup["home"], platform="linux"))
    assert set(servers) == {
        "filesystem", "sentry", "memory", "db", "linear", "playwright", "remote", "nested", "flat",
        "docs", "off", "events", "api", "local", "git", "figma", "context7",
    }

    fs = servers["filesystem"]
    assert (fs.transport, fs.command, fs.args) == ("stdio", "npx", ["-y", "fs-server", "/tmp"])
    assert fs.source == str(fake_setup["claude_desktop"])

    sentry = servers["sentry"]
    assert (sentry.transport, sentry.url) == ("http", "https://mcp.sentry.dev/mcp")
    # Environment references stay unexpanded in the normal form, so secrets are never copied.
    assert sentry.headers == {"Authorization": "Bearer ${SENTRY_TOKEN}"}
    assert sentry.source == str(fake_setup["claude_code_project"])

    assert servers["memory"].env == {"MODE": "fast"} and servers["memory"].command == "memory-server"
    assert servers["db"].args == ["--ro"] and "projects[" in servers["db"].source
    assert (servers["linear"].transport, servers["linear"].source) == ("sse", str(fake_setup["cursor"]))

    playwright = servers["playwright"]
    assert playwright.args == ["@playwright/mcp", "--output", f"{workspace.resolve()}/out"]
    assert playwright.env == {"TOKEN": "${env:PW_TOKEN}"}
    assert (servers["remote"].transport, servers["remote"].url) == ("sse", "http://127.0.0.1:9/sse")

    nested = servers["nested"]
    assert (nested.command, nested.args, nested.env) == ("/usr/bin/zed-mcp", ["--stdio"], {"A": "1"})
    assert servers["flat"].args == ["x//not-a-comment"] and servers["flat"].source == str(fake_setup["zed"])

    assert (servers["docs"].transport, servers["docs"].url) == ("http", "https://docs.example/mcp")
    assert servers["off"].enabled is False and servers["docs"].enabled is True

    assert (servers["events"].transport, servers["events"].url) == ("sse", "http://127.0.0.1:7/events")
    assert (servers["api"].transport, servers["api"].headers) == ("http", {"X-Key": "${API_KEY:-none}"})
    assert servers["local"].cwd == "/srv"

    git = servers["git"]
    assert (git.command, git.args, git.env) == ("uvx", ["mcp-server-git"], {"GIT_DIR": "/repo/.git"})
    assert servers["figma"].headers == {"Authorization": "Bearer ${FIGMA_TOKEN}"}
    assert servers["figma"].source == str(fake_setup["codex"])

    assert (servers["context7"].transport, servers["context7"].source) == ("http", str(fake_setup["kimi"]))


def test_expansion_at_launch() -> None:
    env = {"SENTRY_TOKEN": "s3cret", "PW_TOKEN": "pw"}
    assert expand_vars("Bearer ${SENTRY_TOKEN}", env) == "Bearer s3cret"
    assert expand_vars("${env:PW_TOKEN}", env) == "pw"
    assert expand_vars("${API_KEY:-none}", env) == "none"
    assert expand_vars("${MISSING}x", env) == "x"
    config = McpServerConfig(name="a", transport="http", url="http://h/${PW_TOKEN}", headers={"K": "${SENTRY_TOKEN}"})
    expanded = config.expanded(env)
    assert (expanded.url, expanded.headers) == ("http://h/pw", {"K": "s3cret"})
    assert config.headers == {"K": "${SENTRY_TOKEN}"}


def test_claude_desktop_path_per_os(tmp_path: Path) -> None:
    home = tmp_path / "home"
    body = json.dumps({"mcpServers": {"mac-only": {"command": "m"}}})
    write(home / "Library/Application Support/Claude/claude_desktop_config.json", body)
    write(home / "AppData/Roaming/Claude/claude_desktop_config.json", body.replace("mac-only", "win-only"))
    workspace = tmp_path / "ws"
    workspace.mkdir()
    assert [s.name for s in discover_mcp_servers(workspace, home, platform="darwin")] == ["mac-only"]
    assert [s.name for s in discover_mcp_servers(workspace, home, platform="win32")] == ["win-only"]
    assert discover_mcp_servers(workspace, home, platform="linux") == []


def test_broken_file_reported_not_raised(tmp_path: Path) -> None:
    home = tmp_path / "home"
    broken = write(home / ".cursor/mcp.json", "{ not json")
    write(home / ".kimi/mcp.json", json.dumps({"mcpServers": {"ok": {"command": "ok"}}}))
    found = find_mcp_servers(tmp_path, home, platform="linux")
    assert [s.name for s in found.servers] == ["ok"]
    [(path, reason)] = found.problems
    assert path == broken and "cannot parse" in reason


def test_jsonc_keeps_strings_intact() -> None:
    text = '{"a": "http://x/*y*/", /* c */ "b": [1, 2,], // end\n "c": "q\\"//", }'
    assert loads_jsonc(text) == {"a": "http://x/*y*/", "b": [1, 2], "c": 'q"//'}


def test_import_twice_adds_nothing_second_time(fake_setup: dict[str, Path], tmp_path: Path) -> None:
    kimicode_home = tmp_path / "kimicode-home"
    found = discover_mcp_servers(fake_setup["project"], fake_setup["home"], platform="linux")
    first = import_servers(kimicode_home, found)
    assert len(first.added) == len(found) == 17 and first.skipped == []

    stored = json.loads(store_path(kimicode_home).read_text())["mcpServers"]
    assert stored["filesystem"] == {
        "command": "npx", "args": ["-y", "fs-server", "/tmp"], "source": str(fake_setup["claude_desktop"]),
    }
    assert stored["sentry"]["type"] == "http" and stored["sentry"]["headers"]["Authorization"] == "Bearer ${SENTRY_TOKEN}"
    assert stored["off"]["disabled"] is True

    again = discover_mcp_servers(fake_setup["project"], fake_setup["home"], platform="linux")
    second = import_servers(kimicode_home, again)
    assert second.added == [] and len(second.skipped) == 17
    assert json.loads(store_path(kimicode_home).read_text())["mcpServers"] == stored
    reloaded = by_name(load_servers(kimicode_home))
    assert reloaded["linear"].transport == "sse" and reloaded["off"].enabled is False
    assert reloaded["git"].source == str(fake_setup["codex"])


def test_name_clash_with_different_settings_gets_suffix(tmp_path: Path) -> None:
    kimicode_home = tmp_path / "kh"
    add_server(kimicode_home, McpServerConfig(name="github", command="gh-mcp", source="manual"))
    other = McpServerConfig(name="github", transport="http", url="https://api.example/mcp", source="x")
    report = import_servers(kimicode_home, [other])
    assert [s.name for s in report.added] == ["github-2"]
    assert import_servers(kimicode_home, [other]).added == []
    assert [s.name for s in load_servers(kimicode_home)] == ["github", "github-2"]


def test_add_and_remove(tmp_path: Path) -> None:
    kimicode_home = tmp_path / "kh"
    add_server(kimicode_home, McpServerConfig(name="a", command="a-cmd", args=["--x"], env={"K": "v"}))
    with pytest.raises(McpStoreError, match="already exists"):
        add_server(kimicode_home, McpServerConfig(name="a", command="other"))
    add_server(kimicode_home, McpServerConfig(name="a", command="other"), replace=True)
    assert load_servers(kimicode_home)[0].command == "other"
    removed = remove_server(kimicode_home, "a")
    assert removed.command == "other" and load_servers(kimicode_home) == []
    with pytest.raises(McpStoreError, match="no MCP server named 'zzz'"):
        remove_server(kimicode_home, "zzz")
    # Only the final file remains: the atomic write leaves no temp files behind.
    assert sorted(p.name for p in kimicode_home.iterdir()) == ["mcp.json"]
