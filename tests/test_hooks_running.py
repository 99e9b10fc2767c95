"""How hooks run, through the real CLI and the scripted model server: their environment, side by side, with
their output bounded, and PostToolUse only after a call that ran."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from kimicode.extensions.hooks_run import MAX_OUTPUT_BYTES
from tests.clirun import run_cli, write_home_config
from tests.fake_llm import FakeLLM, Reply, ToolCall

QUICK = "retry_base_delay = 0.01\nmax_retries = 1\n"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "kimihome"
    write_home_config(home, QUICK)
    return home


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "proj"
    repo.mkdir()
    return repo


def hook(event: str, command: str, matcher: str = "", timeout: int = 20) -> str:
    return f"[[hooks.{event}]]\nmatcher = {json.dumps(matcher)}\ncommand = {json.dumps(command)}\ntimeout = {timeout}\n"


def python(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text("import json, os, sys, time\n" + body)
    return f"{sys.executable} {path}"


def test_hooks_get_the_users_environment_without_the_model_keys(
    fake_llm: FakeLLM, home: Path, repo: Path, tmp_path: Path
) -> None:
    seen = tmp_path / "env.json"
    dump = python(tmp_path, "env.py", f"open({str(seen)!r}, 'w').write(json.dumps(dict(os.environ)))\n")
    write_home_config(home, QUICK + hook("UserPromptSubmit", dump))
    fake_llm.script(Reply(content="ok"))
    proc = run_cli(["-p", "hi"], home=home, cwd=repo, base_url=fake_llm.base_url,
                   env_extra={"OPENAI_API_KEY": "sk-not-for-hooks", "TEAM_SETTING": "kept"})
    assert proc.returncode == 0, proc.stderr
    env = json.loads(seen.read_text())
    assert "KIMI_API_KEY" not in env and "OPENAI_API_KEY" not in env
    assert env["TEAM_SETTING"] == "kept"
    assert env["CLAUDE_PROJECT_DIR"] == env["KIMICODE_PROJECT_DIR"] == str(repo.resolve())


def test_the_hooks_of_one_event_run_side_by_side(fake_llm: FakeLLM, home: Path, repo: Path, tmp_path: Path) -> None:
    # The first hook waits for the second one's file: run one after the other, it would time out first.
    flag, verdict = tmp_path / "second-started", tmp_path / "verdict"
    first = python(tmp_path, "first.py", (
        f"deadline = time.monotonic() + 15\n"
        f"while not os.path.exists({str(flag)!r}) and time.monotonic() < deadline:\n    time.sleep(0.02)\n"
        f"open({str(verdict)!r}, 'w').write('together' if os.path.exists({str(flag)!r}) else 'alone')\n"
    ))
    write_home_config(home, QUICK + hook("UserPromptSubmit", first, timeout=30) + hook("UserPromptSubmit", f"touch {flag}"))
    fake_llm.script(Reply(content="ok"))
    proc = run_cli(["-p", "hi"], home=home, cwd=repo, base_url=fake_llm.base_url)
    assert proc.returncode == 0, proc.stderr
    assert verdict.read_text() == "together"


def test_a_hooks_output_is_bounded(fake_llm: FakeLLM, home: Path, repo: Path, tmp_path: Path) -> None:
    flood = python(tmp_path, "flood.py", "sys.stdout.write('z' * (8 * 1024 * 1024))\n")
    write_home_config(home, QUICK + hook("UserPromptSubmit", flood))
    fake_llm.script(Reply(content="ok"))
    proc = run_cli(["-p", "hi"], home=home, cwd=repo, base_url=fake_llm.base_url)
    assert proc.returncode == 0, proc.stderr
    sent = str(fake_llm.chat_requests[0].messages[-1]["content"])
    assert sent.count("z") == MAX_OUTPUT_BYTES  # read to its end, kept up to the cap


def test_post_tool_use_follows_only_calls_that_ran(fake_llm: FakeLLM, home: Path, repo: Path, tmp_path: Path) -> None:
    log = tmp_path / "post.log"
    write_home_config(home, QUICK + hook("PostToolUse", f"echo ran >> {log}", "Bash"))
    fake_llm.script(
        Reply(tool_calls=[ToolCall("bash", {"command": "touch refused.txt"})]),  # no -y: refused headless
        Reply(content="ok"),
    )
    proc = run_cli(["-p", "go"], home=home, cwd=repo, base_url=fake_llm.base_url)
    assert proc.returncode == 3, proc.stderr  # its one action was refused (DESIGN.md B.13)
    assert not (repo / "refused.txt").exists()
    assert not log.exists()
