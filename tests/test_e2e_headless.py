"""End-to-end: the real `kimicode -p` process against the scripted model server over HTTP."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.clirun import REPO, run_cli, write_home_config
from tests.fake_llm import Fault, FakeLLM, Reply, ToolCall

FAST_RETRIES = "retry_base_delay = 0.01\nmax_retries = 3\n"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "kimihome"
    write_home_config(home, FAST_RETRIES)
    return home


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "proj"
    repo.mkdir()
    (repo / "calc.py").write_text("def add(a, b):\n    return a - b\n")
    (repo / "test_calc.py").write_text(
        "from calc import add\n\nassert add(2, 3) == 5, 'add is wrong'\nprint('all tests passed')\n"
    )
    return repo


def kimicode(fake: FakeLLM, home: Path, cwd: Path, *args: str, stdin: str = "", **kw: object):
    return run_cli(list(args), home=home, cwd=cwd, base_url=fake.base_url, stdin=stdin, **kw)  # type: ignore[arg-type]


def test_fixes_a_buggy_repo_and_submits(fake_llm: FakeLLM, home: Path, repo: Path) -> None:
    fake_llm.script(
        Reply(reasoning="Let me look at the code.", tool_calls=[ToolCall("view", {"path": "calc.py"})]),
        Reply(
            reasoning="add subtracts; fix it.",
            tool_calls=[ToolCall("strreplace", {"path": "calc.py", "old_str": "a - b", "new_str": "a + b"})],
        ),
        Reply(tool_calls=[ToolCall("bash", {"command": "python test_calc.py"})]),
        Reply(content="Fixed.", tool_calls=[ToolCall("submit", {"summary": "Fixed add() to return a + b."})]),
    )
    proc = kimicode(fake_llm, home, repo, "-p", "-y", "fix the failing test")
    assert proc.returncode == 0, proc.stderr
    assert (repo / "calc.py").read_text() == "def add(a, b):\n    return a + b\n"
    assert "Fixed add() to return a + b." in proc.stdout
    assert len(fake_llm.chat_requests) == 4
    first = fake_llm.chat_requests[0].body
    assert first["messages"][0]["role"] == "system"
    assert first["messages"][-1] == {"role": "user", "content": "fix the failing test"}
    assert {"bash", "view", "createfile", "strreplace", "insert", "submit"} <= set(fake_llm.chat_requests[0].tool_names())
    # the view result carried the numbered file
    second = fake_llm.chat_requests[1].body["messages"]
    assert "return a - b" in second[-1]["content"] and second[-1]["role"] == "tool"
    # reasoning goes back on the assistant message that made tool calls; ids are echoed exactly
    assistant = second[-2]
    assert assistant["reasoning_content"] == "Let me look at the code."
    assert second[-1]["tool_call_id"] == assistant["tool_calls"][0]["id"]
    # the test run's output reached the model
    fourth = fake_llm.chat_requests[3].body["messages"]
    assert "all tests passed" in fourth[-1]["content"]


def test_request_carries_kimi_settings(fake_llm: FakeLLM, home: Path, repo: Path) -> None:
    fake_llm.script(Reply(content="hello"), Reply(content="hi"))
    proc = kimicode(fake_llm, home, repo, "-p", "say hello", "--output-format", "json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    body = fake_llm.chat_requests[0].body
    assert body["model"] == "kimi-k2.5"
    assert body["stream"] is True
    assert body["thinking"] == {"type": "enabled"}
    assert (body["temperature"], body["top_p"]) == (1.0, 0.95)
    assert body["prompt_cache_key"] == result["session_id"]
    assert 0 < body["max_completion_tokens"] <= 262_144
    assert fake_llm.chat_requests[0].headers["authorization"] == "Bearer test-key"

    proc = kimicode(fake_llm, home, repo, "-p", "say hi", "--mode", "instant", "-m", "kimi-k2.5")
    assert proc.returncode == 0, proc.stderr
    body = fake_llm.chat_requests[1].body
    assert body["thinking"] == {"type": "disabled"}
    assert (body["temperature"], body["top_p"]) == (0.6, 0.95)


def test_json_output_and_stdin_task(fake_llm: FakeLLM, home: Path, repo: Path) -> None:
    # prices configured for the model: a cost is counted on any endpoint (kimicode/llm/prices.py)
    write_home_config(home, FAST_RETRIES + '[prices."kimi-k2.5"]\ninput = 0.6\ncached_input = 0.1\noutput = 3.0\n')
    fake_llm.script(Reply(content="The file has 2 lines.", usage={"prompt_tokens": 1000, "completion_tokens": 10, "total_tokens": 1010, "cached_tokens": 400}))
    proc = kimicode(fake_llm, home, repo, "-p", "--output-format", "json", stdin="how long is calc.py?\n")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["type"] == "result" and result["subtype"] == "success" and result["is_error"] is False
    assert result["result"] == "The file has 2 lines."
    assert result["submitted"] is False and result["num_steps"] == 1
    assert result["usage"]["input_tokens"] == 1000 and result["usage"]["cached_input_tokens"] == 400
    # 600 uncached at $0.60/M + 400 cached at $0.10/M + 10 out at $3/M
    assert result["usage"]["cost_usd"] == pytest.approx((600 * 0.6 + 400 * 0.1 + 10 * 3.0) / 1e6)
    assert isinstance(result["duration_ms"], int) and result["session_id"]
    assert fake_llm.chat_requests[0].last_user_text() == "how long is calc.py?"


def test_argument_is_instruction_and_stdin_is_context(fake_llm: FakeLLM, home: Path, repo: Path) -> None:
    fake_llm.script(Reply(content="It is a traceback."))
    proc = kimicode(fake_llm, home, repo, "-p", "explain this log", stdin="Traceback: boom\n")
    assert proc.returncode == 0, proc.stderr
    text = fake_llm.chat_requests[0].last_user_text()
    assert text.startswith("explain this log") and "Traceback: boom" in text
    assert proc.stdout.strip() == "It is a traceback."


def test_stream_json_events(fake_llm: FakeLLM, home: Path, repo: Path) -> None:
    fake_llm.script(
        Reply(content="Looking.", reasoning="think", tool_calls=[ToolCall("view", {"path": "calc.py"})]),
        Reply(content="Done looking."),
    )
    proc = kimicode(fake_llm, home, repo, "-p", "look", "--output-format", "stream-json")
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert lines[0]["type"] == "system" and lines[0]["subtype"] == "init"
    assert lines[0]["tools"] == fake_llm.requests[0].tool_names()  # the tools offered, as the model saw them
    types = [line["type"] for line in lines]
    assert types[-1] == "result"
    assert {"assistant", "tool_use", "tool_result", "usage"} <= set(types)
    tool_use = next(line for line in lines if line["type"] == "tool_use")
    assert tool_use["name"] == "view" and tool_use["input"] == {"path": "calc.py"}
    assistant = next(line for line in lines if line["type"] == "assistant")
    assert assistant["text"] == "Looking." and assistant["thinking"] == "think"
    assert types.index("tool_use") < types.index("tool_result") < types.index("result")


def test_missing_key_is_one_line_and_exit_2(home: Path, repo: Path) -> None:
    proc = run_cli(["-p", "hi"], home=home, cwd=repo, env_extra={"KIMI_API_KEY": ""})
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "KIMI_API_KEY" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_rejected_key_is_one_line_and_exit_2(fake_llm: FakeLLM, home: Path, repo: Path) -> None:
    fake_llm.script(Reply(fault=Fault.auth()))
    proc = kimicode(fake_llm, home, repo, "-p", "hi")
    assert proc.returncode == 2
    assert "rejected the key" in proc.stderr and "Traceback" not in proc.stderr
    assert len(fake_llm.chat_requests) == 1  # a bad key is not retried


def test_no_task_is_a_usage_error(home: Path, repo: Path) -> None:
    proc = run_cli(["-p"], home=home, cwd=repo)
    assert proc.returncode == 2 and "no task" in proc.stderr


# Every exit of a json run prints one result object, whatever stopped it (DESIGN.md B.10).
EARLY_EXITS = {
    "no key": (["-p", "hi"], {"KIMI_API_KEY": ""}, "config", "KIMI_API_KEY"),
    "no task": (["-p"], {}, "usage", "no task"),
    "bad mode": (["-p", "--mode", "fast", "hi"], {}, "usage", "--mode"),
    "unknown option": (["-p", "--no-such-flag", "hi"], {}, "usage", "--no-such-flag"),
    "missing image": (["-p", "--image", "nowhere.png", "hi"], {}, "usage", "nowhere.png"),
    "unknown session": (["-p", "-r", "20990101-000000-abcdef", "hi"], {}, "session", "20990101-000000-abcdef"),
    "broken config": (["-p", "hi"], {"BROKEN": "1"}, "config", "config.toml"),
}


@pytest.mark.parametrize("fmt", ["json", "stream-json"])
@pytest.mark.parametrize("case", list(EARLY_EXITS))
def test_every_exit_of_a_json_run_prints_one_result_object(case: str, fmt: str, home: Path, repo: Path) -> None:
    args, env, kind, named = EARLY_EXITS[case]
    env = dict(env)
    if env.pop("BROKEN", None):
        write_home_config(home, "max_steps = [not a number\n")
    proc = run_cli([*args, "--output-format", fmt], home=home, cwd=repo, env_extra=env)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 1, proc.stdout
    result = json.loads(lines[0])
    assert result["type"] == "result" and result["is_error"] is True and result["subtype"] == "error"
    assert result["error_kind"] == kind
    assert named in result["result"]
    assert named in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    "fault",
    [Fault.http(500), Fault.http(503), Fault.overloaded(), Fault.drop_mid_stream(after_chunks=2), Fault.malformed_chunk()],
    ids=["500", "503", "overloaded", "drop", "malformed"],
)
def test_transient_faults_are_retried(fault: Fault, fake_llm: FakeLLM, home: Path, repo: Path) -> None:
    fake_llm.script(Reply(content="partial answer that breaks", fault=fault), Reply(content="recovered answer"))
    proc = kimicode(fake_llm, home, repo, "-p", "hi")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "recovered answer"
    assert "retrying" in proc.stderr
    assert len(fake_llm.chat_requests) == 2
    assert fake_llm.chat_requests[0].body == fake_llm.chat_requests[1].body  # the same request is sent again


def test_rate_limit_honours_retry_after(fake_llm: FakeLLM, home: Path, repo: Path) -> None:
    fake_llm.script(Reply(fault=Fault.rate_limit(retry_after=0.5)), Reply(content="ok"))
    proc = kimicode(fake_llm, home, repo, "-p", "hi")
    assert proc.returncode == 0, proc.stderr
    assert fake_llm.chat_requests[1].time - fake_llm.chat_requests[0].time >= 0.5


def test_persistent_failure_exits_1_with_one_line(fake_llm: FakeLLM, home: Path, repo: Path) -> None:
    fake_llm.script(*[Reply(fault=Fault.http(500, message="engine exploded")) for _ in range(4)])
    proc = kimicode(fake_llm, home, repo, "-p", "hi", "--output-format", "json")
    assert proc.returncode == 1
    result = json.loads(proc.stdout)
    assert result["subtype"] == "error" and result["is_error"] is True
    assert "engine exploded" in result["result"] and "gave up after 4 attempts" in result["result"]
    assert "Traceback" not in proc.stderr


def test_truncated_tool_arguments_reach_the_model_as_an_error(fake_llm: FakeLLM, home: Path, repo: Path) -> None:
    fake_llm.script(
        Reply(tool_calls=[ToolCall("createfile", {"path": "new.txt", "content": "hello world"})], fault=Fault.truncated_tool_args()),
        Reply(tool_calls=[ToolCall("createfile", {"path": "new.txt", "content": "hello world"})]),
        Reply(content="created"),
    )
    proc = kimicode(fake_llm, home, repo, "-p", "-y", "make new.txt")
    assert proc.returncode == 0, proc.stderr
    error = fake_llm.chat_requests[1].tool_results()[-1]["content"]
    assert "not valid JSON" in error
    assert (repo / "new.txt").read_text() == "hello world"


def test_unknown_tool_and_bad_arguments_are_errors_for_the_model(fake_llm: FakeLLM, home: Path, repo: Path) -> None:
    fake_llm.script(
        Reply(tool_calls=[ToolCall("teleport", {"to": "mars"}), ToolCall("view", {"view_range": [1, 2]})]),
        Reply(content="ok"),
    )
    proc = kimicode(fake_llm, home, repo, "-p", "hi")
    assert proc.returncode == 0, proc.stderr
    results = fake_llm.chat_requests[1].tool_results()
    assert "Unknown tool 'teleport'" in results[0]["content"]
    assert "missing required argument(s): path" in results[1]["content"]


def test_max_steps_exits_1(fake_llm: FakeLLM, home: Path, repo: Path) -> None:
    fake_llm.script(*[Reply(tool_calls=[ToolCall("view", {"path": "calc.py", "view_range": [1, i + 1 if i < 2 else -1]})]) for i in range(3)])
    proc = kimicode(fake_llm, home, repo, "-p", "loop", "--max-steps", "2", "--output-format", "json")
    assert proc.returncode == 1
    result = json.loads(proc.stdout)
    assert result["subtype"] == "error_max_steps" and result["num_steps"] == 2
    assert len(fake_llm.chat_requests) == 2


def test_headless_without_yolo_refuses_writes_but_reads(fake_llm: FakeLLM, home: Path, repo: Path) -> None:
    fake_llm.script(
        Reply(tool_calls=[ToolCall("bash", {"command": "touch pwned"}), ToolCall("view", {"path": "calc.py"})]),
        Reply(content="I could not run it."),
    )
    proc = kimicode(fake_llm, home, repo, "-p", "touch a file")
    assert proc.returncode == 0, proc.stderr
    assert not (repo / "pwned").exists()
    assert "refused bash touch pwned" in proc.stderr and "-y" in proc.stderr
    results = fake_llm.chat_requests[1].tool_results()
    assert "not approve" in results[0]["content"] and "return a - b" in results[1]["content"]


def test_tool_calls_in_one_reply_run_concurrently(fake_llm: FakeLLM, home: Path, repo: Path) -> None:
    # Each command waits for the other's file: only concurrent execution lets both finish.
    wait = "touch {me}; for i in $(seq 100); do [ -e {other} ] && echo met-{me} && exit 0; sleep 0.05; done; echo alone; exit 1"
    fake_llm.script(
        Reply(tool_calls=[
            ToolCall("bash", {"command": wait.format(me="a", other="b")}),
            ToolCall("bash", {"command": wait.format(me="b", other="a")}),
        ]),
        Reply(content="both met"),
    )
    proc = kimicode(fake_llm, home, repo, "-p", "-y", "rendezvous")
    assert proc.returncode == 0, proc.stderr
    results = [r["content"] for r in fake_llm.chat_requests[1].tool_results()]
    assert "met-a" in results[0] and "met-b" in results[1]


def test_edits_of_one_file_in_one_reply_run_in_their_order(fake_llm: FakeLLM, home: Path, repo: Path) -> None:
    # Calls run concurrently, but a model that writes a file and then edits and reads it in the same reply
    # means "in this order" (str_replace_editor's semantics): calls on the same path wait for the earlier ones.
    fake_llm.script(
        Reply(tool_calls=[
            ToolCall("createfile", {"path": "pkg/new.py", "content": "a = 1\n"}),
            ToolCall("strreplace", {"path": "pkg/new.py", "old_str": "a = 1", "new_str": "a = 2"}),
            ToolCall("insert", {"path": "pkg/new.py", "insert_line": 1, "new_str": "b = 3"}),
            ToolCall("view", {"path": "pkg/new.py"}),
            ToolCall("view", {"path": "pkg"}),
        ]),
        Reply(content="done"),
    )
    proc = kimicode(fake_llm, home, repo, "-p", "-y", "write it")
    assert proc.returncode == 0, proc.stderr
    assert (repo / "pkg" / "new.py").read_text() == "a = 2\nb = 3\n"
    results = [r["content"] for r in fake_llm.chat_requests[1].tool_results()]
    assert "a = 2" in results[3] and "b = 3" in results[3], results
    assert "new.py" in results[4], results


def test_repeated_identical_calls_get_a_warning(fake_llm: FakeLLM, home: Path, repo: Path) -> None:
    fake_llm.script(*[Reply(tool_calls=[ToolCall("view", {"path": "calc.py"})]) for _ in range(3)], Reply(content="ok"))
    proc = kimicode(fake_llm, home, repo, "-p", "look")
    assert proc.returncode == 0, proc.stderr
    assert "exact view call" not in fake_llm.chat_requests[2].tool_results()[-1]["content"]
    assert "this exact view call 3 times" in fake_llm.chat_requests[3].tool_results()[-1]["content"]


def test_version_and_help_do_not_import_heavy_modules(tmp_path: Path) -> None:
    probe = (
        "import sys, runpy\n"
        "sys.argv = ['kimicode', sys.argv[1]]\n"
        "try:\n    runpy.run_module('kimicode', run_name='__main__')\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('openai', 'mcp', 'cv2', 'PIL', 'git', 'playwright', 'httpx2', 'httpx', 'av', 'acp', 'trafilatura', 'tree_sitter', 'ray') if m in sys.modules]\n"
        "print('HEAVY=' + ','.join(heavy))\n"
    )
    for flag in ("--version", "--help"):
        proc = subprocess.run([sys.executable, "-c", probe, flag], cwd=REPO, capture_output=True, text=True, timeout=30)
        assert proc.returncode == 0, proc.stderr
        assert "HEAVY=\n" in proc.stdout, proc.stdout


def test_sigint_interrupts_with_130_and_kills_the_command(fake_llm: FakeLLM, home: Path, repo: Path) -> None:
    import os
    import signal
    import time

    from tests.clirun import cli_env

    fake_llm.script(Reply(tool_calls=[ToolCall("bash", {"command": "echo $$ > shell.pid; sleep 60"})]))
    proc = subprocess.Popen(
        # Unsandboxed: the shell's $$ must be a host PID for this check (tests/security covers the sandbox).
        [sys.executable, "-m", "kimicode", "-p", "-y", "wait", "--output-format", "json", "--sandbox", "off"],
        cwd=repo, env=cli_env(home, fake_llm.base_url), stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    pid_file = repo / "shell.pid"
    for _ in range(600):
        if pid_file.exists() and pid_file.read_text().strip():
            break
        time.sleep(0.05)
    shell_pid = int(pid_file.read_text())
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, err
    result = json.loads(out)
    assert result["is_error"] is True and "interrupted" in result["result"]
    assert "Traceback" not in err
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{shell_pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            break
        if state == "Z":
            break
        time.sleep(0.05)
    else:
        os.kill(shell_pid, signal.SIGKILL)
        raise AssertionError("the command's shell survived the interrupt")


def test_resume_without_an_id_in_headless_is_a_usage_error(home: Path, repo: Path) -> None:
    proc = run_cli(["-p", "hi", "-r"], home=home, cwd=repo)
    assert proc.returncode == 2
    assert "kimicode sessions" in proc.stderr and "Traceback" not in proc.stderr
