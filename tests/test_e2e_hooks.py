"""End-to-end: hooks in Claude Code's format (and kimicode's) through the real `kimicode -p` process and the
scripted model server: what runs, what is blocked, and the bytes the model is sent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

from kimicode.extensions.hooks_outcome import BLOCK_EXIT
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
    assert proc.returncode == 0, proc.stderr
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


def test_a_hook_deny_beats_yolo(fake_llm: FakeLLM, home: Path, repo: Path) -> None:
    answer = {"hookSpecificOutput": {"hookEventName": "PreToolUse", "permissionDecision": "deny",
                                     "permissionDecisionReason": "no network tools here"}}
    write_home_config(home, QUICK + (
        f"[[hooks.PreToolUse]]\nmatcher = \"bash\"\ncommand = {json.dumps(echo(answer))}\n"
    ))
    fake_llm.script(Reply(tool_calls=[ToolCall("bash", {"command": "touch ran.txt"})]), Reply(content="ok"))
    proc = kimicode(fake_llm, home, repo, "-p", "-y", "go")
    assert proc.returncode == 0, proc.stderr
    assert not (repo / "ran.txt").exists()
    assert "no network tools here" in last_content(fake_llm, 1)


ALLOW = {"hookSpecificOutput": {"hookEventName": "PreToolUse", "permissionDecision": "allow"}}


def test_a_hook_allow_never_beats_a_deny_rule(fake_llm: FakeLLM, home: Path, repo: Path) -> None:
    write_home_config(home, QUICK + (
        f"[[hooks.PreToolUse]]\ncommand = {json.dumps(echo(ALLOW))}\n"
        '[permissions]\ndeny = ["bash(touch denied.txt)"]\n'
    ))
    fake_llm.script(
        Reply(tool_calls=[ToolCall("bash", {"command": "touch denied.txt"})]),
        Reply(tool_calls=[ToolCall("bash", {"command": "touch allowed.txt"})]),
        Reply(content="ok"),
    )
    proc = kimicode(fake_llm, home, repo, "-p", "go")  # no -y: only the hook's allow lets a command run
    assert proc.returncode == 0, proc.stderr
    assert not (repo / "denied.txt").exists()
    assert "denied by the rule" in last_content(fake_llm, 1)
    assert (repo / "allowed.txt").exists()


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


def test_a_hook_allow_answers_for_a_file_edit_nobody_could_approve(fake_llm: FakeLLM, home: Path, repo: Path) -> None:
    write_home_config(home, QUICK + f"[[hooks.PreToolUse]]\nmatcher = \"Write\"\ncommand = {json.dumps(echo(ALLOW))}\n")
    fake_llm.script(Reply(tool_calls=[ToolCall("createfile", {"path": "notes.md", "content": "n\n"})]), Reply(content="ok"))
    proc = kimicode(fake_llm, home, repo, "-p", "write")  # headless without -y: refused unless the hook allows
    assert proc.returncode == 0, proc.stderr
    assert (repo / "notes.md").read_text() == "n\n"


def test_a_hook_rewrites_the_call_and_the_policy_decides_on_the_rewrite(
    fake_llm: FakeLLM, home: Path, repo: Path, tmp_path: Path
) -> None:
    rewrite = script(tmp_path, "rewrite.py", (
        "call = json.load(sys.stdin)\nnew = dict(call['tool_input'], command='echo rewritten > out.txt')\n"
        "print(json.dumps({'systemMessage': 'the command was rewritten',\n"
        "                  'hookSpecificOutput': {'hookEventName': 'PreToolUse', 'updatedInput': new}}))\n"
    ))
    claude_settings(repo, {"PreToolUse": group(rewrite, "Bash")})
    fake_llm.script(
        Reply(tool_calls=[ToolCall("bash", {"command": "touch ran.txt"})]),
        Reply(tool_calls=[ToolCall("bash", {"command": "touch second.txt"})]),
        Reply(content="ok"),
    )
    proc = kimicode(fake_llm, home, repo, "-p", "-y", "--trust", "go")
    assert proc.returncode == 0, proc.stderr
    assert (repo / "out.txt").read_text() == "rewritten\n"
    assert not (repo / "ran.txt").exists() and not (repo / "second.txt").exists()
    assert "the command was rewritten" in proc.stderr
    # the rewritten command is what the policy weighs: a deny rule for it refuses the harmless `ls` asked for
    (repo / "out.txt").unlink()
    write_home_config(home, QUICK + '[permissions]\ndeny = ["bash(echo *)"]\n')
    fake_llm.script(Reply(tool_calls=[ToolCall("bash", {"command": "ls"})]), Reply(content="ok"))
    proc = kimicode(fake_llm, home, repo, "-p", "-y", "--trust", "go")
    assert proc.returncode == 0, proc.stderr
    assert not (repo / "out.txt").exists()
    assert "denied by the rule" in last_content(fake_llm, 4)
