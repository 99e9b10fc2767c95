"""End-to-end, the real `kimicode -p`: steering from stdin, --plan, the todo list in stream-json, and the
dev-server loop in the real sandbox (a background server, real Chromium screenshots, a fix, nothing left)."""

from __future__ import annotations

import base64
import io
import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.clirun import cli_env, run_cli
from tests.fake_llm import FakeLLM, Reply, ToolCall
from tests.fake_llm.recorded import RecordedRequest
from tests.replpty import processes_with, wait_until
from tests.sandboxing import needs_bwrap

# KIMICODE_HOME with quick retries (conftest's home): a faulty reply fails in milliseconds.
pytestmark = pytest.mark.quick_retries


def user_line(text: str) -> str:
    return json.dumps({"type": "user", "content": text}) + "\n"


def start(fake: FakeLLM, home: Path, cwd: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "kimicode", *args],
        cwd=cwd,
        env=cli_env(home, fake.base_url),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def events(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


# -- steering from a pipe ---------------------------------------------------------------------------------


def test_stream_json_input_steers_the_running_turn_and_the_run_ends_with_the_agent(
    fake_llm: FakeLLM, home: Path, workspace: Path
) -> None:
    fake_llm.script(
        Reply(tool_calls=[ToolCall("bash", {"command": "sleep 1.5; echo built"})]),
        Reply(content="Built, and port 9000 noted"),
    )
    proc = start(fake_llm, home, workspace, "-p", "-y", "--input-format", "stream-json", "--output-format", "stream-json")
    assert proc.stdin is not None
    proc.stdin.write(user_line("build it"))
    proc.stdin.flush()
    assert fake_llm.wait_for_requests(1, 20)
    proc.stdin.write("this is not json\n" + user_line("and use port 9000"))
    proc.stdin.flush()
    # stdin stays open: the run ends when the agent finishes, not at EOF
    assert proc.wait(timeout=60) == 0
    out, err = proc.stdout.read(), proc.stderr.read()  # type: ignore[union-attr]
    proc.stdin.close()
    assert len(fake_llm.chat_requests) == 2
    first, second = fake_llm.chat_requests
    assert first.messages[-1] == {"role": "user", "content": "build it"}
    assert second.messages[-2]["role"] == "tool" and "built" in second.messages[-2]["content"]
    assert second.messages[-1] == {"role": "user", "content": "and use port 9000"}
    shown = events(out)
    assert {"type": "user", "content": "and use port 9000", "agent": ""} in shown
    kinds = [e["type"] for e in shown]
    assert kinds.index("tool_result") < kinds.index("user") < kinds.index("result")
    assert shown[-1]["result"] == "Built, and port 9000 noted"
    assert "stdin line 2 skipped: not JSON" in err


def test_a_message_that_arrives_during_the_final_answer_keeps_the_turn_going(
    fake_llm: FakeLLM, home: Path, workspace: Path
) -> None:
    fake_llm.script(Reply(content="Here is my answer", delay=2.0), Reply(content="Answer, with the tests too"))
    proc = start(fake_llm, home, workspace, "-p", "--input-format", "stream-json", "--output-format", "json")
    assert proc.stdin is not None
    proc.stdin.write(user_line("explain the module"))
    proc.stdin.flush()
    assert fake_llm.wait_for_requests(1, 20)
    proc.stdin.write(user_line("cover the tests as well"))
    proc.stdin.flush()
    out, err = proc.communicate(timeout=60)  # closes stdin: EOF ends the input, the run goes on
    assert proc.returncode == 0, err
    result = json.loads(out)
    assert result["result"] == "Answer, with the tests too" and result["num_steps"] == 2
    second = fake_llm.chat_requests[1].messages
    assert second[-2] == {"role": "assistant", "content": "Here is my answer"}
    assert second[-1] == {"role": "user", "content": "cover the tests as well"}


def test_stream_json_input_without_a_user_message_is_a_usage_error(fake_llm: FakeLLM, home: Path, workspace: Path) -> None:
    proc = run_cli(
        ["-p", "--input-format", "stream-json", "--output-format", "json"],
        home=home, cwd=workspace, base_url=fake_llm.base_url, stdin='{"type": "system"}\n',
    )
    assert proc.returncode == 2
    assert json.loads(proc.stdout)["error_kind"] == "usage"
    assert "stdin line 1 skipped: not a user message" in proc.stderr
    assert not fake_llm.chat_requests


# -- plan mode headless ------------------------------------------------------------------------------------


def test_plan_prints_the_plan_and_changes_nothing(fake_llm: FakeLLM, home: Path, workspace: Path) -> None:
    plan = "1. Add `greet()` to app.py\n2. Test it with pytest"
    fake_llm.script(
        Reply(tool_calls=[ToolCall("view", {"path": "."})]),
        Reply(tool_calls=[ToolCall("createfile", {"path": "app.py", "content": "def greet(): ...\n"})]),
        Reply(tool_calls=[ToolCall("bash", {"command": "touch marker"})]),
        Reply(tool_calls=[ToolCall("propose_plan", {"plan": plan})]),
    )
    proc = run_cli(["-p", "-y", "--plan", "--output-format", "json", "add greet"], home=home, cwd=workspace, base_url=fake_llm.base_url)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["result"] == plan and result["subtype"] == "success"
    assert list(workspace.iterdir()) == []  # -y approves nothing in plan mode
    assert "refused createfile app.py (plan mode" in proc.stderr and "refused bash touch marker (plan mode" in proc.stderr
    first = fake_llm.chat_requests[0]
    assert first.messages[-1]["content"].startswith("[Plan mode is on]") and "propose_plan" in first.tool_names()


def test_plan_text_output_is_the_plan(fake_llm: FakeLLM, home: Path, workspace: Path) -> None:
    fake_llm.script(Reply(tool_calls=[ToolCall("propose_plan", {"plan": "Step one.\nStep two."})]))
    proc = run_cli(["-p", "--plan", "plan it"], home=home, cwd=workspace, base_url=fake_llm.base_url)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "Step one.\nStep two.\n"


# -- the todo list -----------------------------------------------------------------------------------------


def test_the_todo_list_is_streamed_and_kept_in_the_session(fake_llm: FakeLLM, home: Path, workspace: Path) -> None:
    items = [{"content": "reproduce", "status": "done"}, {"content": "fix", "status": "in_progress"}]
    fake_llm.script(
        Reply(tool_calls=[ToolCall("todo", {"items": items})]),
        Reply(tool_calls=[ToolCall("todo", {"items": [{"content": "fix", "status": "bogus"}]})]),
        Reply(content="Fixed"),
    )
    proc = run_cli(["-p", "--output-format", "stream-json", "fix"], home=home, cwd=workspace, base_url=fake_llm.base_url)
    assert proc.returncode == 0, proc.stderr
    shown = events(proc.stdout)
    todos = [e for e in shown if e["type"] == "todo"]
    assert todos == [{"type": "todo", "items": items, "agent": ""}]  # the invalid list changed nothing
    assert "status must be one of pending, in_progress, done" in fake_llm.chat_requests[2].tool_results()[-1]["content"]
    assert "todo" in fake_llm.chat_requests[0].tool_names()
    session = next(home.glob("sessions/*/*.jsonl"))
    records = [json.loads(line) for line in session.read_text().splitlines()]
    assert {"type": "todo", "items": items} in records


# -- the dev-server loop, in the real sandbox -------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def screenshot_pixels(request: RecordedRequest) -> list[Any]:
    from PIL import Image as PILImage

    found = []
    for message in request.messages:
        content = message.get("content")
        for part in content if isinstance(content, list) else []:
            if part.get("type") == "image_url":
                data = part["image_url"]["url"].split(",", 1)[1]
                found.append(PILImage.open(io.BytesIO(base64.b64decode(data))).convert("RGB"))
    return found


def colour_at_box(image: Any) -> tuple[int, int, int]:
    scale = image.width / 1280
    return image.getpixel((int(200 * scale), int(175 * scale)))


PAGE = (
    "<html><body style='margin:0;background:#fff'><div id='box' style='position:absolute;left:100px;top:100px;"
    "width:200px;height:150px;background:rgb(200,0,0)'></div></body></html>\n"
)


@needs_bwrap
def test_start_a_dev_server_screenshot_it_fix_and_look_again_then_nothing_is_left(
    fake_llm: FakeLLM, home: Path, workspace: Path
) -> None:
    (workspace / "index.html").write_text(PAGE)
    port, marker = free_port(), f"devserver-{uuid.uuid4().hex[:8]}"
    url = f"http://localhost:{port}/index.html"
    fake_llm.script(
        Reply(tool_calls=[ToolCall("bash", {"command": f"exec -a {marker} python3 -m http.server {port}", "background": True})]),
        Reply(tool_calls=[ToolCall("screenshot", {"target": url})]),
        Reply(tool_calls=[ToolCall("strreplace", {"path": "index.html", "old_str": "rgb(200,0,0)", "new_str": "rgb(0,0,200)"})]),
        Reply(tool_calls=[ToolCall("screenshot", {"target": url})]),
        Reply(tool_calls=[ToolCall("task_stop", {"task_id": "1"})]),
        Reply(content="The box is blue now."),
    )
    # A trusted folder with the sandbox: commands run unasked, contained (no -y).
    proc = run_cli(
        ["-p", "--trust", "-y", "--output-format", "stream-json", "make the box blue"],
        home=home, cwd=workspace, base_url=fake_llm.base_url, timeout=180,
    )
    assert proc.returncode == 0, proc.stderr
    requests = fake_llm.chat_requests
    started = requests[1].tool_results()[-1]["content"]
    assert f"listening on 127.0.0.1:{port} (bridged from the sandbox)" in started
    assert {"task_output", "task_stop"} <= set(requests[1].tool_names())  # offered once a task exists
    assert "task_output" not in requests[0].tool_names()
    before, after = screenshot_pixels(requests[2])[-1], screenshot_pixels(requests[4])[-1]
    red, blue = colour_at_box(before), colour_at_box(after)
    assert red[0] > 150 and red[2] < 60, red
    assert blue[2] > 150 and blue[0] < 60, blue
    assert "task 1 stopped" in requests[5].tool_results()[-1]["content"]
    tasks = [e for e in events(proc.stdout) if e["type"] == "task"]
    assert tasks[0]["state"] == "running" and tasks[-1]["state"] == "stopped"
    assert any(port in e["ports"] for e in tasks)
    assert not processes_with(marker)
    log = next(home.glob("sessions/*/*/task-1.log")).read_text()
    assert "GET /index.html" in log  # the browser's requests reached the sandboxed server


@needs_bwrap
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_signal_to_kimicode_ends_its_background_tasks(
    fake_llm: FakeLLM, home: Path, workspace: Path, sig: signal.Signals
) -> None:
    port, marker = free_port(), f"devserver-{uuid.uuid4().hex[:8]}"
    fake_llm.script(
        Reply(tool_calls=[ToolCall("bash", {"command": f"exec -a {marker} python3 -m http.server {port}", "background": True})]),
        Reply(tool_calls=[ToolCall("bash", {"command": "sleep 60"})]),
    )
    proc = start(fake_llm, home, workspace, "-p", "--trust", "serve it")
    proc.stdin.close()  # type: ignore[union-attr]
    assert wait_until(lambda: len(fake_llm.chat_requests) >= 2, 30), "the server was never started"
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
        assert response.status == 200
    proc.send_signal(sig)
    assert proc.wait(timeout=30) == 128 + sig
    assert wait_until(lambda: not processes_with(marker), 5), "the background server outlived kimicode"
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)


