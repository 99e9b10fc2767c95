"""Where hooks come from (the user's ~/.claude and ~/.gemini settings, plugins) and how matchers match, through
the real CLI and the scripted model server; a malformed hook is one line and loses nothing else."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from kimicode.extensions.hooks import matches, tool_names
from kimicode.extensions.plugin_index import index_path
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
    repo.mkdir()
    return repo


def user_home(home: Path) -> Path:
    return home.parent / "userhome"  # HOME as tests.clirun sets it


def logger(tmp_path: Path, name: str) -> tuple[str, Path]:
    log = tmp_path / f"{name}.jsonl"
    script = tmp_path / f"{name}.py"
    script.write_text(f"import sys\nopen({str(log)!r}, 'a').write(sys.stdin.read().strip() + '\\n')\n")
    return f"{sys.executable} {script}", log


def logged(log: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


@pytest.mark.parametrize(
    ("matcher", "tool", "hit"),
    [
        ("Edit|Write", "strreplace", True),
        ("Edit|Write", "insert", True),
        ("Edit|Write", "createfile", True),
        ("Edit|Write", "bash", False),
        ("Bash", "bash", True),
        ("Read", "view", True),
        ("WebFetch", "fetch", True),
        ("", "view", True),
        ("*", "bash", True),
        ("bash|createfile", "createfile", True),
        ("mcp__github__.*", "mcp__github__create_issue", True),
        ("mcp__github__.*", "mcp__gitlab__create_issue", False),
        ("Notebook.*", "bash", False),
        ("(", "bash", False),  # a broken pattern matches nothing
    ],
)
def test_claude_code_matchers_match_kimicode_tools(matcher: str, tool: str, hit: bool) -> None:
    assert matches(matcher, tool_names(tool)) is hit


def test_user_claude_and_gemini_settings_and_a_plugin_all_fire(
    fake_llm: FakeLLM, home: Path, repo: Path, tmp_path: Path
) -> None:
    claude_cmd, claude_log = logger(tmp_path, "claude")
    gemini_cmd, gemini_log = logger(tmp_path, "gemini")
    (user_home(home) / ".claude").mkdir(parents=True)
    (user_home(home) / ".claude" / "settings.json").write_text(json.dumps(
        {"hooks": {"PreToolUse": [{"matcher": "Write", "hooks": [{"type": "command", "command": claude_cmd}]}]}}
    ))
    (user_home(home) / ".gemini").mkdir(parents=True)
    (user_home(home) / ".gemini" / "settings.json").write_text(json.dumps(  # Gemini CLI: ms, its own names
        {"hooks": {"BeforeTool": [{"matcher": "write_file", "hooks": [{"type": "command", "command": gemini_cmd,
                                                                       "timeout": 30000}]}]}}
    ))
    plugin = tmp_path / "plugins" / "fmt"
    (plugin / "hooks").mkdir(parents=True)
    (plugin / "stamp.sh").write_text('echo "$KIMICODE_PLUGIN_ROOT" > "$CLAUDE_PROJECT_DIR/stamped"\n')
    (plugin / "hooks" / "hooks.json").write_text(json.dumps({"hooks": {"PostToolUse": [
        {"matcher": "Edit|Write", "hooks": [{"type": "command", "command": "sh ${CLAUDE_PLUGIN_ROOT}/stamp.sh"}]}
    ]}}))
    index_path(home).parent.mkdir(parents=True)
    index_path(home).write_text(json.dumps({"plugins": [{"name": "fmt", "root": str(plugin)}]}))
    fake_llm.script(Reply(tool_calls=[ToolCall("createfile", {"path": "a.txt", "content": "a\n"})]), Reply(content="ok"))
    proc = run_cli(["-p", "-y", "write"], home=home, cwd=repo, base_url=fake_llm.base_url)
    assert proc.returncode == 0, proc.stderr
    [claude] = logged(claude_log)
    assert claude["tool_name"] == "Write"
    assert claude["tool_input"] == {"path": "a.txt", "content": "a\n", "file_path": str(repo.resolve() / "a.txt")}
    [gemini] = logged(gemini_log)
    assert gemini["tool_name"] == "write_file"
    assert (repo / "stamped").read_text().strip() == str(plugin)  # the plugin's root, expanded and in its env


def test_a_malformed_hook_is_one_line_and_the_others_still_run(
    fake_llm: FakeLLM, home: Path, repo: Path, tmp_path: Path
) -> None:
    good, log = logger(tmp_path, "good")
    write_home_config(home, (
        "retry_base_delay = 0.01\n"
        '[[hooks.PreToolUse]]\nmatcher = "bash"\n'  # no command
        '[[hooks.NoSuchEvent]]\ncommand = "true"\n'
        f"[[hooks.UserPromptSubmit]]\ncommand = {json.dumps(good)}\ntimeout = 5\n"
    ))
    fake_llm.script(Reply(content="ok"))
    proc = run_cli(["-p", "hi"], home=home, cwd=repo, base_url=fake_llm.base_url)
    assert proc.returncode == 0, proc.stderr
    assert "[[hooks.PreToolUse]] needs command" in proc.stderr
    assert "unknown hook event 'NoSuchEvent'" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert [e["prompt"] for e in logged(log)] == ["hi"]


def test_codex_hooks_json_and_config_toml_hooks_fire(fake_llm: FakeLLM, home: Path, repo: Path, tmp_path: Path) -> None:
    pre_cmd, pre_log = logger(tmp_path, "codex-pre")
    post_cmd, post_log = logger(tmp_path, "codex-post")
    (user_home(home) / ".codex").mkdir(parents=True)
    (user_home(home) / ".codex" / "hooks.json").write_text(json.dumps(
        {"hooks": {"PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": pre_cmd, "timeout": 30}]}]}}
    ))
    (repo / ".codex").mkdir()
    (repo / ".codex" / "config.toml").write_text(
        '[[hooks.PostToolUse]]\nmatcher = "apply_patch"\n'
        f'[[hooks.PostToolUse.hooks]]\ntype = "command"\ncommand = {json.dumps(post_cmd)}\n'
        "[hooks.state]\n"  # Codex's own record of reviewed hooks: not an event
    )
    fake_llm.script(
        Reply(tool_calls=[ToolCall("bash", {"command": "true"})]),
        Reply(tool_calls=[ToolCall("createfile", {"path": "a.txt", "content": "a\n"})]),
        Reply(content="ok"),
    )
    proc = run_cli(["-p", "-y", "--trust", "go"], home=home, cwd=repo, base_url=fake_llm.base_url)
    assert proc.returncode == 0, proc.stderr
    assert "hooks:" not in proc.stderr  # no problem reported
    assert [e["tool_name"] for e in logged(pre_log)] == ["Bash"]
    assert [e["tool_name"] for e in logged(post_log)] == ["apply_patch"]
