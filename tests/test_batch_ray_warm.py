"""`kimicode batch --ray` on warm actors: one actor runs many tasks, each agent a fork of the actor's warm
process; a task still gets its own checkout, environment and process, a killed agent fails only its task,
and a killed actor fails only its task and is replaced. Against a real single-node Ray cluster."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kimicode.batch.limiter_service import LocalBackend
from kimicode.batch.ray_actor import TaskActor
from kimicode.batch.tasks import TaskSpec
from tests.batch_script import HOME_CONFIG, make_repos, read_results, task_of
from tests.clirun import cli_env, run_cli, write_home_config
from tests.fake_llm import FakeLLM, RecordedRequest, Reply, ToolCall
from tests.raycluster import ray_head, run_until_up
from tests.replpty import processes_with
from tests.swarm_script import steps_done

WARM_MARK = "kimicode.batch.zygote"  # the warm process's command line, which its forks keep


def _ppid(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _agent_of(task_id: str) -> tuple[int, int, int]:
    """(agent, warm process, actor) of the task whose agent waits on the model: the fork working in its checkout."""
    for pid in processes_with(WARM_MARK):
        try:
            cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
        except OSError:
            continue
        if cwd.name == task_id and cwd.parent.name == "work":
            warm = _ppid(pid)
            return pid, warm, _ppid(warm)
    raise AssertionError(f"no forked agent works in the checkout of {task_id}")


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ray-warm")
    write_home_config(root / "home", HOME_CONFIG)
    return root


@pytest.fixture(scope="module")
def cluster(root: Path) -> Iterator[str]:
    with ray_head(cli_env(root / "home"), cpus=2) as address:
        yield address


def _tasks(path: Path, repo: Path, count: int) -> list[str]:
    ids = [f"t{i:02d}" for i in range(count)]
    path.write_text("".join(json.dumps({"id": i, "task": f"BATCH-{i}: look around", "repo": str(repo)}) + "\n"
                            for i in ids))
    return ids


def _batch(root: Path, name: str, cluster: str, answer: Callable[[RecordedRequest], Reply],
           count: int) -> tuple[subprocess.CompletedProcess[str], list[dict[str, Any]], FakeLLM]:
    """``count`` tasks on one repository through one Ray actor (--workers 1)."""
    folder = root / name
    repo = make_repos(folder, 1)[0]
    tasks = folder / "TASKS.jsonl"
    _tasks(tasks, repo, count)
    with FakeLLM() as server:
        server.responder = answer
        proc = run_until_up(lambda: run_cli(
            ["batch", str(tasks), "--ray", cluster, "--workers", "1", "--out", str(folder / "out")],
            home=root / "home", cwd=folder, base_url=server.base_url, timeout=300,
        ))
    return proc, read_results(folder / "out"), server


def _second_turn_output(server: FakeLLM, task_id: str) -> str:
    """What the task's first command printed, as the model was sent it."""
    for request in server.chat_requests:
        if task_of(request) == task_id and steps_done(request) == 1:
            return "\n".join(str(m.get("content")) for m in request.tool_results())
    raise AssertionError(f"{task_id} never reached its second turn")


def test_tasks_through_one_actor_are_forks_of_its_warm_process_and_share_nothing(root: Path, cluster: str) -> None:
    seen: dict[str, tuple[int, int, int]] = {}
    warm_environ: list[bytes] = []
    errors: list[str] = []

    def answer(request: RecordedRequest) -> Reply:
        task_id = task_of(request)
        if steps_done(request) > 0:
            return Reply(tool_calls=[ToolCall("submit", {"summary": f"{task_id} looked"})])
        try:
            seen[task_id] = _agent_of(task_id)
            warm_environ.append(Path(f"/proc/{seen[task_id][1]}/environ").read_bytes())
        except (AssertionError, OSError) as exc:
            errors.append(str(exc))
        if task_id == "t00":  # leaves what a later task must not find: a variable, a file in its checkout
            command = "export KB_LEAK=t00; echo t00 > leak.txt; echo planted"
        else:
            command = 'echo "env=${KB_LEAK:-none}"; cat leak.txt'
        return Reply(tool_calls=[ToolCall("bash", {"command": command})])

    proc, records, server = _batch(root, "share", cluster, answer, 4)
    assert proc.returncode == 0, proc.stderr
    assert errors == []
    assert [(r["id"], r["status"]) for r in records] == [(f"t0{i}", "done") for i in range(4)], records

    # one actor, one warm process for all four tasks; each agent its own fork of it
    assert len({pids[2] for pids in seen.values()}) == 1, seen
    assert len({pids[1] for pids in seen.values()}) == 1, seen
    assert len({pids[0] for pids in seen.values()}) == 4, seen
    # the API key travels with each task, never into the warm process
    assert all(b"test-key" not in block and b"KIMI_API_KEY=" not in block for block in warm_environ)
    assert all(r.headers.get("authorization") == "Bearer test-key" for r in server.chat_requests)

    assert "planted" in _second_turn_output(server, "t00")
    for task_id in ("t01", "t02", "t03"):
        printed = _second_turn_output(server, task_id)
        assert "env=none" in printed and "No such file" in printed, printed


