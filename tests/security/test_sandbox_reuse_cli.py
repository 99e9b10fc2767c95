"""Through the real CLI (`kimicode -p -y`, scripted model over HTTP): a secret that appears on the host in
the middle of a run, after the session sandbox's description has been reused for several commands, never
reaches the model — the bytes sent back to it after the next command hold no trace of it."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

from tests.clirun import cli_env, write_home_config
from tests.fake_llm import FakeLLM, Reply, ToolCall
from tests.fake_llm.recorded import RecordedRequest
from tests.sandboxing import needs_bwrap

WARM_STEPS = 4  # commands before the secret appears: the last ones reuse the description


@needs_bwrap
def test_a_secret_made_on_the_host_mid_run_is_hidden_from_the_next_command(tmp_path: Path) -> None:
    home, workspace = tmp_path / "kimihome", tmp_path / "proj"
    workspace.mkdir()
    (workspace / "show.sh").write_text("cat .e*\n")  # a script in the repository: the policy cannot see into it
    write_home_config(home, "retry_base_delay = 0.01\nmax_retries = 1\n")
    secret = "SECRET-" + uuid.uuid4().hex

    def model(request: RecordedRequest) -> Reply:
        steps = len(request.tool_results())
        if steps < WARM_STEPS:
            return Reply(tool_calls=[ToolCall("bash", {"command": f"echo step {steps}"})])
        if steps == WARM_STEPS:  # the user's own editor writes the file, between two of the model's steps
            (workspace / ".env.local").write_text(f"API_KEY={secret}\n")
            return Reply(tool_calls=[ToolCall("bash", {"command": "bash show.sh; echo looked"})])
        return Reply(content="Done.")

    with FakeLLM() as fake:
        fake.responder = model
        proc = subprocess.run(
            [sys.executable, "-m", "kimicode", "-p", "-y", "look around"], cwd=workspace,
            env=cli_env(home, fake.base_url), input="", capture_output=True, text=True, timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        last = fake.chat_requests[-1]
    results = "\n".join(str(r.get("content")) for r in last.tool_results())
    assert len(last.tool_results()) == WARM_STEPS + 1 and "looked" in results, results
    assert secret not in results and secret not in proc.stdout + proc.stderr
