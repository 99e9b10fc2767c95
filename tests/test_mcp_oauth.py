"""OAuth sign-in to a remote MCP server, end to end through the CLI: `kimicode mcp login` (browser and
pasted address), tokens kept 0600, used and refreshed by later runs, a revoked sign-in reported as one line,
`kimicode mcp logout`. The authorization server and the protected MCP server are tests/mcp_servers/oauth_server.py."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import httpx2 as httpx
import pytest

from kimicode.config import Config
from kimicode.frontends.common.integrations import mcp_lines
from kimicode.mcp.login import CALLBACK_PATH
from kimicode.mcp.oauth import REFRESH_MARGIN
from kimicode.mcp.server_config import McpServerConfig
from kimicode.mcp.store import save_servers
from kimicode.mcp.token_store import TOKEN_DIR_NAME
from tests.clirun import REPO, cli_env, run_cli, write_home_config
from tests.fake_llm import FakeLLM, Reply, ToolCall
from tests.mcp_servers.fixtures import free_port, http_server
from tests.mcp_servers.oauth_server import AuthState, oauth_server

BROWSER = f"{sys.executable} {REPO / 'tests' / 'mcp_servers' / 'fetch_browser.py'} %s"
SIGN_IN_LINE = "kimicode: MCP server 'wiki' needs you to sign in: run `kimicode mcp login wiki`"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "kimihome"
    write_home_config(home, "retry_base_delay = 0.01\nmax_retries = 2\nmcp_startup_wait = 30\n")
    return home


@pytest.fixture
def project(tmp_path: Path) -> Path:
    project = tmp_path / "proj"
    project.mkdir()
    return project


def add_wiki(home: Path, auth: AuthState, **oauth: str) -> None:
    save_servers(home, [McpServerConfig(name="wiki", transport="http", url=auth.resource, oauth=oauth, source="t")])


def login(home: Path, project: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {"BROWSER": BROWSER, "DISPLAY": ""}
    return run_cli(["mcp", "login", "wiki", "--timeout", "60", *extra], home=home, cwd=project, env_extra=env, timeout=90)


def ask_whoami(fake_llm: FakeLLM, home: Path, project: Path) -> subprocess.CompletedProcess[str]:
    fake_llm.script(Reply(tool_calls=[ToolCall("mcp__wiki__whoami", {})]), Reply(content="done"))
    return run_cli(["-p", "-y", "who am I"], home=home, cwd=project, base_url=fake_llm.base_url, timeout=90)


def token_files(home: Path) -> list[Path]:
    return sorted((home / TOKEN_DIR_NAME).glob("*.json"))


def files_holding(home: Path, secrets: list[str]) -> list[Path]:
    """Files under ``home`` (the sign-in files aside) that contain any of ``secrets``."""
    found = []
    for path in home.rglob("*"):
        if path.is_file() and TOKEN_DIR_NAME not in path.parts:
            text = path.read_text(errors="replace")
            if any(secret in text for secret in secrets):
                found.append(path)
    return found


def test_sign_in_with_the_browser_then_runs_use_and_refresh_the_tokens(
    fake_llm: FakeLLM, home: Path, project: Path
) -> None:
    # Tokens that expire within the refresh margin: the next run must refresh before using one.
    with oauth_server(access_ttl=int(REFRESH_MARGIN) // 2) as auth:
        add_wiki(home, auth)
        fake_llm.script(Reply(content="ok"))
        before = run_cli(["-p", "hi"], home=home, cwd=project, base_url=fake_llm.base_url, timeout=90)
        assert before.returncode == 0, before.stderr
        assert [line for line in before.stderr.splitlines() if "wiki" in line] == [SIGN_IN_LINE]
        assert auth.registrations == 0 and auth.grants == []  # no sign-in is started outside a login

        listed = run_cli(["mcp", "list"], home=home, cwd=project)
        assert "not signed in" in listed.stdout

        proc = login(home, project)
        assert proc.returncode == 0, proc.stderr
        assert "signed in to MCP server 'wiki' (1 tools)" in proc.stdout
        assert f"{auth.issuer}/authorize?" in proc.stdout  # the address is printed as well as opened
        assert auth.problems == []  # registered redirect, S256 challenge, verifier, resource all checked
        assert auth.registrations == 1 and auth.grants == ["authorization_code"]
        assert auth.client_auth == ["none"]

        [record] = token_files(home)
        assert stat.S_IMODE(record.stat().st_mode) == 0o600
        assert stat.S_IMODE(record.parent.stat().st_mode) == 0o700
        first_token = auth.mcp_tokens[-1]
        assert first_token and first_token in record.read_text()
        assert "signed in" in run_cli(["mcp", "list"], home=home, cwd=project).stdout.replace("not signed in", "")
        [(wiki_line, _)] = [line for line in mcp_lines(None, Config(home=home, mode="agent")) if "wiki" in line[0]]
        assert wiki_line.rstrip().endswith("[t]  signed in")  # what /mcp shows

        seen = len(auth.mcp_tokens)
        proc = ask_whoami(fake_llm, home, project)
        assert proc.returncode == 0, proc.stderr
        assert fake_llm.chat_requests[-1].tool_results()[-1]["content"] == "signed in as alice"
        assert auth.grants == ["authorization_code", "refresh_token"]  # refreshed before expiry
        assert first_token not in auth.mcp_tokens[seen:] and "" not in auth.mcp_tokens[seen:]

        # The server stops accepting the access token: a 401, the refresh token, and the call goes through.
        auth.revoke_access()
        proc = ask_whoami(fake_llm, home, project)
        assert proc.returncode == 0, proc.stderr
        assert fake_llm.chat_requests[-1].tool_results()[-1]["content"] == "signed in as alice"
        assert auth.grants[-1] == "refresh_token" and len(auth.grants) == 3
        assert "sign in" not in proc.stderr

        issued = [token for token in auth.mcp_tokens if token] + list(auth.refresh)
        assert files_holding(home, issued) == []  # never in sessions, logs or output
        assert not any(token in proc.stdout + proc.stderr for token in issued)

        # Everything revoked: one line that says what to run, and the run goes on without the server.
        auth.revoke_everything()
        fake_llm.script(Reply(content="fine"))
        proc = run_cli(["-p", "hi"], home=home, cwd=project, base_url=fake_llm.base_url, timeout=90)
        assert proc.returncode == 0 and proc.stdout.strip() == "fine", proc.stderr
        assert [line for line in proc.stderr.splitlines() if "wiki" in line] == [SIGN_IN_LINE]
        assert "Traceback" not in proc.stderr

        out = run_cli(["mcp", "logout", "wiki"], home=home, cwd=project)
        assert out.returncode == 0 and "signed out of MCP server 'wiki'" in out.stdout
        assert token_files(home) == []
        assert "not signed in" in run_cli(["mcp", "list"], home=home, cwd=project).stdout


def test_pasted_address_signs_in_with_a_client_registered_by_hand(home: Path, project: Path) -> None:
    with oauth_server() as auth:
        port = free_port()  # a client registered by hand names its redirect address up front
        callback = f"http://127.0.0.1:{port}{CALLBACK_PATH}"
        auth.clients["kc-by-hand"] = {"redirect_uris": [callback], "secret": "s3cret-by-hand-0123456789"}
        add_wiki(home, auth, client_id="kc-by-hand", client_secret="${WIKI_SECRET}", callback_port=str(port))
        env = cli_env(home, WIKI_SECRET="s3cret-by-hand-0123456789", BROWSER="", DISPLAY="")
        process = subprocess.Popen(
            [sys.executable, "-m", "kimicode", "mcp", "login", "wiki", "--no-browser", "--timeout", "60"],
            cwd=project,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert process.stdout is not None and process.stdin is not None
            address = ""
            for line in process.stdout:
                if "/authorize?" in line:
                    address = line.strip()
                    break
            assert address.startswith(f"{auth.issuer}/authorize?"), address
            # The browser is on another machine: it ends on an address this one never serves; the user pastes it.
            landed = httpx.get(address, follow_redirects=False, trust_env=False).headers["location"]
            assert CALLBACK_PATH in landed
            out, err = process.communicate(landed + "\n", timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert process.returncode == 0, err
    assert "signed in to MCP server 'wiki'" in out
    assert auth.registrations == 0 and auth.client_auth == ["client_secret_basic"] and auth.problems == []
    [record] = token_files(home)
    assert "s3cret-by-hand" not in record.read_text()  # the secret stays in the environment


def test_sign_in_over_the_sse_transport(fake_llm: FakeLLM, home: Path, project: Path) -> None:
    with oauth_server() as auth:
        save_servers(home, [McpServerConfig(name="wiki", transport="sse", url=auth.sse, source="t")])
        proc = login(home, project)
        assert proc.returncode == 0, proc.stderr
        assert "signed in to MCP server 'wiki' (1 tools)" in proc.stdout and auth.problems == []
        proc = ask_whoami(fake_llm, home, project)
        assert proc.returncode == 0, proc.stderr
        assert fake_llm.chat_requests[-1].tool_results()[-1]["content"] == "signed in as alice"
        assert auth.grants == ["authorization_code"] and "" not in auth.mcp_tokens[-3:]


def test_a_refused_sign_in_is_one_line_and_keeps_no_tokens(home: Path, project: Path) -> None:
    with oauth_server() as auth:
        auth.deny = True
        add_wiki(home, auth)
        proc = login(home, project)
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        "kimicode: could not sign in to MCP server 'wiki': the authorization server refused the sign-in: "
        "access_denied (the user said no)"
    )
    assert auth.grants == [] and not any("tokens" in path.read_text() for path in token_files(home))


def test_login_refuses_servers_that_cannot_sign_in(home: Path, project: Path) -> None:
    save_servers(home, [McpServerConfig(name="local", command="true", source="t")])
    proc = run_cli(["mcp", "login", "local"], home=home, cwd=project)
    assert proc.returncode == 2 and "only remote (HTTP/SSE) servers sign in" in proc.stderr
    proc = run_cli(["mcp", "login", "nope"], home=home, cwd=project)
    assert proc.returncode == 2 and "no MCP server named 'nope'" in proc.stderr
    assert "Traceback" not in proc.stderr and os.listdir(home).count(TOKEN_DIR_NAME) == 0
    with socket.socket() as taken:  # the port a client registered by hand returns to is busy: say so
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        save_servers(home, [McpServerConfig(name="fixed", transport="http", url="http://127.0.0.1:9/mcp",
                                            oauth={"client_id": "c", "callback_port": str(port)}, source="t")])
        proc = run_cli(["mcp", "login", "fixed", "--no-browser"], home=home, cwd=project)
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"kimicode: could not sign in to MCP server 'fixed': cannot listen on 127.0.0.1:{port}")
    with http_server() as url:  # a server without OAuth: nothing to sign in to, and nothing kept
        save_servers(home, [McpServerConfig(name="open", transport="http", url=url, source="t")])
        proc = run_cli(["mcp", "login", "open", "--no-browser"], home=home, cwd=project, timeout=90)
    assert proc.returncode == 0, proc.stderr
    assert "MCP server 'open' did not ask for a sign-in" in proc.stdout
    assert token_files(home) == []


def test_the_repl_says_which_login_to_run(spawn, home: Path) -> None:
    with oauth_server() as auth:
        add_wiki(home, auth)
        repl = spawn()
        repl.expect("MCP server 'wiki' needs you to sign in: run `kimicode mcp login wiki`")
        repl.wait_prompt()
    assert auth.registrations == 0 and auth.grants == []


def test_oauth_settings_are_read_in_the_spellings_configurations_use() -> None:
    from kimicode.mcp.server_config import config_from_entry

    entry = {"type": "http", "url": "https://x.example/mcp", "oauth": {"clientId": "abc", "callbackPort": 8765, "junk": 1}}
    server = config_from_entry("x", entry, "claude")
    assert server is not None and server.oauth == {"client_id": "abc", "callback_port": "8765"}
    assert server.to_json()["oauth"] == {"client_id": "abc", "callback_port": "8765"}
