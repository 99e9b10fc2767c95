"""Start-up of a one-shot run (`kimicode -p`): what it loads, and that the collector it pauses while loading
works again once the run does (kimicode/frontends/common/heap.py).

The process is observed from inside by a ``sitecustomize`` put first on its path: at exit it writes down
whether the openai SDK was imported, whether the cyclic collector is on, and every module loaded.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from kimicode.frontends.headless.printer import EXIT_FAILED, EXIT_USAGE
from tests.clirun import REPO, run_cli
from tests.fake_llm import FakeLLM, Reply

WATCH = """\
import atexit, gc, json, os, sys

def _write() -> None:
    state = {"openai": "openai" in sys.modules, "collecting": gc.isenabled(), "modules": sorted(sys.modules)}
    with open(os.environ["STARTUP_WATCH_OUT"], "w", encoding="utf-8") as handle:
        json.dump(state, handle)

atexit.register(_write)  # registered first, so it runs after every handler kimicode registers
"""


@pytest.fixture
def watch(tmp_path: Path) -> tuple[dict[str, str], Path]:
    site = tmp_path / "watch"
    site.mkdir()
    (site / "sitecustomize.py").write_text(WATCH, encoding="utf-8")
    out = tmp_path / "state.json"
    env = {"PYTHONPATH": os.pathsep.join([str(site), str(REPO)]), "STARTUP_WATCH_OUT": str(out)}
    return env, out


def test_a_run_loads_the_sdk_and_collects_again(
    fake_llm: FakeLLM, home: Path, workspace: Path, watch: tuple[dict[str, str], Path]
) -> None:
    env, out = watch
    fake_llm.script(Reply(content="done"))
    proc = run_cli(["-p", "say done"], home=home, cwd=workspace, base_url=fake_llm.base_url, env_extra=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "done"
    state = json.loads(out.read_text(encoding="utf-8"))
    assert (state["openai"], state["collecting"]) == (True, True)


# Loaded by a plain `import openai`, never used by a run that posts its own request bytes (llm/sdk_import.py).
SDK_TYPES_UNUSED = ("openai.types.graders", "openai.types.responses.response", "openai.types.eval_create_params")
# What only other runs use: the swarm's orchestration (swarm mode), the REPL's screen,
# the hooks' runner (a run with hooks configured), the browser (a run that takes a screenshot).
OTHER_MODES = ("kimicode.agent.swarm", "kimicode.tools.spawn_agents", "prompt_toolkit", "rich", "kimicode.extensions.hooks",
               "kimicode.vision.browser")


def test_a_one_shot_run_leaves_out_what_its_first_request_does_not_need(
    fake_llm: FakeLLM, home: Path, workspace: Path, watch: tuple[dict[str, str], Path]
) -> None:
    env, out = watch
    fake_llm.script(Reply(content="done"))
    proc = run_cli(["-p", "say done"], home=home, cwd=workspace, base_url=fake_llm.base_url, env_extra=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "done"
    loaded = set(json.loads(out.read_text(encoding="utf-8"))["modules"])
    assert "openai" in loaded  # the run did talk through the SDK
    assert loaded.isdisjoint(SDK_TYPES_UNUSED)
    assert loaded.isdisjoint(OTHER_MODES)
    # The machine was asked ahead (llm/sdk_import.py ask_platform): the SDK's headers still say what it is.
    headers = fake_llm.requests[0].headers
    assert headers.get("x-stainless-os") not in (None, "", "Unknown")
    assert headers.get("x-stainless-arch") not in (None, "", "unknown")


@pytest.mark.parametrize(
    ("args", "stdin", "base_url"),
    [
        (["-p"], "", None),  # no task
        (["-p", "hi"], "", "ftp://example.invalid/v1"),  # no endpoint to talk to
    ],
    ids=["no-task", "bad-base-url"],
)
def test_a_run_refused_before_its_request_does_not_load_the_sdk(
    args: list[str], stdin: str, base_url: str | None, home: Path, workspace: Path, watch: tuple[dict[str, str], Path]
) -> None:
    env, out = watch
    proc = run_cli(args, home=home, cwd=workspace, base_url=base_url, stdin=stdin, env_extra=env)
    assert proc.returncode == EXIT_USAGE, proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr  # one line, no traceback
    assert json.loads(out.read_text(encoding="utf-8"))["openai"] is False


def test_a_certificate_store_that_cannot_be_loaded_is_still_one_line(
    fake_llm: FakeLLM, home: Path, workspace: Path, tmp_path: Path
) -> None:
    """The TLS context is made ahead, in a thread (llm/tls.py): its failure is said once, where the client is
    made, not as a thread's traceback."""
    fake_llm.script(Reply(content="done"))
    missing = str(tmp_path / "no-such-store.pem")
    proc = run_cli(["-p", "say done"], home=home, cwd=workspace, base_url=fake_llm.base_url,
                   env_extra={"SSL_CERT_FILE": missing})
    assert proc.returncode == EXIT_FAILED, proc.stderr
    assert proc.stderr.count("\n") == 1 and "FileNotFoundError" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert fake_llm.requests == []


def mcp_modules(loaded: set[str]) -> set[str]:
    """The MCP client's modules among ``loaded``: the SDK's and kimicode's own, but for reading the
    configuration (which every run does, to find out whether there is a server at all)."""
    config_only = {"kimicode.mcp", "kimicode.mcp.server_config", "kimicode.mcp.store"}
    return {
        name for name in loaded
        if name == "mcp" or name.startswith("mcp.") or (name.startswith("kimicode.mcp.") and name not in config_only)
    }


def test_a_run_without_mcp_servers_loads_no_mcp_client(
    fake_llm: FakeLLM, home: Path, workspace: Path, watch: tuple[dict[str, str], Path]
) -> None:
    env, out = watch
    fake_llm.script(Reply(content="done"))
    proc = run_cli(["-p", "say done"], home=home, cwd=workspace, base_url=fake_llm.base_url, env_extra=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "done"
    assert mcp_modules(set(json.loads(out.read_text(encoding="utf-8"))["modules"])) == set()


@pytest.mark.parametrize(
    ("task", "said"),
    [
        ("/mcp__srv__greet hello", "no MCP server offers the prompt /mcp__srv__greet (offered: none)"),
        ("read @nosuch:file:///notes.txt", "no MCP server is named 'nosuch' (servers: none)"),
    ],
    ids=["prompt-command", "resource-mention"],
)
def test_without_servers_an_mcp_prompt_or_resource_is_still_refused(
    task: str, said: str, fake_llm: FakeLLM, home: Path, workspace: Path
) -> None:
    """The MCP modules are left out only for a message that could not name a server's prompt or resource."""
    proc = run_cli(["-p", task], home=home, cwd=workspace, base_url=fake_llm.base_url)
    assert proc.returncode == EXIT_USAGE, proc.stderr
    assert proc.stderr.count("\n") == 1 and said in proc.stderr, proc.stderr
    assert fake_llm.requests == []
