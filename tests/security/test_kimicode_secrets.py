"""kimicode's own secrets in KIMICODE_HOME: the API key (config.toml), trust decisions, MCP sign-in tokens
(mcp-tokens/) and the server's token (serve.token). The policy refuses reading them and the sandbox hides them."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from kimicode.security.policy import Policy
from kimicode.security.sandbox import detect_sandbox
from kimicode.tools.base import ToolContext
from kimicode.tools.bash import BashTool
from kimicode.tools.view import ViewTool
from tests.sandboxing import needs_bwrap

TOKEN = "mcp-access-token-31337"
SERVE_TOKEN = "serve-token-4711"


@pytest.fixture
def places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, Path]]:
    # Not under /tmp: a sandboxed command has its own /tmp, where a secret would be out of sight anyway.
    kimihome = Path(tempfile.mkdtemp(prefix="kimihome-", dir=Path.home()))
    monkeypatch.setenv("HOME", str(tmp_path / "userhome"))
    (tmp_path / "userhome").mkdir()
    (kimihome / "mcp-tokens").mkdir(parents=True)
    (kimihome / "mcp-tokens" / "github.json").write_text(f'{{"access_token": "{TOKEN}"}}')
    (kimihome / "serve.token").write_text(SERVE_TOKEN)
    workspace = tmp_path / "ws"
    workspace.mkdir()
    try:
        yield workspace, kimihome
    finally:
        shutil.rmtree(kimihome)


def test_the_policy_refuses_reading_sign_in_tokens(places: tuple[Path, Path]) -> None:
    workspace, kimihome = places
    policy = Policy(workspace=workspace, home=kimihome, yolo=True)
    for path in [kimihome / "mcp-tokens" / "github.json", kimihome / "mcp-tokens", kimihome / "serve.token"]:
        decision = policy.decide(ViewTool(), {"path": str(path)}, ToolContext(workspace=workspace))
        assert str(decision.action) == "deny" and "secret" in decision.reason, path
    command = f"cat {kimihome}/mcp-tokens/github.json"
    assert str(policy.decide(BashTool(), {"command": command}, ToolContext(workspace=workspace)).action) == "deny"


@needs_bwrap
def test_the_sandbox_hides_sign_in_tokens(places: tuple[Path, Path]) -> None:
    workspace, kimihome = places
    sandbox = detect_sandbox("workspace-write", False, workspace, kimihome)
    assert sandbox.backend == "bwrap", sandbox.unavailable
    ctx = ToolContext(workspace=workspace, sandbox=sandbox)
    script = f"cat {kimihome}/mcp-tokens/*; ls {kimihome}/mcp-tokens | wc -l; cat {kimihome}/serve.token; echo end"
    result = asyncio.run(BashTool().run({"command": script}, ctx))
    assert TOKEN not in result.text and SERVE_TOKEN not in result.text
    assert "\n0\n" in result.text and "end" in result.text  # the folder is there, and empty
