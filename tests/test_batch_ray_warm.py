"""`kimicode batch --ray` on warm actors: one actor runs many tasks, each agent a fork of the actor's warm
process; a task still gets its own checkout, environment and process, a killed agent fails only its task,
and a killed actor fails only its task and is replaced. Against a real single-node Ray cluster."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kimicode.batch.limiter_service import LocalBackend
from kimicode.batch.ray_actor import LIVE_MARK, ROOT_PREFIX, TaskActor, _claim_root, sweep_dead_roots
from kimicode.batch.tasks import TaskSpec
from tests.batch_script import HOME_CONFIG, make_repos, read_results, task_of
from tests.clirun import cli_env, run_cli, write_home_config
from tests.fake_llm import FakeLLM, Fault, RecordedRequest, Reply, ToolCall
from tests.raycluster import ray_head, run_until_up
from tests.replpty import processes_with, wait_until
from tests.swarm_script import steps_done

WARM_MARK = "kimicode.batch.zygote"  # the warm process's command line, which its forks keep


def _ppid(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _agent_of(task_id: str, repo: Path) -> tuple[int, int, int]:
    """(agent, warm process, actor) of the task whose agent waits on the model: the fork working in its
    checkout, a worktree of ``repo`` (other batches on this machine have tasks of the same name)."""
    for pid in processes_with(WARM_MARK):
        try:
            cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
            gitdir = (cwd / ".git").read_text()
        except OSError:
            continue
        if cwd.name == task_id and gitdir.strip() == f"gitdir: {repo / '.git' / 'worktrees' / task_id}":
            warm = _ppid(pid)
            return pid, warm, _ppid(warm)
    found = {pid: _where(pid) for pid in processes_with(WARM_MARK)}
    raise AssertionError(f"no forked agent works in the checkout of {task_id} of {repo}: {found}")


def _where(pid: int) -> str:
    try:
        cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
        return f"{cwd} {(cwd / '.git').read_text().strip() if (cwd / '.git').is_file() else ''}"
    except OSError as exc:
        return str(exc)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ray-warm")
    write_home_config(root / "home", HOME_CONFIG)
    return root


@pytest.fixture(scope="module")
def cluster(root: Path) -> Iterator[str]:
    with ray_head(cli_env(root / "home"), cpus=2) as address:
        yield address


def _second_turn_output(server: FakeLLM, task_id: str) -> str:
    """What the task's first command printed, as the model was sent it."""
    for request in server.chat_requests:
        if task_of(request) == task_id and steps_done(request) == 1:
            return "\n".join(str(m.get("content")) for m in request.tool_results())
    raise AssertionError(f"{task_id} never reached its second turn")


PLANTS = AGENT_KILLED = "t00"  # its agent leaves a variable and a file behind, then is killed
ACTOR_KILLED = "t02"
LOOKERS = ("t01", "t03")  # look for what PLANTS left: on the same actor, and on the one that replaced it


@dataclass
class ActorRun:
    proc: subprocess.CompletedProcess[str]
    records: dict[str, dict[str, Any]]
    server: FakeLLM
    seen: dict[str, tuple[int, int, int]]  # task id → (agent, warm process, actor) while its agent ran
    warm_environ: list[bytes]
    errors: list[str]
    out: Path
    killed_root: list[Path]  # the folder of the actor that was killed


