"""Every failure of a headless run is one clear line with the right exit code and, in json, its result object.

A base URL that is not one is a configuration error (exit 2, nothing started); an endpoint that cannot be
reached says why in words (refused, name not resolved, TLS), is retried a few times only, and ends with
``error_kind: "connection"``; an exception inside a tool is a tool error the model reads; any other
unexpected exception is ``error_kind: "internal"``, one line, its traceback kept in a file.

Network tests stay on this machine: refused and TLS failures use loopback; the unresolvable name is looked
up inside a network namespace holding only a loopback interface, where the resolver's address has no route.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from kimicode.llm.reach import CONNECT_RETRIES
from tests.clirun import cli_env, run_cli
from tests.fake_llm import FakeLLM, Reply, ToolCall

# A loopback endpoint is asked GET /models once per run before the first request (llm/endpoint.py).
MODELS_PROBES = 1


def result_of(proc: subprocess.CompletedProcess[str]) -> dict:
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1, proc.stdout
    return json.loads(lines[0])


def stderr_lines(proc: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in proc.stderr.splitlines() if line.strip()]


def session_files(home: Path) -> list[Path]:
    return list((home / "sessions").rglob("*.jsonl")) if (home / "sessions").exists() else []


@pytest.fixture
def refused_url() -> Iterator[str]:
    """A loopback port that is bound but not listening: every connection to it is refused."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    finally:
        sock.close()


@pytest.mark.parametrize("url", ["notaurl", "ftp://127.0.0.1/v1", "http:///v1", "127.0.0.1:8000/v1"])
def test_a_malformed_base_url_is_a_config_error_and_starts_nothing(home: Path, workspace: Path, url: str) -> None:
    proc = run_cli(["-p", "--output-format", "json", "hi"], home=home, cwd=workspace, base_url=url)
    assert proc.returncode == 2, proc.stderr
    (line,) = stderr_lines(proc)
    assert "base URL" in line and url in line and "KIMI_BASE_URL" in line and "Traceback" not in proc.stderr
    result = result_of(proc)
    assert result["is_error"] is True and result["error_kind"] == "config" and result["session_id"] == ""
    assert session_files(home) == []


def test_a_malformed_base_url_flag_names_the_flag(home: Path, workspace: Path) -> None:
    proc = run_cli(["-p", "--base-url", "localhost:8000", "hi"], home=home, cwd=workspace)
    assert proc.returncode == 2
    (line,) = stderr_lines(proc)
    assert "--base-url" in line and "http://" in line
    assert session_files(home) == []


@pytest.mark.parametrize("fmt", ["json", "stream-json", "text"])
def test_a_refused_connection_says_so_in_one_line(home: Path, workspace: Path, refused_url: str, fmt: str) -> None:
    proc = run_cli(["-p", "--output-format", fmt, "hi"], home=home, cwd=workspace, base_url=refused_url)
    assert proc.returncode == 1
    (line,) = stderr_lines(proc)
    assert f"cannot connect to {refused_url}: connection refused" in line
    assert f"{CONNECT_RETRIES + 1} attempts" in line and "Traceback" not in proc.stderr
    if fmt != "text":
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        assert result["type"] == "result" and result["is_error"] is True and result["error_kind"] == "connection"
        assert result["result"].startswith(f"cannot connect to {refused_url}: connection refused")
    else:
        assert proc.stdout == ""


