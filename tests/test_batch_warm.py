"""The local pool's warm agents: each task's agent is a fork of one pre-imported process, and is still its
own process: a crash or a kill takes only its task, and each task gets its own environment."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from kimicode.batch.process import run_process
from kimicode.batch.warm import WARM_ENV, WarmPool, agent_prefix
from tests.batch_script import HOME_CONFIG, comparable, make_repos, read_results, responder, write_tasks
from tests.clirun import cli_env, write_home_config
from tests.fake_llm import FakeLLM, RecordedRequest, Reply
from tests.replpty import processes_with


def _ppid(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_each_agent_is_a_fork_of_one_warm_process_with_the_results_of_fresh_processes(
    fake_llm: FakeLLM, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    write_home_config(home, HOME_CONFIG.replace("swarm_concurrency = 2", "swarm_concurrency = 3"))
    tasks = tmp_path / "TASKS.jsonl"
    write_tasks(tasks, make_repos(tmp_path, 2), 3)
    scripted = responder()
    release = threading.Event()

    def held(request: RecordedRequest) -> Reply:
        release.wait(60)  # every agent is alive and waiting on the model while the test looks
        return scripted(request)

    fake_llm.responder = held
    env = cli_env(home, fake_llm.base_url)
    env.pop(WARM_ENV, None)
    driver = subprocess.Popen(
        [sys.executable, "-m", "kimicode", "batch", str(tasks), "--workers", "3", "--out", "out"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert fake_llm.wait_for_requests(3, timeout=60), "three agents reach the model"
        serving = processes_with(str((tmp_path / "out" / ".work").resolve()))
        zygotes = [pid for pid in serving if _ppid(pid) == driver.pid]
        assert len(zygotes) == 1, serving
        agents = [pid for pid in serving if _ppid(pid) == zygotes[0]]
        assert len(agents) == 3, serving
        assert processes_with(f"-w {tmp_path / 'out' / '.work'}") == []  # no fresh interpreter per task
        release.set()
        _, stderr = driver.communicate(timeout=120)
    finally:
        release.set()
        if driver.poll() is None:
            driver.kill()
    assert driver.returncode == 0, stderr
    assert "fresh agent processes" not in stderr
    assert not _alive(zygotes[0])  # the warm process ends with its batch

    # The same batch with fresh processes (said once) gives the same results.
    env[WARM_ENV] = "0"
    fresh = subprocess.run(
        [sys.executable, "-m", "kimicode", "batch", str(tasks), "--workers", "3", "--out", "fresh"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180,
    )
    assert fresh.returncode == 0, fresh.stderr
    assert fresh.stderr.count(f"kimicode batch: starting fresh agent processes: {WARM_ENV}=0") == 1
    warm_records, fresh_records = read_results(tmp_path / "out"), read_results(tmp_path / "fresh")
    assert comparable(warm_records, tmp_path / "out") == comparable(fresh_records, tmp_path / "fresh")
    assert [sorted(r) for r in warm_records] == [sorted(r) for r in fresh_records]
    for record in warm_records:
        warm = json.loads((tmp_path / "out" / record["id"] / "result.json").read_text())
        cold = json.loads((tmp_path / "fresh" / record["id"] / "result.json").read_text())
        assert sorted(warm) == sorted(cold) and warm["is_error"] is cold["is_error"] is False


def _agent_args(workspace: Path) -> list[str]:
    return ["-p", "--output-format", "json", "-y", "-w", str(workspace)]


def _answer_or_hang(release: threading.Event) -> Any:
    def answer(request: RecordedRequest) -> Reply:
        if "HANG" in json.dumps(request.messages):
            release.wait(60)
        return Reply(content="finished")

    return answer


def test_a_crash_or_a_timeout_takes_only_its_own_fork(fake_llm: FakeLLM, tmp_path: Path) -> None:
    home = tmp_path / "home"
    write_home_config(home, HOME_CONFIG)
    workspace = tmp_path / "ws"
    workspace.mkdir()
    release = threading.Event()
    fake_llm.responder = _answer_or_hang(release)
    env = cli_env(home, fake_llm.base_url)

    async def scenario() -> None:
        pool = await WarmPool.start(env, tmp_path, "test")
        try:
            crashing = await pool.spawn(_agent_args(workspace), workspace, env, stdin=True)
            waiting = await pool.spawn(_agent_args(workspace), workspace, env, stdin=True)
            assert _ppid(crashing.pid) == _ppid(waiting.pid) == pool.proc.pid
            os.kill(crashing.pid, signal.SIGSEGV)
            assert await crashing.wait() == -signal.SIGSEGV  # as asyncio reports a signal death

            # A task whose time is up is cancelled mid-request: its group goes, nothing else does.
            argv = [*agent_prefix(), *_agent_args(workspace)]
            log = tmp_path / "hang.log"
            hanging = asyncio.ensure_future(
                run_process(argv, workspace, "HANG please", log, lambda line: None, env=env, pool=pool)
            )
            assert await asyncio.to_thread(fake_llm.wait_for_requests, 1, 60)
            hung_pids = [pid for pid in processes_with("kimicode.batch.zygote") if _ppid(pid) == pool.proc.pid]
            hanging.cancel()
            await asyncio.gather(hanging, return_exceptions=True)
            assert [pid for pid in hung_pids if _alive(pid) and pid != waiting.pid] == []

            assert pool.proc.poll() is None and _alive(waiting.pid)
            assert waiting.stdin is not None and waiting.stdout is not None
            waiting.stdin.write(b"say finished")
            waiting.stdin.close()
            out = await waiting.stdout.read()
            assert await waiting.wait() == 0
            result = json.loads(out.decode().strip().splitlines()[-1])
            assert result["is_error"] is False and result["result"] == "finished"
        finally:
            release.set()
            pool.close()

    asyncio.run(scenario())


def test_each_fork_gets_its_own_environment_and_the_warm_process_never_holds_a_key(
    fake_llm: FakeLLM, tmp_path: Path
) -> None:
    fake_llm.responder = _answer_or_hang(threading.Event())
    workspace = tmp_path / "ws"
    workspace.mkdir()
    homes = {name: tmp_path / f"home-{name}" for name in ("a", "b")}
    envs = {}
    for name, home in homes.items():
        write_home_config(home, HOME_CONFIG)
        envs[name] = cli_env(home, fake_llm.base_url, KIMI_API_KEY=f"key-{name}-0123456789")

    async def scenario() -> None:
        pool = await WarmPool.start(envs["a"], tmp_path, "test")
        try:
            start_block = Path(f"/proc/{pool.proc.pid}/environ").read_bytes()
            assert b"key-a" not in start_block and b"KIMI_API_KEY" not in start_block
            for name in ("a", "b"):
                argv = [*agent_prefix(), *_agent_args(workspace)]
                code, out = await run_process(
                    argv, workspace, f"task {name}", tmp_path / f"{name}.log", lambda line: None,
                    env=envs[name], pool=pool,
                )
                assert code == 0, (tmp_path / f"{name}.log").read_text()
                assert json.loads(out.strip().splitlines()[-1])["is_error"] is False
        finally:
            pool.close()

    asyncio.run(scenario())
    keys = [r.headers.get("authorization") for r in fake_llm.requests]
    assert keys == ["Bearer key-a-0123456789", "Bearer key-b-0123456789"]
    # Each task's KIMICODE_HOME is its own: its session is there and nowhere else.
    assert len(list((homes["a"] / "sessions").glob("*/*.jsonl"))) == 1
    assert len(list((homes["b"] / "sessions").glob("*/*.jsonl"))) == 1


def test_a_checkout_cannot_stand_in_for_kimicode_or_its_libraries(fake_llm: FakeLLM, tmp_path: Path) -> None:
    """The agent starts in the task's checkout, a repository nobody vouched for: its `kimicode/` or
    `openai.py` must not be what the agent (holding the endpoint key, outside the sandbox) imports."""
    home = tmp_path / "home"
    write_home_config(home, HOME_CONFIG)
    repo = make_repos(tmp_path, 1)[0]
    marker = tmp_path / "hijacked"
    payload = f"open({str(marker)!r}, 'a').write(__name__ + '\\n')\n"
    for name in ("kimicode/__init__.py", "kimicode/__main__.py", "openai.py", "typer.py"):
        (repo / name).parent.mkdir(exist_ok=True)
        (repo / name).write_text(payload)
    subprocess.run("git add -A && git -c user.name=t -c user.email=t@t commit -qm shadows", shell=True, cwd=repo,
                   check=True)
    tasks = tmp_path / "TASKS.jsonl"
    write_tasks(tasks, [repo], 1)
    fake_llm.responder = responder()
    for warm in ("1", "0"):
        env = {**cli_env(home, fake_llm.base_url), WARM_ENV: warm}
        # No empty PYTHONPATH entry: that one names the working directory on purpose.
        env["PYTHONPATH"] = os.pathsep.join(p for p in env["PYTHONPATH"].split(os.pathsep) if p)
        proc = subprocess.run(
            [sys.executable, "-m", "kimicode", "batch", str(tasks), "--out", f"out{warm}"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        assert [r["status"] for r in read_results(tmp_path / f"out{warm}")] == ["done"]
    assert not marker.exists(), marker.read_text()


def test_when_the_warm_process_is_gone_the_agent_is_a_fresh_process_and_that_is_said(
    fake_llm: FakeLLM, tmp_path: Path, capsys: Any
) -> None:
    home = tmp_path / "home"
    write_home_config(home, HOME_CONFIG)
    workspace = tmp_path / "ws"
    workspace.mkdir()
    fake_llm.responder = _answer_or_hang(threading.Event())
    env = cli_env(home, fake_llm.base_url)

    async def scenario() -> tuple[int, str]:
        pool = await WarmPool.start(env, tmp_path, "test")
        pool.proc.kill()
        pool.proc.wait()
        try:
            argv = [*agent_prefix(), *_agent_args(workspace)]
            return await run_process(argv, workspace, "task", tmp_path / "a.log", lambda line: None, env=env, pool=pool)
        finally:
            pool.close()

    code, out = asyncio.run(scenario())
    assert code == 0 and json.loads(out.strip().splitlines()[-1])["result"] == "finished"
    assert "kimicode batch: starting fresh agent processes: the warm process is gone" in capsys.readouterr().err