def test_a_killed_agent_fails_only_its_task_and_a_killed_actor_is_replaced(root: Path, cluster: str) -> None:
    seen: dict[str, tuple[int, int, int]] = {}
    errors: list[str] = []

    def answer(request: RecordedRequest) -> Reply:
        task_id = task_of(request)
        if steps_done(request) > 0:
            return Reply(tool_calls=[ToolCall("submit", {"summary": f"{task_id} done"})])
        try:
            seen[task_id] = agent, _, actor = _agent_of(task_id)
            if task_id == "t01":
                os.kill(agent, signal.SIGKILL)  # the task's agent crashes
            elif task_id == "t02":
                os.kill(actor, signal.SIGKILL)  # the whole worker goes
        except (AssertionError, OSError) as exc:
            errors.append(str(exc))
        return Reply(tool_calls=[ToolCall("bash", {"command": "echo hello"})])

    proc, records, _ = _batch(root, "kill", cluster, answer, 4)
    assert proc.returncode == 0, proc.stderr
    assert errors == []
    by_id = {r["id"]: r for r in records}
    assert sorted(by_id) == ["t00", "t01", "t02", "t03"]
    assert by_id["t00"]["status"] == by_id["t03"]["status"] == "done", records
    assert by_id["t01"]["status"] == "failed" and by_id["t01"]["reason"].startswith("agent exit -9"), by_id["t01"]
    assert by_id["t02"]["status"] == "failed" and by_id["t02"]["reason"].startswith("ray: "), by_id["t02"]
    assert (root / "kill" / "out" / "t02" / "patch.diff").read_text() == ""

    # after its agent was killed the actor and its warm process served the next task; after the actor was
    # killed a new actor with a new warm process served the last one
    assert seen["t00"][1:] == seen["t01"][1:] == seen["t02"][1:], seen
    assert seen["t03"][2] != seen["t00"][2] and seen["t03"][1] != seen["t00"][1], seen


def test_a_task_never_sees_the_environment_of_the_task_before_it(root: Path) -> None:
    repo = make_repos(root / "env", 1)[0]

    def answer(request: RecordedRequest) -> Reply:
        if steps_done(request) > 0:
            return Reply(tool_calls=[ToolCall("submit", {"summary": "done"})])
        return Reply(tool_calls=[ToolCall("bash", {"command": 'echo "secret=${KB_TASK_SECRET:-none}"'})])

    with FakeLLM() as server:
        server.responder = answer
        base = cli_env(root / "home", server.base_url)

        folders: list[Path] = []

        async def scenario() -> list[dict[str, Any]]:
            actor = TaskActor(LocalBackend())
            folders.append(actor.root)
            try:
                results = []
                for task_id, extra in (("t00", {"KB_TASK_SECRET": "t00-secret"}), ("t01", {})):
                    spec = TaskSpec(id=task_id, task=f"BATCH-{task_id}: print", repo=str(repo))
                    results.append(await actor.run(spec.as_dict(), {**base, **extra}))
                    assert actor.pool is not None and actor.pool.done()
                    warm = actor.pool.result()
                    assert warm is not None and warm.proc.poll() is None
                    assert b"t00-secret" in Path(f"/proc/{warm.proc.pid}/environ").read_bytes()  # started by t00
                return results
            finally:
                await actor.close()

        results = asyncio.run(scenario())
        assert [r["record"]["status"] for r in results] == ["done", "done"], results
        assert "secret=t00-secret" in _second_turn_output(server, "t00")
        assert "secret=none" in _second_turn_output(server, "t01")
    assert {"agent.log", "patch.diff", "result.json"} <= set(results[1]["files"])
    assert not folders[0].exists()  # the actor's checkouts and artifacts are gone once it is closed