def test_an_unresolvable_name_says_so_and_no_packet_leaves(home: Path, workspace: Path) -> None:
    # Inside a new network namespace only a loopback interface exists: the resolver named in
    # /etc/resolv.conf has no route there, so the lookup fails on this machine without a packet sent.
    url = "http://kimicode-test.invalid/v1"  # RFC 2606: a name that never resolves
    env = cli_env(home, url)
    script = f'ip link set lo up && exec "{sys.executable}" -m kimicode -p --output-format json hi'
    proc = subprocess.run(
        ["unshare", "-n", "sh", "-c", script], cwd=workspace, env=env, input="", capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 1, proc.stderr
    (line,) = stderr_lines(proc)
    assert f"cannot connect to {url}: name not resolved (kimicode-test.invalid)" in line
    assert result_of(proc)["error_kind"] == "connection"


class _NotTLS:
    """A loopback TCP server that answers every connection with plain HTTP: a TLS handshake with it fails."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                try:
                    conn.recv(4096)
                    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                except OSError:
                    pass

    def close(self) -> None:
        self.sock.close()


def test_a_tls_failure_says_so_and_is_retried_only_a_few_times(home: Path, workspace: Path) -> None:
    server = _NotTLS()
    url = f"https://127.0.0.1:{server.port}/v1"
    try:
        proc = run_cli(["-p", "--output-format", "json", "hi"], home=home, cwd=workspace, base_url=url)
    finally:
        server.close()
    assert proc.returncode == 1
    (line,) = stderr_lines(proc)
    assert f"cannot connect to {url}: TLS handshake failed" in line
    assert result_of(proc)["error_kind"] == "connection"
    assert server.connections == MODELS_PROBES + CONNECT_RETRIES + 1


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_rejected_key_is_said_once(home: Path, workspace: Path, fmt: str) -> None:
    with FakeLLM(api_key="the-right-key") as server:
        proc = run_cli(["-p", "--output-format", fmt, "hi"], home=home, cwd=workspace, base_url=server.base_url)
    assert proc.returncode == 2
    (line,) = stderr_lines(proc)
    assert "rejected the key" in line
    if fmt == "json":
        assert result_of(proc)["error_kind"] == "auth"


def test_an_exception_inside_a_tool_is_a_tool_error_and_the_run_goes_on(home: Path, workspace: Path) -> None:
    # A path with a NUL byte is valid JSON from the model, and one the operating system refuses outright.
    with FakeLLM() as server:
        server.script(Reply(tool_calls=[ToolCall("view", {"path": "notes\u0000.txt"})]), Reply(content="done anyway"))
        proc = run_cli(["-p", "--output-format", "json", "read my notes"], home=home, cwd=workspace,
                       base_url=server.base_url)
        requests = server.requests
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "unexpected error" not in proc.stderr
    result = result_of(proc)
    assert result["is_error"] is False and result["result"] == "done anyway" and result["num_steps"] == 2
    assert len(requests) == 2
    (tool_message,) = [m for m in requests[1].body["messages"] if m.get("role") == "tool"]
    assert re.search(r"null|NUL", tool_message["content"])  # the model is told what was wrong with the call


def test_an_unexpected_exception_outside_tools_is_internal_in_one_line(home: Path, workspace: Path) -> None:
    # The sessions folder sits on a file system that is full: the session store cannot write its first
    # record. (A mount namespace of the run's own keeps the full file system out of everyone else's sight.)
    sessions = home / "sessions"
    sessions.mkdir(parents=True)
    env = cli_env(home)
    script = (
        f'mount -t tmpfs -o size=16k tmpfs "{sessions}" && (dd if=/dev/zero of="{sessions}/fill" bs=1k 2>/dev/null; '
        f'exec "{sys.executable}" -m kimicode -p --output-format json hi)'
    )
    with FakeLLM() as server:
        server.script(Reply(content="never asked"))
        env["KIMI_BASE_URL"] = server.base_url
        proc = subprocess.run(
            ["unshare", "-m", "sh", "-c", script], cwd=workspace, env=env, input="", capture_output=True, text=True,
            timeout=60,
        )
    assert proc.returncode == 1, proc.stderr
    (line,) = stderr_lines(proc)
    assert "unexpected error" in line and "No space left on device" in line and "Traceback" not in proc.stderr
    result = result_of(proc)
    assert result["is_error"] is True and result["error_kind"] == "internal"
    logs = list((home / "logs").glob("*.log"))
    assert len(logs) == 1 and str(logs[0]) in line
    assert "Traceback (most recent call last)" in logs[0].read_text() and "OSError" in logs[0].read_text()