@pytest.fixture(scope="module")
def actor_run(root: Path, cluster: str) -> ActorRun:
    """Four tasks on one repository through one actor at a time (--workers 1): the first leaves a variable and
    a file behind and its agent is killed, later ones look for them; the third kills its actor."""
    folder = root / "batch"
    repo = make_repos(folder, 1)[0].resolve()
    seen: dict[str, tuple[int, int, int]] = {}
    warm_environ: list[bytes] = []
    errors: list[str] = []
    killed_root: list[Path] = []

    def answer(request: RecordedRequest) -> Reply:
        task_id = task_of(request)
        if steps_done(request) > 0:
            if task_id == AGENT_KILLED and task_id in seen:
                os.kill(seen[task_id][0], signal.SIGKILL)  # the task's agent crashes, after its command ran
            return Reply(tool_calls=[ToolCall("submit", {"summary": f"{task_id} looked"})])
        try:
            seen[task_id] = _, warm, actor = _agent_of(task_id, repo)
            warm_environ.append(Path(f"/proc/{warm}/environ").read_bytes())
            if task_id == ACTOR_KILLED:
                killed_root.append(Path(os.readlink(f"/proc/{warm}/cwd")))  # the actor's folder
                os.kill(actor, signal.SIGKILL)  # the whole worker goes
        except (AssertionError, OSError) as exc:
            errors.append(str(exc))
        if task_id == PLANTS:
            command = "export KB_LEAK=t00; echo t00 > leak.txt; echo planted"
        else:
            command = 'echo "env=${KB_LEAK:-none}"; cat leak.txt'
        return Reply(tool_calls=[ToolCall("bash", {"command": command})])

    tasks = folder / "TASKS.jsonl"
    tasks.write_text("".join(json.dumps({"id": f"t0{i}", "task": f"BATCH-t0{i}: look around", "repo": str(repo)})
                             + "\n" for i in range(4)))
    with FakeLLM() as server:
        server.responder = answer
        proc = run_until_up(lambda: run_cli(
            ["batch", str(tasks), "--ray", cluster, "--workers", "1", "--out", str(folder / "out")],
            home=root / "home", cwd=folder, base_url=server.base_url, timeout=300,
        ))
    records = {r["id"]: r for r in read_results(folder / "out")}
    return ActorRun(proc, records, server, seen, warm_environ, errors, folder / "out", killed_root)


@pytest.mark.xdist_group("batch_ray_warm")  # one worker runs the module's batch once
def test_tasks_through_one_actor_are_forks_of_its_warm_process_and_share_nothing(actor_run: ActorRun) -> None:
    run = actor_run
    assert run.proc.returncode == 0, run.proc.stderr
    assert run.errors == []
    assert sorted(run.records) == [f"t0{i}" for i in range(4)]
    assert all(run.records[i]["status"] == "done" for i in LOOKERS), run.records

    # one actor and one warm process served the tasks up to the actor's death; each agent its own fork
    first = [run.seen[i] for i in ("t00", "t01", "t02")]
    assert len({pids[2] for pids in first}) == 1 and len({pids[1] for pids in first}) == 1, run.seen
    assert len({pids[0] for pids in run.seen.values()}) == 4, run.seen
    # the API key travels with each task, never into a warm process
    assert len(run.warm_environ) == 4
    assert all(b"test-key" not in block and b"KIMI_API_KEY=" not in block for block in run.warm_environ)
    assert all(r.headers.get("authorization") == "Bearer test-key" for r in run.server.chat_requests)

    assert "planted" in _second_turn_output(run.server, PLANTS)
    for task_id in LOOKERS:
        printed = _second_turn_output(run.server, task_id)
        assert "env=none" in printed and "No such file" in printed, printed


@pytest.mark.xdist_group("batch_ray_warm")  # one worker runs the module's batch once
def test_a_killed_agent_fails_only_its_task_and_a_killed_actor_is_replaced(actor_run: ActorRun) -> None:
    run = actor_run
    killed_agent, killed_actor = run.records[AGENT_KILLED], run.records[ACTOR_KILLED]
    assert killed_agent["status"] == "failed" and killed_agent["reason"].startswith("agent exit -9"), killed_agent
    assert killed_actor["status"] == "failed" and killed_actor["reason"].startswith("ray: "), killed_actor
    assert (run.out / ACTOR_KILLED / "patch.diff").read_text() == ""
    # the task after the killed agent ran on the same actor and warm process; the one after the killed
    # actor on a new actor with a new warm process
    assert run.seen["t01"][1:] == run.seen[AGENT_KILLED][1:], run.seen
    assert run.seen["t03"][2] != run.seen[ACTOR_KILLED][2] and run.seen["t03"][1] != run.seen[ACTOR_KILLED][1]
    assert run.records["t03"]["status"] == "done"
    # what the killed actor's task left in its folder went with the actor that replaced it
    assert len(run.killed_root) == 1 and not run.killed_root[0].exists(), run.killed_root


