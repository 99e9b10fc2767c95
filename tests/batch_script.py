"""Helpers for batch tests: small git repositories, a TASKS.jsonl, and the scripted agent behind each task."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

from tests.fake_llm import Fault, RecordedRequest, Reply, ToolCall
from tests.swarm_script import first_user_text, steps_done

TASK_ID = re.compile(r"BATCH-(\S+?):")
HOME_CONFIG = "retry_base_delay = 0.01\nmax_retries = 10\nswarm_concurrency = 2\n"
CHECK_FAILS = "t07"  # its check looks for a file nobody writes
AGENT_ERRORS = "t13"  # its model answers 400


def make_repos(root: Path, count: int = 3) -> list[Path]:
    repos = []
    for k in range(count):
        repo = root / f"repo{k}"
        repo.mkdir(parents=True)
        (repo / "name.txt").write_text(f"repo{k}\n")
        subprocess.run(
            "git init -q && git add . && git -c user.name=t -c user.email=t@t commit -qm init",
            shell=True, cwd=repo, check=True,
        )
        repos.append(repo)
    return repos


def write_tasks(path: Path, repos: list[Path], count: int) -> list[str]:
    lines: list[dict[str, Any]] = []
    for i in range(count):
        task_id = f"t{i:02d}"
        check = "test -f missing.txt" if task_id == CHECK_FAILS else f"grep -q {task_id} done.txt && test -f name.txt"
        lines.append({"id": task_id, "task": f"BATCH-{task_id}: write done.txt", "repo": str(repos[i % len(repos)]),
                      "check": check})
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return [line["id"] for line in lines]


def task_of(request: RecordedRequest) -> str:
    match = TASK_ID.search(first_user_text(request))
    return match.group(1) if match else ""


def responder(latency: float = 0.02) -> Any:
    """Each task's agent: createfile done.txt with its id, then submit; AGENT_ERRORS gets a 400."""

    def answer(request: RecordedRequest) -> Reply:
        task_id = task_of(request)
        if task_id == AGENT_ERRORS:
            return Reply(fault=Fault.http(400, "this request is broken", "invalid_request_error"))
        if steps_done(request) == 0:
            return Reply(delay=latency, tool_calls=[ToolCall("createfile", {"path": "done.txt", "content": f"{task_id}\n"})])
        return Reply(delay=latency, tool_calls=[ToolCall("submit", {"summary": f"{task_id} written"})])

    return answer


def read_results(out: Path) -> list[dict[str, Any]]:
    path = out / "results.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def comparable(records: list[dict[str, Any]], out: Path) -> dict[str, tuple[Any, ...]]:
    """What must not depend on where a task ran."""
    return {
        r["id"]: (r["status"], r.get("reason", ""), r.get("check_exit"), r["num_steps"], r["result"],
                  (out / r["id"] / "patch.diff").read_text())
        for r in records
    }
