"""What the warm process loads before it forks: everything a task's agent imports, so no task pays for it."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from kimicode.batch.process import run_process
from kimicode.batch.warm import WarmPool, agent_prefix
from kimicode.security.sandbox import _USERNS_CHOICES
from tests.batch_script import HOME_CONFIG, make_repos, read_results, responder, task_of, write_tasks
from tests.clirun import cli_env, write_home_config
from tests.fake_llm import FakeLLM, RecordedRequest, Reply, ToolCall
from tests.swarm_script import steps_done

# The warm process's preparation, then one child's run (zygote._run_main, what a fork runs) in this same
# interpreter: what the run imports on top of the warm process is what each forked agent would import.
CHILD = """
import json, sys, threading
from kimicode.batch import zygote

workspace, report_path = sys.argv[1:3]
zygote._warm()
threads = threading.active_count()
before = set(sys.modules)
sys.argv = ["kimicode", "-p", "--output-format", "json", "-y", "-w", workspace]
code = zygote._run_main()
new = sorted(set(sys.modules) - before)
with open(report_path, "w") as report:
    json.dump({"code": code, "threads": threads, "new": new}, report)
"""


def test_a_task_agent_imports_nothing_the_warm_process_has_not_loaded(fake_llm: FakeLLM, tmp_path: Path) -> None:
    home = tmp_path / "home"
    write_home_config(home, HOME_CONFIG)
    repo = make_repos(tmp_path, 1)[0]
    fake_llm.responder = responder()
    report = tmp_path / "report.json"
    proc = subprocess.run(
        [sys.executable, "-P", "-c", CHILD, str(repo), str(report)],
        cwd=repo, env=cli_env(home, fake_llm.base_url), input="BATCH-t00: write done.txt",
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    found = json.loads(report.read_text())
    assert found["code"] == 0 and json.loads(proc.stdout.strip().splitlines()[-1])["is_error"] is False, proc.stdout
    assert (repo / "done.txt").read_text() == "t00\n"  # the run did the whole task: both turns, the submit
    assert found["threads"] == 1  # the warm process forks: it must hold no thread (zygote.py)
    # Modules of the standard library may still load late (a few are imported inside functions); kimicode's
    # own and its libraries' must not: each is imported, and without .pyc files compiled, once per task.
    late = [name for name in found["new"] if name.split(".")[0] not in sys.stdlib_module_names]
    assert late == [], f"add these to WARM_MODULES in kimicode/batch/zygote.py: {late}"


def test_forks_parse_their_command_line_as_a_fresh_process_does(fake_llm: FakeLLM, tmp_path: Path) -> None:
    """Every fork parses with the command the warm process built: two tasks with different options, one of
    them wrong, get what fresh processes get (the second is not served the first one's values)."""
    home = tmp_path / "home"
    write_home_config(home, HOME_CONFIG)
    workspace = tmp_path / "ws"
    workspace.mkdir()
    fake_llm.responder = lambda request: Reply(content="finished")
    env = cli_env(home, fake_llm.base_url)
    runs = {
        "bad": ["-p", "--output-format", "json", "-y", "-w", str(workspace), "--max-steps", "many"],
        "mode": ["-p", "--output-format", "json", "-y", "-w", str(workspace), "--mode", "nosuchmode"],
        "plain": ["-p", "--output-format", "json", "-y", "-w", str(workspace)],
    }

    async def forked() -> dict[str, tuple[int, dict[str, Any]]]:
        pool = await WarmPool.start(env, tmp_path, "test")
        try:
            seen = {}
            for name, args in runs.items():
                code, out = await run_process(
                    [*agent_prefix(), *args], workspace, "task", tmp_path / f"{name}.log", lambda line: None,
                    env=env, pool=pool,
                )
                seen[name] = (code, json.loads(out.strip().splitlines()[-1]))
            return seen
        finally:
            pool.close()

    fresh = {}
    for name, args in runs.items():
        proc = subprocess.run([*agent_prefix(), *args], cwd=workspace, env=env, input="task", capture_output=True,
                              text=True, timeout=60)
        fresh[name] = (proc.returncode, json.loads(proc.stdout.strip().splitlines()[-1]))
    seen = asyncio.run(forked())
    shown = {name: (code, result.get("is_error"), result.get("result")) for name, (code, result) in seen.items()}
    assert shown == {name: (code, result.get("is_error"), result.get("result")) for name, (code, result) in fresh.items()}
    assert shown["bad"][0] == shown["mode"][0] != 0
    assert "--max-steps" in str(shown["bad"][2]) and "--mode" in str(shown["mode"][2])
    assert shown["plain"] == (0, False, "finished")


BWRAP_LOG = """#!/bin/bash
# Logs each start; the sandbox probe (its command is `true`) fails when the FAIL file exists.
echo "${@: -1}" >> "$(dirname "$0")/starts"
if [ "${@: -1}" = true ] && [ -e "$(dirname "$0")/FAIL" ]; then echo "no namespaces here" >&2; exit 1; fi
exec /usr/bin/bwrap "$@"
"""


def _bash_then_submit(request: RecordedRequest) -> Reply:
    task_id = task_of(request)
    if steps_done(request) == 0:
        return Reply(tool_calls=[ToolCall("bash", {"command": f"echo {task_id} > done.txt"})])
    return Reply(tool_calls=[ToolCall("submit", {"summary": f"{task_id} written"})])


def test_the_sandbox_probe_runs_once_per_batch_and_a_failed_one_is_each_tasks_own(
    fake_llm: FakeLLM, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    write_home_config(home, HOME_CONFIG)
    tasks = tmp_path / "TASKS.jsonl"
    write_tasks(tasks, make_repos(tmp_path, 2), 3)
    tasks.write_text(tasks.read_text().replace("test -f missing.txt", "grep -q t07 done.txt"))
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "bwrap").write_text(BWRAP_LOG)
    (tools / "bwrap").chmod(0o755)
    fake_llm.responder = _bash_then_submit
    env = cli_env(home, fake_llm.base_url)
    env["PATH"] = f"{tools}{os.pathsep}{env['PATH']}"
    for out in ("works", "fails"):
        (tools / "starts").unlink(missing_ok=True)
        if out == "fails":
            (tools / "FAIL").touch()
        proc = subprocess.run(
            [sys.executable, "-m", "kimicode", "batch", str(tasks), "--workers", "3", "--out", out],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        assert [r["status"] for r in read_results(tmp_path / out)] == ["done"] * 3
        starts = (tools / "starts").read_text().split()
        logs = [(tmp_path / out / f"t0{i}" / "agent.log").read_text() for i in range(3)]
        if out == "works":
            # One probe, by the warm process; each task's command still ran inside bubblewrap.
            assert starts.count("true") == 1, starts
            assert len([s for s in starts if s != "true"]) >= 3, starts
            assert not any("no sandbox for commands" in log for log in logs), logs
        else:
            # The warm process kept no failure: every task probed for itself and said why it has no sandbox.
            assert starts.count("true") == 4 * len(_USERNS_CHOICES), starts  # the warm process and 3 tasks
            assert all("no sandbox for commands" in log and "no namespaces here" in log for log in logs), logs
