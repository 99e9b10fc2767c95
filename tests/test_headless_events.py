"""A headless run prints each event as the agent emits it: every step's lines in order, the result last,
and nothing after an interruption but the result."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.clirun import cli_env, run_cli, write_home_config
from tests.fake_llm import FakeLLM, Reply, ToolCall


def test_every_step_prints_its_call_then_its_result_and_the_result_comes_last(fake_llm: FakeLLM, tmp_path: Path) -> None:
    home, work = tmp_path / "home", tmp_path / "work"
    work.mkdir()
    write_home_config(home, "")
    fake_llm.script(*[Reply(tool_calls=[ToolCall("bash", {"command": f"echo step-{i}"})]) for i in range(4)], Reply(content="done"))
    proc = run_cli(["-p", "-y", "go", "--output-format", "stream-json"], home=home, cwd=work, base_url=fake_llm.base_url)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    calls = [(line["type"], line.get("content", "")) for line in lines if line["type"] in ("tool_use", "tool_result")]
    expected = []
    for i in range(4):
        expected += [("tool_use", ""), ("tool_result", f"step-{i}\n[exit code: 0]")]
    assert calls == expected
    assert lines[-1]["type"] == "result" and lines[-1]["result"] == "done" and types(lines).count("result") == 1
    fake_llm.script(*[Reply(tool_calls=[ToolCall("bash", {"command": f"echo step-{i}"})]) for i in range(4)], Reply(content="done"))
    text = run_cli(["-p", "-y", "go"], home=home, cwd=work, base_url=fake_llm.base_url)
    assert text.returncode == 0 and text.stdout.strip() == "done"
    progress = [line for line in text.stderr.splitlines() if line.startswith("→")]
    assert progress == [f"→ bash echo step-{i}" for i in range(4)]


def types(lines: list[dict[str, object]]) -> list[object]:
    return [line["type"] for line in lines]


def test_an_interrupted_run_ends_its_output_with_the_result(fake_llm: FakeLLM, tmp_path: Path) -> None:
    home, work = tmp_path / "home", tmp_path / "work"
    work.mkdir()
    write_home_config(home, "")
    fake_llm.script(Reply(tool_calls=[ToolCall("bash", {"command": "touch started; sleep 60"})]))
    proc = subprocess.Popen(
        [sys.executable, "-m", "kimicode", "-p", "-y", "wait", "--output-format", "stream-json"],
        cwd=work, env=cli_env(home, fake_llm.base_url), stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    for _ in range(600):  # until the command runs (bounded so a failure cannot hang)
        if (work / "started").exists():
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    lines = [json.loads(line) for line in out.splitlines()]
    types = [line["type"] for line in lines]
    assert "tool_use" in types and "tool_result" not in types
    assert types[-1] == "result" and types.count("result") == 1
    assert lines[-1]["is_error"] is True and "interrupted" in lines[-1]["result"]
    assert "Traceback" not in err
