"""Keys kimicode knows (environment, user config, MCP settings) and key-shaped strings never reach the
session file, stdout (text, json, stream-json) or stderr — with the real CLI against the scripted server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

from kimicode.mcp.server_config import McpServerConfig
from kimicode.mcp.store import save_servers
from tests.clirun import cli_env, write_home_config
from tests.fake_llm import Fault, FakeLLM, Reply, ToolCall
from tests.mcp_servers.fixtures import stdio_config

SETTINGS = "retry_base_delay = 0.01\nmax_retries = 1\n"
# Deliberately not key-shaped (no "sk-" prefix): only knowing it can hide it.
CONFIG_KEY = "cfgkey_" + uuid.uuid4().hex


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "kimihome"
    write_home_config(home, SETTINGS)
    return home


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "proj"
    ws.mkdir()
    return ws


def run(
    home: Path, cwd: Path, base_url: str, *args: str, key_in_env: bool = True, timeout: float = 90
) -> subprocess.CompletedProcess[str]:
    env = cli_env(home, base_url)
    if not key_in_env:
        del env["KIMI_API_KEY"]  # the key lives only in KIMICODE_HOME/config.toml
    return subprocess.run(
        [sys.executable, "-m", "kimicode", *args],
        cwd=cwd,
        env=env,
        input="",
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def session_text(home: Path) -> str:
    return "\n".join(p.read_text() for p in sorted((home / "sessions").glob("*/*.jsonl")))


@pytest.mark.parametrize("fmt", ["text", "json", "stream-json"])
def test_config_file_key_reaches_no_output(home: Path, workspace: Path, fmt: str) -> None:
    write_home_config(home, SETTINGS + f'api_key = "{CONFIG_KEY}"\n')
    with FakeLLM(api_key=CONFIG_KEY) as fake:
        fake.script(
            Reply(tool_calls=[ToolCall("bash", {"command": f"echo the key is {CONFIG_KEY}"})]),
            Reply(content=f"I found it: {CONFIG_KEY}. Done."),
        )
        proc = run(home, workspace, fake.base_url, "-p", "-y", "find the key", "--output-format", fmt, key_in_env=False)
        assert proc.returncode == 0, proc.stderr
        # The model really saw the key (so the test is about output, not about the key never showing up).
        assert CONFIG_KEY in fake.chat_requests[-1].messages[-1]["content"]
    log = session_text(home)
    assert "the key is" in log and "[redacted]" in log
    for where, text in (("session file", log), ("stdout", proc.stdout), ("stderr", proc.stderr)):
        assert CONFIG_KEY not in text, f"the config key reached the {where}"
    assert "[redacted]" in proc.stdout


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_error_body_echoing_the_key_is_redacted(home: Path, workspace: Path, fmt: str) -> None:
    write_home_config(home, SETTINGS + f'api_key = "{CONFIG_KEY}"\n')
    with FakeLLM() as fake:
        echoed = f"Invalid Authentication: key {CONFIG_KEY} is not valid"
        fake.script(Reply(fault=Fault.http(401, echoed, "invalid_authentication_error")))
        proc = run(home, workspace, fake.base_url, "-p", "hello", "--output-format", fmt, key_in_env=False)
    assert proc.returncode == 2, proc.stderr
    assert CONFIG_KEY not in proc.stderr and CONFIG_KEY not in proc.stdout
    assert CONFIG_KEY not in session_text(home)
    if fmt == "json":
        result = json.loads(proc.stdout)
        assert result["is_error"] and "[redacted]" in result["result"]
    else:
        assert "[redacted]" in proc.stderr and "401" in proc.stderr


def test_key_shaped_strings_in_tool_output_are_redacted(home: Path, workspace: Path) -> None:
    shaped = "sk-" + uuid.uuid4().hex
    bearer = "tok" + uuid.uuid4().hex[:20]
    command = f"echo key={shaped}; echo 'Authorization: Bearer {bearer}'; echo plain-bearer Bearer {bearer}x"
    with FakeLLM() as fake:
        fake.script(Reply(tool_calls=[ToolCall("bash", {"command": command})]), Reply(content="Looked."))
        proc = run(home, workspace, fake.base_url, "-p", "-y", "look", "--output-format", "stream-json")
        assert proc.returncode == 0, proc.stderr
        assert shaped in fake.chat_requests[-1].messages[-1]["content"]
    log = session_text(home)
    assert "key=[redacted]" in log and "plain-bearer" in log
    for text in (log, proc.stdout, proc.stderr):
        assert shaped not in text and bearer not in text
    # Ordinary words stay: redaction must not eat text that only resembles a key.
    ordinary = "task-description-of-the-desk-reservation"
    assert _echo_roundtrip(home, workspace, ordinary) == ordinary


def _echo_roundtrip(home: Path, workspace: Path, text: str) -> str:
    with FakeLLM() as fake:
        fake.script(Reply(content=text))
        proc = run(home, workspace, fake.base_url, "-p", "say it")
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_mcp_env_and_header_values_are_redacted(home: Path, workspace: Path) -> None:
    token = "mcptok_" + uuid.uuid4().hex
    header = "hdr" + uuid.uuid4().hex
    demo = stdio_config("demo")
    demo.env = {"DEMO_SERVICE_TOKEN": token}
    remote = McpServerConfig(
        name="remote", transport="http", url="http://127.0.0.1:9/mcp", headers={"X-Api-Token": header}
    )
    save_servers(home, [demo, remote])
    write_home_config(home, SETTINGS + "mcp_startup_wait = 30\n")
    with FakeLLM() as fake:
        fake.script(
            Reply(tool_calls=[ToolCall("mcp__demo__echo", {"text": f"token {token}"})]),
            Reply(content=f"The token is {token} and the header {header}."),
        )
        proc = run(home, workspace, fake.base_url, "-p", "-y", "use the server", "--output-format", "json")
        assert proc.returncode == 0, proc.stderr
        assert token in fake.chat_requests[-1].messages[-1]["content"]
    log = session_text(home)
    logs = "\n".join(p.read_text() for p in (home / "logs").rglob("*") if p.is_file())
    for text in (log, proc.stdout, proc.stderr, logs):
        assert token not in text and header not in text
    assert "The token is [redacted]" in json.loads(proc.stdout)["result"]


def test_a_script_reading_kimicodes_own_start_environment_finds_no_key(home: Path, workspace: Path) -> None:
    # /proc/<pid>/environ shows the environment a process was started with, whatever it unset since. A
    # command naming it is refused (a secret path), but an unsandboxed script the model wrote can read it
    # without naming it: it must find the variables blanked, not the keys. Counted, not printed: printed,
    # redaction would hide them either way.
    script = (
        "import os\n"
        "found, pid = 0, os.getppid()\n"
        "while pid > 1:  # up to the kimicode that started this\n"
        "    if b'kimicode' in open(f'/proc/{pid}/cmdline', 'rb').read():\n"
        "        entries = open(f'/proc/{pid}/' + 'env' + 'iron', 'rb').read().split(bytes(1))\n"
        "        found = sum(e.startswith((b'KIMI_API_KEY=', b'OPENAI_API_KEY=')) for e in entries)\n"
        "        print('kimicode found')\n"
        "        break\n"
        "    pid = int(open(f'/proc/{pid}/stat').read().rsplit(')', 1)[1].split()[1])\n"
        "print('keys found:', found)\n"
    )
    with FakeLLM() as fake:
        fake.script(
            Reply(tool_calls=[ToolCall("createfile", {"path": "count.py", "content": script})]),
            Reply(tool_calls=[ToolCall("bash", {"command": "python3 count.py"})]),
            Reply(content="Counted."),
        )
        env = cli_env(home, fake.base_url, OPENAI_API_KEY="sk-" + uuid.uuid4().hex)
        proc = subprocess.run(
            [sys.executable, "-m", "kimicode", "-p", "-y", "--sandbox", "off", "count"],
            cwd=workspace, env=env, input="", capture_output=True, text=True, timeout=90,
        )
        assert proc.returncode == 0, proc.stderr
        result = fake.chat_requests[-1].messages[-1]["content"]
    assert "kimicode found" in result and "keys found: 0" in result, result


MEMORY_READER = (
    "import os, sys\n"
    "needle = sys.argv[1][::-1].encode()  # given reversed: the command itself does not hold the key\n"
    "pid = os.getppid()\n"
    "while b'kimicode' not in open(f'/proc/{pid}/cmdline', 'rb').read():\n"
    "    pid = int(open(f'/proc/{pid}/stat').read().rsplit(')', 1)[1].split()[1])\n"
    "print('kimicode found')\n"
    "for name in ('env' + 'iron', 'mem'):\n"
    "    try:\n"
    "        open(f'/proc/{pid}/{name}', 'rb').close()\n"
    "        print(name, 'opened')\n"
    "    except OSError as e:\n"
    "        print(name, 'refused', e.errno)\n"
    "hits = 0\n"
    "try:\n"
    "    mem = open(f'/proc/{pid}/mem', 'rb', buffering=0)\n"
    "    for line in open(f'/proc/{pid}/maps'):\n"
    "        span, perms = line.split()[:2]\n"
    "        if perms.startswith('rw'):\n"
    "            lo, hi = (int(x, 16) for x in span.split('-'))\n"
    "            try:\n"
    "                mem.seek(lo)\n"
    "                hits += mem.read(hi - lo).count(needle)\n"
    "            except OSError:\n"
    "                pass\n"
    "except OSError:\n"
    "    pass\n"
    "print('key copies read:', hits)\n"
)


@pytest.mark.skipif(not sys.platform.startswith("linux") or os.geteuid() != 0, reason="switches to uid 1000 (Linux, as root)")
def test_a_process_of_the_same_user_cannot_read_kimicodes_memory(tmp_path: Path) -> None:
    # The key lives in kimicode's heap however its environment is blanked. Another process of the same
    # (unprivileged) user — here a script kimicode runs outside the sandbox — must not read it.
    uid = 1000
    base = Path(tempfile.mkdtemp(prefix="kimicode-mem-", dir="/tmp"))
    try:
        base.chmod(0o755)
        home, workspace, userhome = base / "kimihome", base / "proj", base / "userhome"
        for folder in (home, workspace, userhome):
            folder.mkdir()
            os.chown(folder, uid, uid)
        write_home_config(home, SETTINGS)
        os.chown(home / "config.toml", uid, uid)
        key = "kimikey" + uuid.uuid4().hex
        with FakeLLM() as fake:
            fake.script(
                Reply(tool_calls=[ToolCall("createfile", {"path": "peek.py", "content": MEMORY_READER})]),
                Reply(tool_calls=[ToolCall("bash", {"command": f"python3 peek.py {key[::-1]}"})]),
                Reply(content="Read."),
            )
            env = cli_env(home, fake.base_url, KIMI_API_KEY=key, HOME=str(userhome))
            proc = subprocess.run(
                ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", sys.executable, "-m", "kimicode"]
                + ["-p", "-y", "--sandbox", "off", "peek"],
                cwd=workspace, env=env, input="", capture_output=True, text=True, timeout=90,
            )
            assert proc.returncode == 0, proc.stderr
            result = fake.chat_requests[-1].messages[-1]["content"]
    finally:
        shutil.rmtree(base, ignore_errors=True)
    assert "kimicode found" in result, result
    assert "iron refused 13" in result and "mem refused 13" in result, result
    assert "key copies read: 0" in result, result
