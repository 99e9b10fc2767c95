"""Local models: OpenAI-compatible servers on this machine are found (a real server process on a port),
listed by `kimicode models --local`, used by `--local` without a key, and offered by the REPL's setup.

The usual ports (11434, 1234, 8080, 8000, 30000) may be taken on a test machine, so every test names its
own with KIMICODE_LOCAL_PORTS (`name=port,port`).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from kimicode.llm.local import KNOWN_SERVERS, candidate_ports
from tests.clirun import REPO, cli_env, run_cli
from tests.fake_llm import FakeLLM, Reply
from tests.replpty import Repl


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def server_process() -> Iterator[tuple[int, subprocess.Popen[str]]]:
    """The scripted server as a process of its own, listing its model the way llama.cpp's server does."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fake_llm", "--quiet", "--model", "gemma-local", "--models-style", "llama.cpp",
         "--context-window", "32768", "--competent"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().strip()
        yield int(base_url.rsplit(":", 1)[1].split("/")[0]), proc
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_the_port_list_is_the_known_servers_unless_overridden() -> None:
    assert candidate_ports({}) == list(KNOWN_SERVERS)
    assert ("Ollama", 11434) in KNOWN_SERVERS and ("SGLang", 30000) in KNOWN_SERVERS
    assert candidate_ports({"KIMICODE_LOCAL_PORTS": "llama.cpp=18080, 1234,bogus,99999"}) == [
        ("llama.cpp", 18080),
        ("LM Studio", 1234),
    ]


def test_models_local_finds_a_server_process_and_skips_closed_ports(
    server_process: tuple[int, subprocess.Popen[str]], home: Path, workspace: Path
) -> None:
    port, _ = server_process
    ports = f"{closed_port()},my-server={port}"
    proc = run_cli(["models", "--local", "--json"], home=home, cwd=workspace, env_extra={"KIMICODE_LOCAL_PORTS": ports})
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)["models"]
    assert rows == [
        {"base_url": f"http://127.0.0.1:{port}/v1", "server": "llama.cpp", "id": "gemma-local",
         "context_window": 32768, "owned_by": "llamacpp"}
    ]
    text = run_cli(["models", "--local"], home=home, cwd=workspace, env_extra={"KIMICODE_LOCAL_PORTS": ports})
    assert f"llama.cpp at http://127.0.0.1:{port}/v1" in text.stdout and "gemma-local" in text.stdout
    assert "32,768 tokens" in text.stdout


