"""End-to-end: custom slash commands from other agents' folders, used as `kimicode -p "/name args"` against the
scripted model server: what the first request carries is the expanded template."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.clirun import run_cli, write_home_config
from tests.fake_llm import FakeLLM, Reply, ToolCall


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "kimihome"
    write_home_config(home, "retry_base_delay = 0.01\nmax_retries = 1\n")
    return home


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "proj"
    (repo / "src").mkdir(parents=True)
    (repo / "src" / "app.py").write_text("print('hello')\n")
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    return repo


def userhome(home: Path) -> Path:
    return home.parent / "userhome"  # HOME of the CLI run (tests/clirun.py)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def first_user_text(fake: FakeLLM) -> str:
    content = fake.chat_requests[0].body["messages"][-1]
    assert content["role"] == "user"
    return content["content"] if isinstance(content["content"], str) else content["content"][-1]["text"]


def run(fake: FakeLLM, home: Path, repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(list(args), home=home, cwd=repo, base_url=fake.base_url)


def test_claude_command_with_arguments_is_the_first_request(fake_llm: FakeLLM, home: Path, repo: Path) -> None:
    write(repo / ".claude/commands/review.md",
          "---\ndescription: Review code\nargument-hint: PATH\n---\nReview the code in $ARGUMENTS for bugs.\n")
    fake_llm.script(Reply(content="Looks fine.", tool_calls=[ToolCall("submit", {"summary": "reviewed"})]))
    proc = run(fake_llm, home, repo, "-p", "/review src")
    assert proc.returncode == 0, proc.stderr
    assert fake_llm.chat_requests[0].body["messages"][-1] == {"role": "user", "content": "Review the code in src for bugs."}


def test_a_namespaced_gemini_command(fake_llm: FakeLLM, home: Path, repo: Path) -> None:
    write(userhome(home) / ".gemini/commands/git/explain.toml",
          'description = "Explain"\nprompt = """Explain {{args}} simply."""\n')
    fake_llm.script(Reply(content="ok"))
    assert run(fake_llm, home, repo, "-p", "/git:explain rebase").returncode == 0
    assert fake_llm.chat_requests[0].body["messages"][-1]["content"] == "Explain rebase simply."


def test_positional_arguments_and_an_at_path_include(fake_llm: FakeLLM, home: Path, repo: Path) -> None:
    write(repo / ".kimicode/commands/frontend/explain.md", "Explain @src/app.py to $2, then $1 (not $3).")
    fake_llm.script(Reply(content="ok"))
    assert run(fake_llm, home, repo, "-p", '/frontend:explain "the team" me').returncode == 0
    assert first_user_text(fake_llm) == "Explain <file path=\"src/app.py\">\nprint('hello')\n\n</file> to me, then the team (not )."


def test_shell_lines_run_only_in_a_trusted_folder(fake_llm: FakeLLM, home: Path, repo: Path) -> None:
    write(repo / ".claude/commands/status.md", "Branch state:\n!`echo from-the-shell`\nSummarise it.")
    proc = run(fake_llm, home, repo, "-p", "/status")
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if "/status" in line]
    assert len(lines) == 1 and "not trusted" in lines[0], proc.stderr
    assert fake_llm.chat_requests == []
    fake_llm.script(Reply(content="ok"))
    proc = run(fake_llm, home, repo, "-p", "--trust", "/status")
    assert proc.returncode == 0, proc.stderr
    assert first_user_text(fake_llm) == "Branch state:\nfrom-the-shell\nSummarise it."


def test_allowed_tools_restrict_the_turn(fake_llm: FakeLLM, home: Path, repo: Path) -> None:
    write(repo / ".claude/commands/look.md", "---\nallowed-tools: Read, Bash(git status:*)\n---\nLook around.")
    fake_llm.script(
        Reply(tool_calls=[ToolCall("createfile", {"path": "new.txt", "content": "x"})]),
        Reply(content="done", tool_calls=[ToolCall("submit", {"summary": "done"})]),
    )
    proc = run(fake_llm, home, repo, "-p", "-y", "/look")
    assert proc.returncode == 0, proc.stderr
    assert not (repo / "new.txt").exists()
    result = fake_llm.chat_requests[1].body["messages"][-1]
    assert result["role"] == "tool" and "allowed-tools" in result["content"] and "bash, view" in result["content"]


def test_init_event_counts_extensions_and_global_instructions_come_first(
    fake_llm: FakeLLM, home: Path, repo: Path
) -> None:
    write(repo / ".claude/commands/a.md", "A")
    write(userhome(home) / ".codex/prompts/b.md", "B")
    write(home / "AGENTS.md", "GLOBAL-RULE-ONE")
    write(userhome(home) / ".claude/CLAUDE.md", "CLAUDE-GLOBAL-RULE")
    write(repo / "AGENTS.md", "PROJECT-RULE")
    write(userhome(home) / ".claude/agents/helper.md", "---\nname: helper\ndescription: Helps\n---\nHelp.")
    config = home / "config.toml"
    config.write_text(config.read_text() + '[[hooks.Stop]]\ncommand = "true"\n')
    fake_llm.script(Reply(content="ok"))
    proc = run(fake_llm, home, repo, "-p", "hi", "--output-format", "stream-json")
    assert proc.returncode == 0, proc.stderr
    init = json.loads(proc.stdout.splitlines()[0])
    assert init["subtype"] == "init"
    assert init["extensions"] == {"hooks": 1, "commands": 2, "agents": 1, "plugins": 0}
    system = fake_llm.chat_requests[0].body["messages"][0]["content"]
    assert 0 < system.index("GLOBAL-RULE-ONE") < system.index("CLAUDE-GLOBAL-RULE") < system.index("PROJECT-RULE")