@pytest.mark.parametrize("sandbox", ["off", pytest.param("workspace-write", marks=needs_bwrap)])
def test_what_commands_started_ends_when_kimicode_is_killed_outright(
    fake_llm: FakeLLM, home: Path, workspace: Path, sandbox: str
) -> None:
    # SIGKILL (the OOM killer, a crash, `kill -9`) leaves kimicode no time to clean up. What its commands
    # started must end anyway: a background server, a foreground command, and one that escaped its process
    # group and parent (`setsid`, reparented away from kimicode when kimicode dies).
    tag = uuid.uuid4().int % 10**6
    server, foreground, escaped = f"devserver-{tag}", f"sleep 61.{tag}", f"sleep 62.{tag}"
    port = free_port()
    fake_llm.script(
        # Found by a variable in its environment: argv[0] (`exec -a`) is lost where python3 is a wrapper script.
        Reply(tool_calls=[ToolCall("bash", {"command": f"TEST_MARK={server} exec python3 -m http.server {port}", "background": True})]),
        Reply(tool_calls=[ToolCall("bash", {"command": f"(setsid {escaped} &) ; {foreground}"})]),
    )
    proc = start(fake_llm, home, workspace, "-p", "-y", "--trust", "--sandbox", sandbox, "serve it")
    proc.stdin.close()  # type: ignore[union-attr]
    try:
        assert wait_until(lambda: processes_in_env(f"TEST_MARK={server}") and processes_with(foreground) and processes_with(escaped), 30)
    finally:
        proc.kill()
    proc.wait(timeout=10)
    assert wait_until(lambda: not processes_in_env(f"TEST_MARK={server}"), 10), f"{server} outlived a killed kimicode"
    for name in (foreground, escaped):
        assert wait_until(lambda: not processes_with(name), 10), f"{name} outlived a killed kimicode"


def processes_in_env(entry: str) -> list[int]:
    """Ids of live processes whose environment holds ``entry`` (NAME=value)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if entry.encode() in environ and state != "Z":
            found.append(int(pid))
    return found


def test_a_sub_agent_todo_list_reaches_the_stream(fake_llm: FakeLLM, home: Path, workspace: Path) -> None:
    items = [{"content": "check the parser", "status": "in_progress"}]
    fake_llm.script(
        Reply(tool_calls=[ToolCall("spawn_agents", {"agents": [{"role": "checker", "task": "check the parser"}]})]),
        Reply(tool_calls=[ToolCall("todo", {"items": items})]),  # the sub-agent
        Reply(tool_calls=[ToolCall("submit", {"summary": "parser checked"})]),
        Reply(content="All checked."),
    )
    proc = run_cli(["-p", "--mode", "swarm", "--output-format", "stream-json", "check"], home=home, cwd=workspace, base_url=fake_llm.base_url)
    assert proc.returncode == 0, proc.stderr
    assert {"type": "todo", "items": items, "agent": "sub-1"} in events(proc.stdout)
    assert "todo" in fake_llm.chat_requests[1].tool_names()  # sub-agents have their own list
