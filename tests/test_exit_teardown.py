"""The end of a headless run: everything printed and recorded, nothing of the run left behind (processes,
sandbox folders, placeholders), whether it ends on its own (without the interpreter's teardown,
frontends/common/quick_exit.py) or is killed outright (bubblewrap dies with kimicode, the watchdog ends the
rest)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.clirun import REPO, cli_env, write_home_config
from tests.fake_llm import FakeLLM, Reply, ToolCall

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc and bubblewrap are Linux's")

LONG_ANSWER = "x" * 300_000 + " END-OF-ANSWER"


def _places(tmp_path: Path) -> tuple[Path, Path, Path]:
    home, ws, tmp = tmp_path / "home", tmp_path / "ws", tmp_path / "tmp"
    ws.mkdir()
    tmp.mkdir()
    (ws / "keep.txt").write_text("mine\n")
    write_home_config(home, "")
    return home, ws, tmp


def _of_the_run(tmp_path: Path) -> list[str]:
    """Processes whose command line, working folder or root lies in ``tmp_path`` (the run's workspace, its
    home, its temporary folders): bubblewrap, the supervisor, the commands, the watchdog."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{name}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            places = [os.readlink(f"/proc/{name}/{link}") for link in ("cwd", "root")]
        except OSError:
            continue
        if str(tmp_path) in cmdline or any(place.startswith(str(tmp_path)) for place in places):
            found.append(f"{name}: {cmdline}")
    return found


def _gone_soon(tmp_path: Path) -> list[str]:
    """What of the run is still there once it had its chance to go (a dying process is reaped by init)."""
    deadline = time.monotonic() + 10
    left = _of_the_run(tmp_path)
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = _of_the_run(tmp_path)
    return left


def test_a_run_of_sandboxed_steps_ends_with_all_printed_and_recorded_and_nothing_left(tmp_path: Path) -> None:
    home, ws, tmp = _places(tmp_path)
    with FakeLLM() as fake:
        steps = [Reply(tool_calls=[ToolCall("bash", {"command": f"echo step{i}"})]) for i in range(3)]
        fake.script(*steps, Reply(content=LONG_ANSWER))
        run = subprocess.run(
            [sys.executable, "-m", "kimicode", "-p", "-y", "loop"], cwd=ws, capture_output=True, text=True,
            env=cli_env(home, fake.base_url, TMPDIR=str(tmp)), timeout=120,
        )
        assert len(fake.requests) == 4
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == LONG_ANSWER  # the whole answer, through a pipe, before the process ended
    assert "step2" in json.dumps(fake.requests[3].body)  # the steps ran (in the sandbox)
    logs = list((home / "sessions").glob("*/*.jsonl"))
    assert len(logs) == 1
    assert "END-OF-ANSWER" in logs[0].read_text().splitlines()[-1]  # the last record is the answer
    assert not list((home / "sessions").glob("*/*.lock"))
    assert sorted(p.name for p in ws.iterdir()) == ["keep.txt"]  # no placeholder left in the workspace
    assert list(tmp.iterdir()) == []  # the sandbox's private folders gone
    assert _of_the_run(tmp_path) == []  # at once: nothing of the run outlives it


def test_kimicode_killed_outright_mid_command_leaves_no_process(tmp_path: Path) -> None:
    home, ws, tmp = _places(tmp_path)
    with FakeLLM() as fake:
        fake.script(
            Reply(tool_calls=[ToolCall("bash", {"command": "true"})]),  # its own bubblewrap; one starts ahead
            Reply(tool_calls=[ToolCall("bash", {"command": "touch started && sleep 1000"})]),  # that one
            Reply(content="never"),
        )
        proc = subprocess.Popen(
            [sys.executable, "-m", "kimicode", "-p", "-y", "loop"], cwd=ws, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, env=cli_env(home, fake.base_url, TMPDIR=str(tmp)),
        )
        try:
            deadline = time.monotonic() + 60
            while not (ws / "started").exists() and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
            assert (ws / "started").exists()
            assert any("bwrap" in line for line in _of_the_run(tmp_path))  # a sandbox is running
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
    assert _gone_soon(tmp_path) == []


