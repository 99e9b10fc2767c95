"""`kimicode batch` end to end: the real CLI over local git repositories against the scripted model server,
on the local pool and on a real single-node Ray cluster."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.batch_script import (
    AGENT_ERRORS, CHECK_FAILS, HOME_CONFIG, comparable, make_repos, read_results, responder, task_of, write_tasks,
)
from tests.clirun import cli_env, run_cli, write_home_config
from tests.fake_llm import FakeLLM, Fault, RecordedRequest, Reply
from tests.raycluster import ray_head, run_until_up
from tests.replpty import processes_with, wait_until

TASKS = 30
SERVER_CONCURRENCY = 3  # the scripted server answers 429 above this many requests at once
# Long enough that six agents' requests overlap even while their processes start slowly on a busy machine.
LATENCY = 0.4


@dataclass
class LocalRun:
    root: Path
    home: Path
    tasks: Path
    ids: list[str]
    repos: list[Path]
    out: Path
    proc: subprocess.CompletedProcess[str]
    events: list[dict[str, Any]]
    server: FakeLLM


@pytest.fixture(scope="module")
def local_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRun]:
    """The 30 tasks on the local pool, 6 at a time, against a server that allows 3 requests at once."""
    root = tmp_path_factory.mktemp("batch")
    home = root / "home"
    write_home_config(home, HOME_CONFIG)
    repos = make_repos(root)
    tasks = root / "TASKS.jsonl"
    ids = write_tasks(tasks, repos, TASKS)
    with FakeLLM() as server:
        server.responder = responder(LATENCY)
        server.concurrency_limit = SERVER_CONCURRENCY
        proc = run_cli(
            ["batch", str(tasks), "--workers", "6", "--out", "out", "--output-format", "json"],
            home=home, cwd=root, base_url=server.base_url, timeout=240,
        )
        events = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
        yield LocalRun(root, home, tasks, ids, repos, root / "out", proc, events, server)


@pytest.mark.xdist_group("batch_local_run")  # one worker runs the module's 30-task batch once
def test_thirty_tasks_on_the_local_pool_each_in_its_own_checkout(local_run: LocalRun) -> None:
    run = local_run
    assert run.proc.returncode == 0, run.proc.stderr
    records = read_results(run.out)
    assert sorted(r["id"] for r in records) == run.ids  # each once, none lost
    by_id = {r["id"]: r for r in records}

    # a red check and an agent error are results; every other task finished
    assert by_id[CHECK_FAILS]["status"] == "failed" and by_id[CHECK_FAILS]["check_exit"] == 1
    assert by_id[CHECK_FAILS]["reason"].startswith("check failed (exit 1)")
    assert by_id[AGENT_ERRORS]["status"] == "failed" and "400" in by_id[AGENT_ERRORS]["reason"]
    assert "check_exit" not in by_id[AGENT_ERRORS]
    done = [r for r in records if r["id"] not in (CHECK_FAILS, AGENT_ERRORS)]
    assert all(r["status"] == "done" and r["check_exit"] == 0 and r["num_steps"] == 2 for r in done)
    assert all(r["usage"]["input_tokens"] > 0 for r in done)

    # OUT/<id>/: the json result, the change as a patch, the session and the logs
    folder = run.out / "t05"
    assert by_id["t05"]["patch"] == "out/t05/patch.diff"
    assert "+t05" in (folder / "patch.diff").read_text()
    assert json.loads((folder / "result.json").read_text())["session_id"] == by_id["t05"]["session_id"]
    assert '"type":"session"' in (folder / "session.jsonl").read_text().replace(" ", "")
    assert (folder / "agent.log").exists() and (folder / "check.log").exists()

    # the repositories themselves are untouched and keep no worktrees
    for repo in run.repos:
        assert not (repo / "done.txt").exists()
        listed = subprocess.run(["git", "worktree", "list"], cwd=repo, capture_output=True, text=True).stdout
        assert len(listed.splitlines()) == 1, listed

    # machine-readable progress: one event per state change of every task, then the summary
    states: dict[str, list[str]] = {}
    for event in run.events[:-1]:
        assert event["type"] == "task"
        states.setdefault(event["id"], []).append(event["state"])
    assert all(states[i][:2] == ["queued", "running"] and len(states[i]) == 3 for i in run.ids)
    summary = run.events[-1]
    assert summary["type"] == "summary" and (summary["done"], summary["failed"]) == (TASKS - 2, 2)

    # one limiter for all agents: it grew from swarm_concurrency (2) to what the server allows, and
    # every 429 the server sent reached it; the server never served more than it allows
    assert summary["concurrency_reached"] >= SERVER_CONCURRENCY
    assert run.server.max_in_flight <= SERVER_CONCURRENCY
    assert summary["throttled"] == run.server.throttled
    assert run.server.throttled <= len(run.server.chat_requests) // 4


@pytest.mark.xdist_group("batch_local_run")  # one worker runs the module's 30-task batch once
def test_report_prints_the_summary_table_again(local_run: LocalRun) -> None:
    proc = run_cli(["batch", "--report", "out"], home=local_run.home, cwd=local_run.root)
    assert proc.returncode == 0, proc.stderr
    assert "30 tasks" in proc.stdout and "28 done, 2 failed" in proc.stdout
    assert "check failed (exit 1)" in proc.stdout


@pytest.fixture(scope="module")
def ray_cluster(local_run: LocalRun) -> Iterator[str]:
    """A real single-node Ray cluster on 127.0.0.1, started (and stopped) by this test module."""
    with ray_head(cli_env(local_run.home), cpus=6) as address:
        yield address


@pytest.mark.xdist_group("batch_local_run")  # one worker runs the module's 30-task batch once
def test_the_same_thirty_tasks_on_a_ray_cluster_give_the_same_results(local_run: LocalRun, ray_cluster: str) -> None:
    out = local_run.root / "out-ray"
    with FakeLLM() as server:
        server.responder = responder(LATENCY)
        server.concurrency_limit = SERVER_CONCURRENCY
        proc = _run_until_cluster_is_up(
            ["batch", str(local_run.tasks), "--ray", ray_cluster, "--workers", "6", "--out", str(out)],
            local_run, server,
        )
        assert proc.returncode == 0, proc.stderr
        assert comparable(read_results(out), out) == comparable(read_results(local_run.out), local_run.out)
        # artifacts came back from the workers, the limiter actor counted the server's 429s
        assert (out / "t05" / "session.jsonl").exists() and (out / "t05" / "agent.log").exists()
        assert "(ray)" in proc.stderr and "concurrency reached" in proc.stderr
        assert server.max_in_flight <= SERVER_CONCURRENCY
        assert f"{server.throttled} × 429" in proc.stderr
        assert "28 done, 2 failed" in proc.stdout  # the summary table


def _run_until_cluster_is_up(args: list[str], run: LocalRun, server: FakeLLM) -> subprocess.CompletedProcess[str]:
    return run_until_up(lambda: run_cli(args, home=run.home, cwd=run.root, base_url=server.base_url, timeout=300))


def test_kill_9_of_the_driver_then_rerun_runs_no_task_twice_and_loses_none(fake_llm: FakeLLM, tmp_path: Path) -> None:
    home = tmp_path / "home"
    write_home_config(home, HOME_CONFIG)
    repos = make_repos(tmp_path, 2)
    tasks = tmp_path / "TASKS.jsonl"
    ids = write_tasks(tasks, repos, 9)
    answer = responder(latency=0.15)
    # From the kill on, the model answers no more: an agent that outlived its driver would wait on it for good,
    # so only agents that die with the driver can all be gone below.
    killing, agent_waits = threading.Event(), threading.Event()

    def respond(request: RecordedRequest) -> Reply:
        if killing.is_set():
            agent_waits.set()
            return Reply(fault=Fault.hang())
        return answer(request)

    fake_llm.responder = respond
    out = tmp_path / "out"
    driver = subprocess.Popen(
        [sys.executable, "-m", "kimicode", "batch", str(tasks), "--workers", "3", "--out", str(out)],
        cwd=tmp_path, env=cli_env(home, fake_llm.base_url), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while len(read_results(out)) < 3 and time.monotonic() < deadline and driver.poll() is None:
            time.sleep(0.05)
        killing.set()
        assert agent_waits.wait(60), "no agent asked the model again"  # the kill lands mid-task
        driver.kill()  # SIGKILL: no chance to tidy up
        driver.wait()
    finally:
        if driver.poll() is None:
            driver.kill()
    first = {r["id"] for r in read_results(out)}
    assert 3 <= len(first) < len(ids), "kill the driver mid-batch"

    # The agents of the killed driver die with it (each would otherwise wait on the model for good).
    assert wait_until(lambda: not processes_with(str(out / ".work")), 60), "agents outlived their driver"
    asked_before_the_rerun = len(fake_llm.chat_requests)
    killing.clear()

    proc = run_cli(["batch", str(tasks), "--workers", "3", "--out", str(out)], home=home, cwd=tmp_path,
                   base_url=fake_llm.base_url, timeout=180)
    assert proc.returncode == 0, proc.stderr
    assert f"{len(first)} already finished" in proc.stderr
    records = read_results(out)
    assert sorted(r["id"] for r in records) == ids  # none lost, none twice
    rerun = {task_of(r) for r in fake_llm.chat_requests[asked_before_the_rerun:]}
    assert rerun == set(ids) - first  # only what had not finished ran again
    for repo in repos:
        listed = subprocess.run(["git", "worktree", "list"], cwd=repo, capture_output=True, text=True).stdout
        assert len(listed.splitlines()) == 1, listed


def test_max_cost_stops_the_schedule_and_a_rerun_finishes(fake_llm: FakeLLM, tmp_path: Path) -> None:
    home = tmp_path / "home"
    write_home_config(home, HOME_CONFIG + '[prices."kimi-k2.5"]\ninput = 0.6\noutput = 3.0\n')  # a cost to count
    repos = make_repos(tmp_path, 1)
    tasks = tmp_path / "TASKS.jsonl"
    ids = write_tasks(tasks, repos, 4)
    fake_llm.responder = responder()
    args = ["batch", str(tasks), "--out", "out", "--output-format", "json"]
    proc = run_cli([*args, "--workers", "1", "--max-cost", "0.000001"], home=home, cwd=tmp_path, base_url=fake_llm.base_url)
    assert proc.returncode == 1, proc.stderr
    summary = json.loads(proc.stdout.splitlines()[-1])
    assert (summary["done"], summary["not_run"]) == (1, 3) and summary["stopped"].startswith("--max-cost $1e-06 reached")
    assert [r["id"] for r in read_results(tmp_path / "out")] == ["t00"]
    started = {task_of(r) for r in fake_llm.chat_requests}
    assert started == {"t00"}

    proc = run_cli([*args, "--workers", "3"], home=home, cwd=tmp_path, base_url=fake_llm.base_url)
    assert proc.returncode == 0, proc.stderr
    assert sorted(r["id"] for r in read_results(tmp_path / "out")) == ids
    assert sum(1 for r in fake_llm.chat_requests if task_of(r) == "t00") == 2  # t00 did not run again


def test_bad_task_lines_and_missing_ray_are_one_clear_line(tmp_path: Path) -> None:
    home = tmp_path / "home"
    write_home_config(home, HOME_CONFIG)
    tasks = tmp_path / "TASKS.jsonl"
    tasks.write_text('{"id": "a", "task": "x", "repo": "."}\n{"id": "a", "task": "y", "repo": "."}\n')
    proc = run_cli(["batch", str(tasks)], home=home, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"kimicode: {tasks}:2: id 'a' is used twice"
    tasks.write_text('{"id": "a", "task": "x", "repo": ".", "colour": "red"}\n')
    proc = run_cli(["batch", str(tasks)], home=home, cwd=tmp_path)
    assert proc.returncode == 2 and "unknown field(s) colour" in proc.stderr


def test_ctrl_c_ends_running_tasks_and_leaves_the_batch_resumable(fake_llm: FakeLLM, tmp_path: Path) -> None:
    home = tmp_path / "home"
    write_home_config(home, HOME_CONFIG)
    repos = make_repos(tmp_path, 1)
    tasks = tmp_path / "TASKS.jsonl"
    write_tasks(tasks, repos, 3)
    fake_llm.responder = responder(latency=30)  # every agent is mid-request when the user presses Ctrl-C
    driver = subprocess.Popen(
        [sys.executable, "-m", "kimicode", "batch", str(tasks), "--workers", "2", "--out", "out"],
        cwd=tmp_path, env=cli_env(home, fake_llm.base_url), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert fake_llm.wait_for_requests(2, timeout=60), "both agents reach the model"
        driver.send_signal(signal.SIGINT)
        _, stderr = driver.communicate(timeout=30)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert driver.returncode == 130, stderr
    assert "interrupted: rerun the same command to finish" in stderr
    assert read_results(tmp_path / "out") == []  # nothing half-done is recorded
    listed = subprocess.run(["git", "worktree", "list"], cwd=repos[0], capture_output=True, text=True).stdout
    assert len(listed.splitlines()) == 1, listed  # checkouts removed
    assert _processes_mentioning(str(tmp_path / "out" / ".work")) == []  # no agent lives on


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_a_local_batch_never_imports_ray(fake_llm: FakeLLM, tmp_path: Path) -> None:
    poison = tmp_path / "poison"
    (poison / "ray").mkdir(parents=True)
    (poison / "ray" / "__init__.py").write_text("raise RuntimeError('ray imported')\n")
    home = tmp_path / "home"
    write_home_config(home, HOME_CONFIG)
    tasks = tmp_path / "TASKS.jsonl"
    write_tasks(tasks, make_repos(tmp_path, 1), 1)
    fake_llm.responder = responder()
    from tests.clirun import REPO

    env = {"PYTHONPATH": f"{REPO}{os.pathsep}{poison}"}
    proc = run_cli(["batch", str(tasks), "--out", "out"], home=home, cwd=tmp_path, base_url=fake_llm.base_url,
                   env_extra=env)
    assert proc.returncode == 0, proc.stderr
    proc = run_cli(["batch", str(tasks), "--out", "out2", "--ray", "auto"], home=home, cwd=tmp_path,
                   base_url=fake_llm.base_url, env_extra=env)
    assert proc.returncode != 0 and "ray imported" in proc.stderr  # only --ray reaches for it


def test_a_task_past_its_wall_clock_limit_is_failed_and_the_others_finish(fake_llm: FakeLLM, tmp_path: Path) -> None:
    home = tmp_path / "home"
    write_home_config(home, HOME_CONFIG)
    tasks = tmp_path / "TASKS.jsonl"
    write_tasks(tasks, make_repos(tmp_path, 1), 2)
    quick = responder()

    def slow_t00(request: Any) -> Any:
        reply = quick(request)
        if task_of(request) == "t00":
            reply.delay = 60
        return reply

    fake_llm.responder = slow_t00
    # The limit leaves the quick task room on a loaded machine (a task's process alone starts in 1-2 s of CPU).
    proc = run_cli(["batch", str(tasks), "--out", "out", "--timeout", "20"], home=home, cwd=tmp_path,
                   base_url=fake_llm.base_url, timeout=120)
    assert proc.returncode == 0, proc.stderr
    by_id = {r["id"]: r for r in read_results(tmp_path / "out")}
    assert by_id["t00"]["status"] == "failed"
    assert by_id["t00"]["reason"] == "timed out after 20s (during agent)"
    assert by_id["t01"]["status"] == "done"
    assert _processes_mentioning(str(tmp_path / "out" / ".work")) == []
