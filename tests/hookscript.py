"""Helpers for the hook tests: Claude Code-format settings, hook scripts, and the CLI against the scripted
model server."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from tests.clirun import run_cli
from tests.fake_llm import FakeLLM

QUICK = "retry_base_delay = 0.01\nmax_retries = 1\n"


def claude_settings(repo: Path, hooks: dict[str, object], name: str = "settings.json") -> None:
    (repo / ".claude").mkdir(exist_ok=True)
    (repo / ".claude" / name).write_text(json.dumps({"hooks": hooks}))


def group(command: str, matcher: str | None = None, timeout: float | None = None) -> list[dict[str, object]]:
    hook: dict[str, object] = {"type": "command", "command": command}
    if timeout is not None:
        hook["timeout"] = timeout
    entry: dict[str, object] = {"hooks": [hook]}
    if matcher is not None:
        entry["matcher"] = matcher
    return [entry]


def script(tmp_path: Path, name: str, body: str) -> str:
    """A hook written in Python, as the command line that runs it."""
    path = tmp_path / name
    path.write_text("import json, os, sys\n" + body)
    return f"{sys.executable} {path}"


def echo(answer: Mapping[str, object]) -> str:
    """A hook command that answers with this JSON object."""
    return f"echo '{json.dumps(answer)}'"


def kimicode(fake: FakeLLM, home: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(list(args), home=home, cwd=cwd, base_url=fake.base_url)


def last_content(fake: FakeLLM, request: int) -> str:
    return str(fake.chat_requests[request].body["messages"][-1]["content"])