QUICK = """
import atexit, os, sys, threading
from kimicode.frontends.common import quick_exit
mode = sys.argv[1]
atexit.register(lambda: print("exit handler ran", flush=False))
if mode != "unarmed":
    quick_exit.arm()
if mode == "thread":
    go = threading.Event()
    threading.Thread(target=go.wait, args=(5,)).start()
    quick_exit.end(3)
    print("left to the interpreter")
    go.set()
    sys.exit(4)
if mode == "closed":
    reading, writing = os.pipe()
    os.dup2(writing, 1)
    os.close(reading)  # nobody reads standard output any more
    sys.stdout.write("pending")
    quick_exit.end(3)
    sys.stderr.write("left to the interpreter\\n")
    sys.exit(4)
quick_exit.end(3)
print("left to the interpreter")
sys.exit(4)
"""


@pytest.mark.parametrize(
    ("mode", "code", "out"),
    [
        ("armed", 3, "exit handler ran\n"),  # ended at once: exit handlers ran, their output flushed
        ("unarmed", 4, "left to the interpreter\nexit handler ran\n"),  # not a finished front end
        ("thread", 4, "left to the interpreter\nexit handler ran\n"),  # a thread the interpreter waits for
    ],
)
def test_the_quick_end_runs_the_exit_handlers_or_leaves_the_exit_to_the_interpreter(
    mode: str, code: int, out: str
) -> None:
    run = subprocess.run(
        [sys.executable, "-c", QUICK, mode], capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert (run.returncode, run.stdout) == (code, out), run.stderr


def test_output_that_cannot_be_flushed_is_left_to_the_interpreter_to_report() -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # (the output must wait in a buffer)
    run = subprocess.run(
        [sys.executable, "-c", QUICK, "closed"], capture_output=True, text=True, timeout=60,
        env={**env, "PYTHONPATH": str(REPO)},
    )
    assert "left to the interpreter" in run.stderr
    assert run.returncode == 120  # the interpreter's own verdict on output it could not write, as before


def test_the_json_result_object_is_whole_when_the_process_ends(tmp_path: Path) -> None:
    home, ws, tmp = _places(tmp_path)
    with FakeLLM() as fake:
        fake.script(Reply(content=LONG_ANSWER))
        run = subprocess.run(
            [sys.executable, "-m", "kimicode", "-p", "--output-format", "json", "answer"], cwd=ws,
            capture_output=True, text=True, env=cli_env(home, fake.base_url, TMPDIR=str(tmp)), timeout=120,
        )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["result"] == LONG_ANSWER


def test_the_repl_ended_with_ctrl_d_after_sandboxed_steps_leaves_all_recorded_and_nothing_behind(
    tmp_path: Path,
) -> None:
    """The interactive kimicode ends as a headless run does (without the interpreter's teardown once its
    conversation is closed): the session's last record written, its lock, placeholders and sandbox folders
    gone, no process of it left."""
    from tests.replpty import Repl

    home, ws, tmp = _places(tmp_path)
    with FakeLLM() as fake:
        fake.script(*[Reply(tool_calls=[ToolCall("bash", {"command": f"echo step{i}"})]) for i in range(3)],
                    Reply(content="ALL-STEPS-DONE"))
        repl = Repl(home, ws, fake.base_url, "-y", env={"TMPDIR": str(tmp)})
        try:
            repl.wait_prompt()
            repl.send_line("go")
            repl.expect("ALL-STEPS-DONE")
            repl.wait_prompt()
            repl.send("\x04")
            assert repl.wait_exit() == 0
        finally:
            repl.close()
        assert len(fake.requests) == 4
    assert "step2" in json.dumps(fake.requests[3].body)
    logs = list((home / "sessions").glob("*/*.jsonl"))
    assert len(logs) == 1
    assert "ALL-STEPS-DONE" in logs[0].read_text().splitlines()[-1]
    assert not list((home / "sessions").glob("*/*.lock"))
    assert sorted(p.name for p in ws.iterdir()) == ["keep.txt"]
    assert list(tmp.iterdir()) == []
    assert _gone_soon(tmp_path) == []