def test_a_task_never_sees_the_environment_of_the_task_before_it_and_a_dead_warm_process_is_replaced(root: Path) -> None:
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
                warm_pids = []
                for task_id, extra in (("t00", {"KB_TASK_SECRET": "t00-secret"}), ("t01", {}), ("t02", {})):
                    spec = TaskSpec(id=task_id, task=f"BATCH-{task_id}: print", repo=str(repo))
                    results.append(await actor.run(spec.as_dict(), {**base, **extra}))
                    assert actor.pool is not None and actor.pool.done()
                    warm = actor.pool.result()
                    assert warm is not None and warm.proc.poll() is None
                    warm_pids.append(warm.proc.pid)
                    if task_id == "t00":
                        assert b"t00-secret" in Path(f"/proc/{warm.proc.pid}/environ").read_bytes()  # t00 started it
                    if task_id == "t01":  # the warm process dies between tasks: the next task gets a new one
                        os.kill(warm.proc.pid, signal.SIGKILL)
                        await asyncio.to_thread(warm.proc.wait)
                assert warm_pids[0] == warm_pids[1] != warm_pids[2]
                return results
            finally:
                await actor.close()

        results = asyncio.run(scenario())
        assert [r["record"]["status"] for r in results] == ["done", "done", "done"], results
        assert "secret=t00-secret" in _second_turn_output(server, "t00")
        assert "secret=none" in _second_turn_output(server, "t01")
        assert "secret=none" in _second_turn_output(server, "t02")
    assert {"agent.log", "patch.diff", "result.json"} <= set(results[1]["files"])
    assert not folders[0].exists()  # the actor's checkouts and artifacts are gone once it is closed



@pytest.mark.xdist_group("batch_ray_warm")  # one worker runs the module's batch once
def test_ctrl_c_ends_the_tasks_on_an_actor_and_leaves_the_batch_resumable(
    actor_run: ActorRun, root: Path, cluster: str
) -> None:
    """Two tasks at once on the two-CPU cluster: one actor, both agents forks of its one warm process."""
    folder = root / "interrupt"
    repo = make_repos(folder, 1)[0].resolve()
    tasks = folder / "TASKS.jsonl"
    tasks.write_text("".join(json.dumps({"id": i, "task": f"BATCH-{i}: wait", "repo": str(repo)}) + "\n"
                             for i in ("t00", "t01")))
    seen: dict[str, tuple[int, int, int]] = {}

    def answer(request: RecordedRequest) -> Reply:
        seen[task_of(request)] = _agent_of(task_of(request), repo)
        return Reply(fault=Fault.hang())  # every agent is mid-request when the user presses Ctrl-C

    with FakeLLM() as server:
        server.responder = answer
        driver = subprocess.Popen(
            [sys.executable, "-m", "kimicode", "batch", str(tasks), "--ray", cluster, "--workers", "2", "--out", "out"],
            cwd=folder, env=cli_env(root / "home", server.base_url), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert server.wait_for_requests(2, timeout=120), "both agents reach the model"
            # The server counts a request before its answer is asked for: both agents are found, then Ctrl-C.
            assert wait_until(lambda: len(seen) == 2, timeout=60), seen
            driver.send_signal(signal.SIGINT)
            _, stderr = driver.communicate(timeout=60)
        finally:
            if driver.poll() is None:
                driver.kill()
    assert driver.returncode == 130, stderr
    assert "interrupted: rerun the same command to finish" in stderr
    assert read_results(folder / "out") == []  # nothing half-done is recorded
    assert sorted(seen) == ["t00", "t01"] and seen["t00"][1:] == seen["t01"][1:], seen
    listed = subprocess.run(["git", "worktree", "list"], cwd=repo, capture_output=True, text=True).stdout
    assert len(listed.splitlines()) == 1, listed  # each task's clean-up ran: checkouts removed
    agents_and_warm = [seen["t00"][0], seen["t01"][0], seen["t00"][1]]
    assert wait_until(lambda: not any(_alive(pid) for pid in agents_and_warm), timeout=30), agents_and_warm


def test_only_the_folders_of_dead_actors_are_swept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    claim = "from kimicode.batch.ray_actor import _claim_root; print(_claim_root()[0])"
    env = {**cli_env(tmp_path / "home"), "TMPDIR": str(tmp_path)}
    dead = Path(subprocess.run([sys.executable, "-c", claim], env=env, capture_output=True, text=True,
                               check=True).stdout.strip())
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    live, fd = _claim_root()
    other = tmp_path / f"{ROOT_PREFIX}bench"  # the same prefix, but no actor's
    other.mkdir()
    try:
        assert dead.parent == live.parent == tmp_path and (dead / LIVE_MARK).exists()
        sweep_dead_roots(tmp_path, mine=other)
        assert not dead.exists() and live.exists() and other.exists()
    finally:
        os.close(fd)
