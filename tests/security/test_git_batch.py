"""`kimicode batch` against hostile refs and hostile agents: trust is per commit, the driver's git runs no
code from a checkout."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.batch_script import steps_done
from tests.clirun import run_cli, write_home_config
from tests.fake_llm import FakeLLM, RecordedRequest, Reply, ToolCall

# sandbox off: the agent's plant must succeed whatever the sandbox holds; what is tested is the driver.
HOME_CONFIG = 'retry_base_delay = 0.01\nmax_retries = 1\nmcp_startup_wait = 30\nsandbox = "off"\n'


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd, check=True, capture_output=True)


def _repo(path: Path, files: dict[str, str]) -> Path:
    path.mkdir(parents=True)
    _git(path, "init", "-q", "-b", "main")
    for name, text in {"name.txt": "r\n", **files}.items():
        (path / name).write_text(text)
    _git(path, "add", "-A")
    _git(path, "commit", "-qm", "init")
    return path


def _mcp_json(marker: Path) -> str:
    return json.dumps({"mcpServers": {"planted": {"command": "sh", "args": ["-c", f"touch {marker}"]}}})


def _submit_at_once(request: RecordedRequest) -> Reply:
    if steps_done(request) == 0:
        return Reply(tool_calls=[ToolCall("createfile", {"path": "done.txt", "content": "ok\n"})])
    return Reply(tool_calls=[ToolCall("submit", {"summary": "written"})])


def _batch(fake_llm: FakeLLM, home: Path, root: Path, tasks: list[dict[str, str]]) -> list[dict[str, object]]:
    (root / "TASKS.jsonl").write_text("".join(json.dumps(t) + "\n" for t in tasks))
    proc = run_cli(
        ["batch", "TASKS.jsonl", "--workers", "1", "--out", "out"],
        home=home, cwd=root, base_url=fake_llm.base_url, timeout=180,
    )
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in (root / "out" / "results.jsonl").read_text().splitlines()]


def test_a_branch_adding_settings_to_a_trusted_repo_gets_no_trust(fake_llm: FakeLLM, tmp_path: Path) -> None:
    home = tmp_path / "home"
    write_home_config(home, HOME_CONFIG)
    evil_marker, same_marker = tmp_path / "EVIL-SERVER-RAN", tmp_path / "TRUSTED-SERVER-RAN"
    plain = _repo(tmp_path / "plain", {})
    _git(plain, "checkout", "-qb", "evil")
    (plain / ".mcp.json").write_text(_mcp_json(evil_marker))
    _git(plain, "add", "-A")
    _git(plain, "commit", "-qm", "add a server")
    _git(plain, "checkout", "-q", "main")
    # The control: a repository whose trusted settings are the ones at the task's ref keeps --trust.
    configured = _repo(tmp_path / "configured", {".mcp.json": _mcp_json(same_marker)})
    for repo in (plain, configured):
        assert run_cli(["trust"], home=home, cwd=repo).returncode == 0
    fake_llm.responder = _submit_at_once
    results = _batch(fake_llm, home, tmp_path, [
        {"id": "evil", "task": "write done.txt", "repo": str(plain), "ref": "evil"},
        {"id": "same", "task": "write done.txt", "repo": str(configured), "ref": "main"},
    ])
    assert {r["id"]: r["status"] for r in results} == {"evil": "done", "same": "done"}
    assert same_marker.exists(), "the trusted repository's server did not start: this test proves nothing"
    assert not evil_marker.exists(), "the branch's new server ran with the trust given to main"


PLANT_GITDIR = (
    "set -e\ngit init -q eg && mv eg/.git evilgit && rmdir eg\n"
    'git --git-dir=evilgit config core.fsmonitor "touch {marker}; false"\n'
    'echo "gitdir: ./evilgit" > .git\n'
)


def test_an_agent_pointing_its_checkout_at_its_own_gitdir_gets_no_code_run_by_the_driver(
    fake_llm: FakeLLM, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    write_home_config(home, HOME_CONFIG)
    marker = tmp_path / "DRIVER-RAN-IT"
    repo = _repo(tmp_path / "repo", {"plant.sh": PLANT_GITDIR.format(marker=marker)})

    def agent(request: RecordedRequest) -> Reply:
        if steps_done(request) == 0:
            return Reply(tool_calls=[ToolCall("createfile", {"path": "done.txt", "content": "ok\n"})])
        if steps_done(request) == 1:
            return Reply(tool_calls=[ToolCall("bash", {"command": "bash plant.sh"})])
        return Reply(tool_calls=[ToolCall("submit", {"summary": "written"})])

    fake_llm.responder = agent
    results = _batch(fake_llm, home, tmp_path, [{"id": "t1", "task": "write done.txt", "repo": str(repo)}])
    assert results[0]["status"] == "done"
    assert not marker.exists(), "the driver's git ran the checkout's planted fsmonitor"
    # The patch is still the task's work, read through the checkout's real git directory.
    patch = (tmp_path / "out" / "t1" / "patch.diff").read_text()
    assert "+++ b/done.txt" in patch