def test_local_runs_against_the_server_process_without_a_key(
    server_process: tuple[int, subprocess.Popen[str]], home: Path, workspace: Path
) -> None:
    port, _ = server_process
    proc = run_cli(
        ["--local", "-p", "Count from 1 to 10"], home=home, cwd=workspace,
        env_extra={"KIMICODE_LOCAL_PORTS": str(port), "KIMI_API_KEY": ""},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "1 2 3 4 5 6 7 8 9 10"
    assert f"using llama.cpp at http://127.0.0.1:{port}/v1, model gemma-local" in proc.stderr


def test_local_never_sends_the_configured_key(home: Path, workspace: Path) -> None:
    with FakeLLM(model="qwen-local", models_style="ollama") as server:
        server.script(Reply(content="local answer"))
        proc = run_cli(
            ["--local", "-p", "hi"], home=home, cwd=workspace,
            env_extra={"KIMICODE_LOCAL_PORTS": str(server.port), "KIMI_API_KEY": "sk-moonshot-key-1234567890"},
        )
        assert proc.returncode == 0, proc.stderr
        sent = [r.headers.get("authorization", "") for r in server.requests]
    assert proc.stdout.strip() == "local answer"
    assert sent and not any("sk-moonshot" in header for header in sent)
    assert server.chat_requests[0].body["model"] == "qwen-local"


def test_local_picks_the_server_that_serves_the_named_model(home: Path, workspace: Path) -> None:
    with FakeLLM(model="alpha", models_style="vllm") as first, FakeLLM(model="beta", models_style="lmstudio") as second:
        second.script(Reply(content="from beta"))
        ports = f"{first.port},{second.port}"
        proc = run_cli(["--local", "-m", "beta", "-p", "hi"], home=home, cwd=workspace,
                       env_extra={"KIMICODE_LOCAL_PORTS": ports})
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == "from beta" and not first.chat_requests
        missing = run_cli(["--local", "-m", "gamma", "-p", "hi"], home=home, cwd=workspace,
                          env_extra={"KIMICODE_LOCAL_PORTS": ports})
    assert missing.returncode == 2 and "no local server serves model 'gamma'" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1


def test_local_with_no_server_says_so_in_one_line(home: Path, workspace: Path) -> None:
    proc = run_cli(["--local", "-p", "hi"], home=home, cwd=workspace,
                   env_extra={"KIMICODE_LOCAL_PORTS": str(closed_port())})
    assert proc.returncode == 2
    assert "no OpenAI-compatible server answered on this machine" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_models_lists_the_current_endpoints_models(home: Path, workspace: Path) -> None:
    with FakeLLM(model="kimi-k2.5", models_style="vllm", context_window=131072) as server:
        proc = run_cli(["models"], home=home, cwd=workspace, base_url=server.base_url)
        as_json = run_cli(["models", "--json"], home=home, cwd=workspace, base_url=server.base_url)
    assert proc.returncode == 0, proc.stderr
    assert "* kimi-k2.5" in proc.stdout and "131,072 tokens" in proc.stdout
    body = json.loads(as_json.stdout)
    assert body["current"] == "kimi-k2.5" and body["models"][0]["context_window"] == 131072
    saved = json.loads((home / "endpoints.json").read_text())["endpoints"][server.base_url]
    assert saved["server"] == "vllm" and saved["windows"] == {"kimi-k2.5": 131072}


def test_models_with_a_rejected_key_exits_1_with_one_line(home: Path, workspace: Path) -> None:
    with FakeLLM(api_key="the-right-key") as server:
        proc = run_cli(["models"], home=home, cwd=workspace, base_url=server.base_url)
    assert proc.returncode == 1 and "answered 401" in proc.stderr and "KIMI_API_KEY" in proc.stderr


def test_the_repl_setup_offers_a_local_server_and_needs_no_key(home: Path, workspace: Path) -> None:
    with FakeLLM(model="gemma-local", models_style="llama.cpp") as server:
        server.script(Reply(content="hello from the local model"))
        repl = Repl(home, workspace, server.base_url,
                    env={"KIMI_API_KEY": "", "KIMI_BASE_URL": "", "KIMICODE_LOCAL_PORTS": f"{closed_port()},{server.port}"})
        try:
            repl.expect("on this machine, no key needed")
            assert f"4) llama.cpp at {server.base_url} (1 model: gemma-local)" in repl.transcript
            repl.expect("Platform [1]:")
            repl.send_line("4")
            repl.expect("using gemma-local on llama.cpp")
            repl.wait_prompt()
            repl.send_line("hi")
            repl.expect("hello from the local model")
        finally:
            repl.close()
        assert "API key:" not in repl.transcript
        assert server.chat_requests[0].body["model"] == "gemma-local"
    saved = tomllib.loads((home / "config.toml").read_text())
    assert saved == {"base_url": server.base_url, "model": "gemma-local"}


def test_a_saved_local_endpoint_starts_without_setup(home: Path, workspace: Path) -> None:
    with FakeLLM(model="gemma-local", models_style="llama.cpp") as server:
        home.mkdir(parents=True)
        (home / "config.toml").write_text(f'base_url = "{server.base_url}"\nmodel = "gemma-local"\n')
        server.script(Reply(content="no key asked"))
        proc = subprocess.run(
            [sys.executable, "-m", "kimicode", "-p", "hi"], cwd=workspace, capture_output=True, text=True, timeout=60,
            env={**cli_env(home), "KIMI_API_KEY": ""},
        )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "no key asked"


def test_a_local_server_that_wants_a_key_says_so(home: Path, workspace: Path) -> None:
    with FakeLLM(api_key="vllm-secret", models_style="vllm") as server:
        proc = run_cli(["-p", "hi"], home=home, cwd=workspace, base_url=server.base_url, env_extra={"KIMI_API_KEY": ""})
    assert proc.returncode == 2
    assert "the endpoint wants an API key (401" in proc.stderr and "KIMI_API_KEY" in proc.stderr
