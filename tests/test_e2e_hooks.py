"""End-to-end: hooks in Claude Code's format (and kimicode's) through the real `kimicode -p` process and the
scripted model server: what runs, what is blocked, and the bytes the model is sent."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from kimicode.extensions.hooks_outcome import BLOCK_EXIT
from tests.clirun import write_home_config
from tests.fake_llm import FakeLLM, Reply, ToolCall
from tests.hookscript import QUICK, claude_settings, group, kimicode, last_content, script


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


def test_pre_tool_use_exit_2_blocks_bash_and_the_model_reads_stderr(
    fake_llm: FakeLLM, home: Path, repo: Path, tmp_path: Path
) -> None:
    seen = tmp_path / "pre.json"
    hook = script(tmp_path, "guard.py", (
        f"open({str(seen)!r}, 'w').write(sys.stdin.read())\n"
        f"print('rm and touch are not allowed in this repository', file=sys.stderr)\nsys.exit({BLOCK_EXIT})\n"
    ))
    claude_settings(repo, {"PreToolUse": group(hook, "Bash")})
    fake_llm.script(Reply(tool_calls=[ToolCall("bash", {"command": "touch ran.txt"})]), Reply(content="ok"))
    proc = kimicode(fake_llm, home, repo, "-p", "-y", "--trust", "make a file")
    assert proc.returncode == 3, proc.stderr  # the one action the run needed was refused (DESIGN.md B.13)
    assert not (repo / "ran.txt").exists()
    assert "rm and touch are not allowed in this repository" in last_content(fake_llm, 1)
    payload = json.loads(seen.read_text())
    assert payload["hook_event_name"] == "PreToolUse"
    assert payload["tool_name"] == "Bash"  # Claude Code's name for a Claude Code hook
    assert payload["tool_input"]["command"] == "touch ran.txt"
    assert payload["cwd"] == str(repo.resolve()) and payload["session_id"]
    assert payload["transcript_path"].endswith(payload["session_id"] + ".jsonl")


def test_post_tool_use_on_edit_or_write_rewrites_the_file(
    fake_llm: FakeLLM, home: Path, repo: Path, tmp_path: Path
) -> None:
    formatter = script(tmp_path, "fmt.py", (
        "path = json.load(sys.stdin)['tool_input']['file_path']\n"
        "text = open(path).read()\nopen(path, 'w').write(text.replace('=', ' = '))\n"
    ))
    claude_settings(repo, {"PostToolUse": group(formatter, "Edit|Write")})
    fake_llm.script(
        Reply(tool_calls=[ToolCall("createfile", {"path": "a.py", "content": "x=1\n"})]),
        Reply(tool_calls=[ToolCall("strreplace", {"path": "a.py", "old_str": "x", "new_str": "y=2\nx"})]),
        Reply(tool_calls=[ToolCall("view", {"path": "a.py"})]),
        Reply(content="done"),
    )
    proc = kimicode(fake_llm, home, repo, "-p", "-y", "--trust", "write a.py")
    assert proc.returncode == 0, proc.stderr
    # formatted after each edit: x's line twice (after the Write and after the Edit), y's once; the view,
    # not matched, left the file alone
    assert (repo / "a.py").read_text() == "y = 2\nx  =  1\n"


def test_user_prompt_submit_adds_context_to_the_first_request(
    fake_llm: FakeLLM, home: Path, repo: Path, tmp_path: Path
) -> None:
    hook = script(tmp_path, "ctx.py", "print('the release branch is frozen; prompt was: ' + json.load(sys.stdin)['prompt'])\n")
    claude_settings(repo, {"UserPromptSubmit": group(hook)}, "settings.local.json")
    fake_llm.script(Reply(content="ok"))
    proc = kimicode(fake_llm, home, repo, "-p", "--trust", "ship it")
    assert proc.returncode == 0, proc.stderr
    first = last_content(fake_llm, 0)
    assert first.startswith("ship it")
    assert "the release branch is frozen; prompt was: ship it" in first


def test_user_prompt_submit_exit_2_drops_the_prompt(fake_llm: FakeLLM, home: Path, repo: Path, tmp_path: Path) -> None:
    write_home_config(home, QUICK + '[[hooks.UserPromptSubmit]]\ncommand = "echo no secrets in prompts >&2; exit 2"\n')
    proc = kimicode(fake_llm, home, repo, "-p", "paste the key")
    assert proc.returncode != 0
    assert "no secrets in prompts" in proc.stderr
    assert fake_llm.chat_requests == []


def test_stop_hook_block_makes_the_agent_go_on_exactly_once(
    fake_llm: FakeLLM, home: Path, repo: Path, tmp_path: Path
) -> None:
    log = tmp_path / "stops.jsonl"
    hook = script(tmp_path, "stop.py", (
        f"open({str(log)!r}, 'a').write(json.dumps(json.load(sys.stdin)) + '\\n')\n"
        "print(json.dumps({'decision': 'block', 'reason': 'run the test suite before you stop'}))\n"
    ))
    claude_settings(repo, {"Stop": group(hook)})
    fake_llm.script(Reply(content="done"), Reply(content="tests pass; done"), Reply(content="never asked"))
    proc = kimicode(fake_llm, home, repo, "-p", "--trust", "finish")
    assert proc.returncode == 0, proc.stderr
    assert len(fake_llm.chat_requests) == 2
    assert "run the test suite before you stop" in last_content(fake_llm, 1)
    assert "tests pass; done" in proc.stdout
    told = [json.loads(line) for line in log.read_text().splitlines()]
    assert [t["stop_hook_active"] for t in told] == [False, True]


def test_untrusted_folder_hooks_do_not_run(fake_llm: FakeLLM, home: Path, repo: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    claude_settings(repo, {"UserPromptSubmit": group(f"touch {marker}"), "PreToolUse": group(f"touch {marker}")})
    (repo / ".kimicode").mkdir()
    (repo / ".kimicode" / "config.toml").write_text(f'[[hooks.Stop]]\ncommand = "touch {marker}"\n')
    fake_llm.script(Reply(tool_calls=[ToolCall("view", {"path": "."})]), Reply(content="ok"))
    proc = kimicode(fake_llm, home, repo, "-p", "look")
    assert proc.returncode == 0, proc.stderr
    assert not marker.exists()
    # the user is told what was left out
    assert "hooks in .claude/settings.json" in proc.stderr and "hooks in .kimicode/config.toml" in proc.stderr
    claude_settings(repo, {})
    fake_llm.script(Reply(content="ok"))
    proc = kimicode(fake_llm, home, repo, "-p", "--trust", "look")
    assert proc.returncode == 0, proc.stderr
    assert marker.exists()  # trusted: the project's config.toml hook ran


def test_a_hanging_hook_is_killed_at_its_timeout(fake_llm: FakeLLM, home: Path, repo: Path, tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    claude_settings(repo, {"PreToolUse": group(f"echo $$ >> {pids}; sleep 300 & echo $! >> {pids}; wait", "Bash", 1)})
    fake_llm.script(Reply(tool_calls=[ToolCall("bash", {"command": "touch ran.txt"})]), Reply(content="ok"))
    proc = kimicode(fake_llm, home, repo, "-p", "-y", "--trust", "go")
    assert proc.returncode == 0, proc.stderr
    assert "was stopped after its timeout of 1s" in proc.stderr
    assert (repo / "ran.txt").exists()  # a hook that fails to answer blocks nothing
    for pid in [int(p) for p in pids.read_text().split()]:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # the hook and what it started are gone
