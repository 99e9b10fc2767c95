"""The GitHub Action: action.yml's contract (B.15) and its script (action/run.py) run here against the
scripted model server, in a git repository, with a stand-in for GitHub's comment API on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.clirun import REPO, cli_env
from tests.fake_llm import FakeLLM, Reply, ToolCall

SCRIPT = REPO / "action" / "run.py"


def outputs(path: Path) -> dict[str, str]:
    """The GITHUB_OUTPUT file read as the runner reads it (name<<DELIMITER ... DELIMITER)."""
    found: dict[str, str] = {}
    lines = path.read_text(encoding="utf-8").split("\n")
    i = 0
    while i < len(lines) and lines[i]:
        name, delimiter = lines[i].split("<<", 1)
        end = lines.index(delimiter, i + 1)
        found[name] = "\n".join(lines[i + 1 : end])
        i = end + 1
    return found


@pytest.fixture
def github() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers["content-length"]))
            received.append({"path": self.path, "auth": self.headers["authorization"], "body": json.loads(body)})
            self.send_response(201)
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: Any) -> None:
            return None

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()
    server.server_close()


def test_action_yml_declares_the_contract() -> None:
    action = yaml.safe_load((REPO / "action.yml").read_text(encoding="utf-8"))
    assert action["runs"]["using"] == "composite"
    assert {"prompt", "args", "api-key"} <= set(action["inputs"]) and action["inputs"]["prompt"]["required"]
    assert set(action["outputs"]) == {"result", "patch"}
    run = next(step for step in action["runs"]["steps"] if step.get("id") == "run")
    assert "action/run.py" in run["run"] and run["env"]["KIMI_API_KEY"] == "${{ inputs.api-key }}"
    # the prompt reaches the script through the environment, never spliced into the shell command
    assert "inputs.prompt" not in run["run"]


def test_the_script_runs_kimicode_and_outputs_result_and_patch(
    fake_llm: FakeLLM, home: Path, tmp_path: Path, github: tuple[str, list[dict[str, Any]]]
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "app.py").write_text("print('hello')\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run([*git, "add", "."], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "start"], cwd=repo, check=True)
    fake_llm.script(
        Reply(tool_calls=[ToolCall("strreplace", {"path": "app.py", "old_str": "hello", "new_str": "hello, world"})]),
        Reply(tool_calls=[ToolCall("createfile", {"path": "test_app.py", "content": "def test_app():\n    assert True\n"})]),
        Reply(content="Greeted the world and added a test."),
    )
    api, comments = github
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": 7}}))
    out = tmp_path / "github_output"
    env = cli_env(home, fake_llm.base_url)
    env.update({
        "INPUT_PROMPT": "greet the world; add a test", "INPUT_ARGS": "-y --sandbox off", "INPUT_COMMENT": "true",
        "KIMICODE_COMMAND": f"{sys.executable} -m kimicode", "GITHUB_OUTPUT": str(out), "GITHUB_EVENT_PATH": str(event),
        "GITHUB_REPOSITORY": "octo/app", "GITHUB_TOKEN": "gh-test-token", "GITHUB_API_URL": api,
    })
    done = subprocess.run([sys.executable, str(SCRIPT)], cwd=repo, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    found = outputs(out)
    assert found["result"] == "Greeted the world and added a test."
    assert "-print('hello')\n+print('hello, world')" in found["patch"]
    assert "+++ b/test_app.py" in found["patch"] and "+def test_app():" in found["patch"]
    applied = subprocess.run(["git", "apply", "--check", "-R"], cwd=repo, input=found["patch"] + "\n", text=True, capture_output=True)
    assert applied.returncode == 0, applied.stderr  # a patch git understands
    assert comments and comments[0]["path"] == "/repos/octo/app/issues/7/comments"
    assert comments[0]["auth"] == "Bearer gh-test-token"
    assert "Greeted the world" in comments[0]["body"]["body"] and "`test_app.py`" in comments[0]["body"]["body"]


def test_a_failed_run_still_writes_its_result_and_fails_the_step(fake_llm: FakeLLM, home: Path, tmp_path: Path) -> None:
    out = tmp_path / "github_output"
    env = cli_env(home, "ftp://example.invalid/v1")
    env.update({"INPUT_PROMPT": "anything", "KIMICODE_COMMAND": f"{sys.executable} -m kimicode", "GITHUB_OUTPUT": str(out)})
    done = subprocess.run([sys.executable, str(SCRIPT)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    found = outputs(out)
    assert "ftp://example.invalid" in found["result"] and found["patch"] == ""
    assert os.path.exists(out)
