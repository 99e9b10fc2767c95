"""The sandbox for the model's commands, against real bubblewrap: writes, secrets, network, processes.

Also the process lifetime around commands (signals, left-behind processes) and the environment they get.
"""

from __future__ import annotations

import asyncio
import http.server
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from kimicode.security.sandbox import Sandbox, detect_sandbox
from kimicode.tools.base import ToolContext, ToolResult
from kimicode.tools.bash import BashTool
from tests.clirun import cli_env, run_cli, write_home_config
from tests.fake_llm import FakeLLM, Reply, ToolCall
from tests.mcp_servers.fixtures import live_processes_with
from tests.sandboxing import bwrap_problem, missing, needs_bwrap

FAST = "retry_base_delay = 0.01\nmax_retries = 2\n"




@pytest.fixture
def userhome(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "userhome"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_rsa").write_text("-----BEGIN OPENSSH PRIVATE KEY----- sshsecret-4242\n")
    monkeypatch.setenv("HOME", str(home))
    return home


@pytest.fixture
def kimihome(tmp_path: Path) -> Path:
    home = tmp_path / "kimihome"
    write_home_config(home, FAST + 'api_key = "sk-configsecret-777"\n')
    return home


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    return ws


def sandbox_for(workspace: Path, kimihome: Path, mode: str = "workspace-write", network: bool = False) -> Sandbox:
    sandbox = detect_sandbox(mode, network, workspace, kimihome)
    assert sandbox.backend == "bwrap", sandbox.unavailable
    return sandbox


def bash(ctx: ToolContext, command: str, **extra: object) -> ToolResult:
    return asyncio.run(BashTool().run({"command": command, **extra}, ctx))


def wait_gone(marker: str, seconds: float = 5.0) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        alive = live_processes_with(marker)
        if not alive:
            return []
        time.sleep(0.05)
    return live_processes_with(marker)


def kill_all(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


# -- the sandbox itself ------------------------------------------------------------------------------


@needs_bwrap
def test_writes_outside_the_workspace_fail_and_inside_work(
    tmp_path: Path, workspace: Path, kimihome: Path, userhome: Path
) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    ctx = ToolContext(workspace=workspace, sandbox=sandbox_for(workspace, kimihome))
    system = Path("/var/tmp") / f"kimicode-{uuid.uuid4().hex[:8]}"  # outside the private /tmp: read-only
    result = bash(
        ctx, f"touch {outside}/x; touch ~/.bashrc_x; touch {system}; echo hi > made.txt; echo t > $TMPDIR/t && cat $TMPDIR/t"
    )
    assert not (outside / "x").exists()
    assert not (userhome / ".bashrc_x").exists()
    assert not system.exists()
    assert "Read-only file system" in result.text
    assert (workspace / "made.txt").read_text() == "hi\n"
    assert "t\n" in result.text  # the private temp dir is writable


@needs_bwrap
def test_read_only_mode_refuses_workspace_writes(workspace: Path, kimihome: Path) -> None:
    ctx = ToolContext(workspace=workspace, sandbox=sandbox_for(workspace, kimihome, mode="read-only"))
    result = bash(ctx, "echo hi > made.txt; ls")
    assert not (workspace / "made.txt").exists()
    assert "Read-only file system" in result.text


@needs_bwrap
def test_secrets_are_hidden(workspace: Path, kimihome: Path, userhome: Path) -> None:
    (workspace / ".env").write_text("DB_PASSWORD=envsecret-99\n")
    (workspace / ".env.example").write_text("DB_PASSWORD=changeme\n")
    ctx = ToolContext(workspace=workspace, sandbox=sandbox_for(workspace, kimihome))
    result = bash(
        ctx, f"cat ~/.ssh/id_rsa; ls ~/.ssh | wc -l; cat {kimihome}/config.toml; cat .env; cat .env.example; echo end"
    )
    assert "sshsecret-4242" not in result.text
    assert "\n0\n" in result.text  # ~/.ssh is empty inside
    assert "configsecret" not in result.text
    assert "envsecret" not in result.text
    assert "changeme" in result.text and "end" in result.text
    # ... and the command cannot plant a key either
    bash(ctx, "echo planted >> ~/.ssh/authorized_keys")
    assert not (userhome / ".ssh" / "authorized_keys").exists()


@pytest.fixture
def local_http() -> Iterator[int]:
    class Hello(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"reached-the-host")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


FETCH = "python3 -c \"import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:{port}/', timeout=5).read().decode())\""


@needs_bwrap
def test_no_network_inside_unless_escalated_or_allowed(workspace: Path, kimihome: Path, local_http: int) -> None:
    ctx = ToolContext(workspace=workspace, sandbox=sandbox_for(workspace, kimihome))
    inside = bash(ctx, FETCH.format(port=local_http))
    assert "reached-the-host" not in inside.text
    assert "[exit code: 0]" not in inside.text
    escalated = bash(ctx, FETCH.format(port=local_http), escalate="needs the local server")
    assert "reached-the-host" in escalated.text
    allowed = ToolContext(workspace=workspace, sandbox=sandbox_for(workspace, kimihome, network=True))
    assert "reached-the-host" in bash(allowed, FETCH.format(port=local_http)).text


@needs_bwrap
def test_background_daemons_and_double_forks_end_with_the_command(workspace: Path, kimihome: Path) -> None:
    marker = f"kimimark-{uuid.uuid4().hex[:8]}"
    command = (
        f"setsid bash -c 'exec -a {marker}-setsid sleep 1000' >/dev/null 2>&1 & "
        f"( ( exec -a {marker}-double sleep 1000 ) >/dev/null 2>&1 & ) ; "
        f"nohup bash -c 'exec -a {marker}-nohup sleep 1000' >/dev/null 2>&1 & "
        "sleep 0.3; echo started"
    )
    ctx = ToolContext(workspace=workspace, sandbox=sandbox_for(workspace, kimihome))
    result = bash(ctx, command)
    assert "started" in result.text
    left = wait_gone(marker)
    kill_all(left)
    assert left == [], "processes started inside the sandbox outlived the command"
    # The same command outside the sandbox does leave them running: the check above can fail.
    outside = bash(ctx, command, escalate="start background processes")
    assert "started" in outside.text
    escaped = live_processes_with(marker)
    kill_all(escaped)
    assert len(escaped) >= 2


def git(workspace: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=workspace, check=True, capture_output=True)


@needs_bwrap
def test_protected_paths_are_read_only_and_git_reads_but_cannot_commit(workspace: Path, kimihome: Path) -> None:
    # The whole .git is read-only: a commit is kimicode's (checkpoints) or asked for as an escalation.
    git(workspace, "init", "-q")
    (workspace / ".kimicode").mkdir()
    (workspace / "a.txt").write_text("a\n")
    config_before = (workspace / ".git" / "config").read_text()
    ctx = ToolContext(workspace=workspace, sandbox=sandbox_for(workspace, kimihome))
    result = bash(
        ctx,
        "echo 'yolo = true' > .kimicode/config.toml; echo 'touch PWNED' > .git/hooks/pre-commit; "
        "printf '[core]\\n\\thooksPath = evil\\n' >> .git/config; git status --short; "
        "git -c user.name=t -c user.email=t@t add a.txt && git -c user.name=t -c user.email=t@t commit -qm one "
        "&& echo committed",
    )
    assert not (workspace / ".kimicode" / "config.toml").exists()
    assert not (workspace / ".git" / "hooks" / "pre-commit").exists()
    assert (workspace / ".git" / "config").read_text() == config_before
    assert "?? a.txt" in result.text  # git status works
    assert "committed" not in result.text, result.text
    assert "index.lock': Read-only file system" in result.text


@needs_bwrap
def test_escalate_runs_outside_the_sandbox(tmp_path: Path, workspace: Path, kimihome: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    ctx = ToolContext(workspace=workspace, sandbox=sandbox_for(workspace, kimihome))
    bash(ctx, f"touch {outside}/x", escalate="writes the build cache outside the workspace")
    assert (outside / "x").exists()


def test_no_bwrap_means_no_sandbox_and_a_reason(
    workspace: Path, kimihome: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    broken = fake_bin / "bwrap"
    broken.write_text("#!/bin/sh\necho 'bwrap: No permissions to creating new namespace' >&2\nexit 1\n")
    broken.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake_bin}{os.pathsep}{os.environ['PATH']}")
    sandbox = detect_sandbox("workspace-write", False, workspace, kimihome)
    assert sandbox.mode == "off" and sandbox.backend == "none"
    assert "namespace" in sandbox.unavailable
    assert detect_sandbox("off", False, workspace, kimihome).unavailable == ""


@needs_bwrap
def test_a_bubblewrap_without_disable_userns_still_drops_every_capability(
    workspace: Path, kimihome: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # bubblewrap before 0.8 (Ubuntu 22.04) has no --disable-userns: the sandbox must still work, without it.
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    old = fake_bin / "bwrap"
    old.write_text(
        "#!/bin/sh\nfor a in \"$@\"; do [ \"$a\" = --disable-userns ] && "
        "{ echo 'bwrap: Unknown option --disable-userns' >&2; exit 1; }; done\n"
        f"exec {shutil.which('bwrap')} \"$@\"\n"
    )
    old.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake_bin}{os.pathsep}{os.environ['PATH']}")
    sandbox = detect_sandbox("workspace-write", False, workspace, kimihome)
    assert sandbox.backend == "bwrap", sandbox.unavailable
    result = bash(ToolContext(workspace=workspace, sandbox=sandbox), "grep CapEff /proc/self/status; echo hi > made.txt")
    assert "CapEff:\t0000000000000000" in result.text, result.text
    assert (workspace / "made.txt").read_text() == "hi\n"


@needs_bwrap
def test_a_bubblewrap_that_cannot_make_a_user_namespace_still_drops_every_capability(
    workspace: Path, kimihome: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A setuid bubblewrap where the kernel forbids unprivileged user namespaces: the sandbox still works.
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    setuid_like = fake_bin / "bwrap"
    setuid_like.write_text(
        "#!/bin/sh\nfor a in \"$@\"; do [ \"$a\" = --unshare-user ] && "
        "{ echo 'bwrap: No permissions to create new namespace' >&2; exit 1; }; done\n"
        f"exec {shutil.which('bwrap')} \"$@\"\n"
    )
    setuid_like.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake_bin}{os.pathsep}{os.environ['PATH']}")
    sandbox = detect_sandbox("workspace-write", False, workspace, kimihome)
    assert sandbox.backend == "bwrap", sandbox.unavailable
    result = bash(ToolContext(workspace=workspace, sandbox=sandbox), "grep CapEff /proc/self/status; echo hi > made.txt")
    assert "CapEff:\t0000000000000000" in result.text, result.text
    assert (workspace / "made.txt").read_text() == "hi\n"


# -- end to end: the CLI with the scripted model -------------------------------------------------------


def kimicode(fake: FakeLLM, home: Path, cwd: Path, *args: str, env_extra: dict[str, str] | None = None):
    return run_cli(list(args), home=home, cwd=cwd, base_url=fake.base_url, env_extra=env_extra)


def test_broken_sandbox_is_said_once_and_commands_still_run(
    fake_llm: FakeLLM, kimihome: Path, workspace: Path, tmp_path: Path
) -> None:
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "bwrap").write_text("#!/bin/sh\nexit 1\n")
    (fake_bin / "bwrap").chmod(0o755)
    fake_llm.script(
        Reply(tool_calls=[ToolCall("bash", {"command": "echo ran > ran.txt"})]),
        Reply(tool_calls=[ToolCall("bash", {"command": "echo again"})]),
        Reply(content="done"),
    )
    path = f"{fake_bin}{os.pathsep}{os.environ['PATH']}"
    proc = kimicode(fake_llm, kimihome, workspace, "-p", "-y", "go", env_extra={"PATH": path})
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("no sandbox for commands") == 1, proc.stderr
    assert (workspace / "ran.txt").exists()


@pytest.mark.parametrize("sandbox", ["workspace-write", "off"])
def test_commands_do_not_inherit_the_model_keys(
    fake_llm: FakeLLM, kimihome: Path, workspace: Path, sandbox: str
) -> None:
    if sandbox != "off" and bwrap_problem():
        missing(f"a working bubblewrap (bwrap): {bwrap_problem()}")
    fake_llm.script(
        Reply(tool_calls=[ToolCall("bash", {"command": "env | grep -E 'API_KEY|PASSME' || echo none"})]),
        Reply(content="done"),
    )
    keys = {"MOONSHOT_API_KEY": "moonkey-1", "OPENAI_API_KEY": "openaikey-2", "PASSME": "fine-3"}
    proc = kimicode(fake_llm, kimihome, workspace, "-p", "-y", "--sandbox", sandbox, "go", env_extra=keys)
    assert proc.returncode == 0, proc.stderr
    output = fake_llm.chat_requests[1].tool_results()[-1]["content"]
    assert "fine-3" in output  # other variables are inherited as before
    for secret in ("test-key", "moonkey-1", "openaikey-2"):
        assert secret not in output


def test_pass_env_hands_a_named_key_on(fake_llm: FakeLLM, kimihome: Path, workspace: Path) -> None:
    write_home_config(kimihome, FAST + 'pass_env = ["OPENAI_API_KEY"]\n')
    fake_llm.script(
        Reply(tool_calls=[ToolCall("bash", {"command": "env | grep API_KEY"})]),
        Reply(content="done"),
    )
    proc = kimicode(fake_llm, kimihome, workspace, "-p", "-y", "go", env_extra={"OPENAI_API_KEY": "openaikey-2"})
    assert proc.returncode == 0, proc.stderr
    output = fake_llm.chat_requests[1].tool_results()[-1]["content"]
    assert "OPENAI_API_KEY=openaikey-2" in output and "test-key" not in output


def test_mcp_servers_do_not_inherit_the_model_keys(fake_llm: FakeLLM, kimihome: Path, workspace: Path) -> None:
    from kimicode.mcp.store import save_servers
    from tests.mcp_servers.fixtures import stdio_config

    write_home_config(kimihome, FAST + "mcp_startup_wait = 30\n")
    server = stdio_config("demo", "--getenv-tool")
    server.env = {"GIVEN": "given-5"}
    save_servers(kimihome, [server])
    fake_llm.script(
        Reply(
            tool_calls=[
                ToolCall("mcp__demo__getenv", {"name": "KIMI_API_KEY"}),
                ToolCall("mcp__demo__getenv", {"name": "GIVEN"}),
            ]
        ),
        Reply(content="done"),
    )
    proc = kimicode(fake_llm, kimihome, workspace, "-p", "-y", "go")
    assert proc.returncode == 0, proc.stderr
    results = [r["content"] for r in fake_llm.chat_requests[1].tool_results()]
    assert results[-2:] == ["(unset)", "given-5"]


def session_records(home: Path) -> list[dict[str, object]]:
    files = list((home / "sessions").glob("*/*.jsonl"))
    assert len(files) == 1, files
    return [json.loads(line) for line in files[0].read_text().splitlines() if line.strip()]


def start_headless(
    fake: FakeLLM, home: Path, cwd: Path, *args: str, ignore_sigint: bool = False
) -> subprocess.Popen[str]:
    def ignore() -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    return subprocess.Popen(
        [sys.executable, "-m", "kimicode", "-p", "-y", "--output-format", "json", *args],
        cwd=cwd,
        env=cli_env(home, fake.base_url),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=ignore if ignore_sigint else None,
    )


def wait_for(marker: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not live_processes_with(marker):
        if time.monotonic() > deadline:
            raise AssertionError(f"the command never started ({marker})")
        time.sleep(0.05)


@pytest.mark.parametrize(
    ("sandbox", "sig", "code", "ignore_sigint"),
    [
        ("off", signal.SIGTERM, 143, False),
        ("workspace-write", signal.SIGTERM, 143, False),
        ("off", signal.SIGHUP, 129, False),
        ("workspace-write", signal.SIGTERM, 143, True),
    ],
    ids=["sigterm-unsandboxed", "sigterm-sandboxed", "sighup", "sigterm-with-sigint-ignored"],
)
def test_stop_signals_end_the_command_and_save_the_session(
    fake_llm: FakeLLM, kimihome: Path, workspace: Path, sandbox: str, sig: int, code: int, ignore_sigint: bool
) -> None:
    if sandbox != "off" and bwrap_problem():
        missing(f"a working bubblewrap (bwrap): {bwrap_problem()}")
    marker = f"kimimark-{uuid.uuid4().hex[:8]}"
    command = f"bash -c 'exec -a {marker} sleep 1000'; echo never"
    fake_llm.script(Reply(tool_calls=[ToolCall("bash", {"command": command})]), Reply(content="never"))
    proc = start_headless(fake_llm, kimihome, workspace, "--sandbox", sandbox, "wait", ignore_sigint=ignore_sigint)
    try:
        wait_for(marker)
        if ignore_sigint:  # the inherited SIG_IGN holds: SIGINT does nothing ...
            proc.send_signal(signal.SIGINT)
            time.sleep(0.5)
            assert proc.poll() is None
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    left = wait_gone(marker)
    kill_all(left)
    assert left == [], "the running command survived the signal"
    assert proc.returncode == code, err
    assert "Traceback" not in err
    if sig != signal.SIGHUP:
        assert json.loads(out)["is_error"] is True
    records = json.dumps(session_records(kimihome))
    assert "wait" in records and marker in records  # the task and the interrupted call were saved


def test_unsandboxed_leftovers_end_with_kimicode(fake_llm: FakeLLM, kimihome: Path, workspace: Path) -> None:
    marker = f"kimimark-{uuid.uuid4().hex[:8]}"
    command = (
        f"setsid bash -c 'echo $$ > daemon.pid; exec -a {marker}-setsid sleep 1000' >/dev/null 2>&1 & "
        f"( ( exec -a {marker}-double sleep 1000 ) >/dev/null 2>&1 & ) ; echo started"
    )
    fake_llm.script(
        Reply(tool_calls=[ToolCall("bash", {"command": command})]),
        Reply(tool_calls=[ToolCall("bash", {"command": "sleep 0.5; kill -0 $(cat daemon.pid) && echo still-here"})]),
        Reply(content="done"),
    )
    proc = kimicode(fake_llm, kimihome, workspace, "-p", "-y", "--sandbox", "off", "go")
    left = wait_gone(marker)
    kill_all(left)
    assert proc.returncode == 0, proc.stderr
    # They ran while the session lasted (the second call saw them) and ended with it.
    assert "still-here" in fake_llm.chat_requests[2].tool_results()[-1]["content"]
    assert left == [], "a process started by a command outlived kimicode"


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)], ids=["sigterm", "sighup"])
def test_repl_stop_signals_end_the_command_and_save_the_session(
    fake_llm: FakeLLM, kimihome: Path, workspace: Path, sig: int, code: int
) -> None:
    from tests.replpty import Repl

    marker = f"kimimark-{uuid.uuid4().hex[:8]}"
    fake_llm.script(
        Reply(tool_calls=[ToolCall("bash", {"command": f"bash -c 'exec -a {marker} sleep 1000'"})]),
        Reply(content="never"),
    )
    repl = Repl(kimihome, workspace, fake_llm.base_url, "-y", "--sandbox", "off")
    try:
        repl.wait_prompt()
        repl.send_line("wait here")
        wait_for(marker)
        repl.child.kill(sig)
        status = repl.wait_exit()
    finally:
        repl.close()
    left = wait_gone(marker)
    kill_all(left)
    assert left == [], "the running command survived the signal"
    assert status == code, repl.transcript[-2000:]
    assert "Traceback" not in repl.transcript
    records = json.dumps(session_records(kimihome))
    assert "wait here" in records and marker in records


@needs_bwrap
def test_a_timeout_ends_everything_the_sandboxed_command_started(workspace: Path, kimihome: Path) -> None:
    marker = f"kimimark-{uuid.uuid4().hex[:8]}"
    ctx = ToolContext(workspace=workspace, sandbox=sandbox_for(workspace, kimihome))
    command = f"setsid bash -c 'exec -a {marker}-bg sleep 1000' >/dev/null 2>&1 & exec -a {marker} sleep 1000"
    result = bash(ctx, command, timeout=1)
    assert "timed out after 1s" in result.text
    left = wait_gone(marker)
    kill_all(left)
    assert left == []


@needs_bwrap
def test_git_reads_from_a_subfolder_of_the_repository_but_nothing_above_changes(tmp_path: Path, kimihome: Path) -> None:
    repo = tmp_path / "repo"
    sub = repo / "pkg"
    sub.mkdir(parents=True)
    git(repo, "init", "-q")
    (sub / "b.txt").write_text("b\n")
    ctx = ToolContext(workspace=sub, sandbox=sandbox_for(sub, kimihome))
    result = bash(
        ctx,
        "touch ../outside.txt; echo x > ../.git/hooks/post-commit; git status --short -uall; "
        "git -c user.name=t -c user.email=t@t add b.txt && git -c user.name=t -c user.email=t@t commit -qm two "
        "&& echo committed",
    )
    assert "?? b.txt" in result.text, result.text
    assert "committed" not in result.text, result.text
    assert not (repo / "outside.txt").exists()
    assert not (repo / ".git" / "hooks" / "post-commit").exists()
    assert not (sub / ".git").exists()  # no placeholder: that would make pkg look like a repository's top


@pytest.fixture
def host_sockets(tmp_path: Path) -> Iterator[list[Path]]:
    """Two unix sockets in the host's /tmp, each answering its own name to whoever connects."""
    import socket

    folder = tmp_path / "agent"
    folder.mkdir()
    paths = [folder / "named.sock", folder / "other.sock"]
    servers = []
    for path in paths:
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(path))
        server.listen()
        servers.append(server)

        def answer(server: socket.socket = server, name: bytes = path.name.encode()) -> None:
            while True:
                try:
                    conn, _ = server.accept()
                except OSError:
                    return
                conn.sendall(b"reached " + name)
                conn.close()

        threading.Thread(target=answer, daemon=True).start()
    yield paths
    for server in servers:
        server.close()


@needs_bwrap
def test_only_the_host_sockets_named_in_sandbox_sockets_are_reachable(
    fake_llm: FakeLLM, kimihome: Path, workspace: Path, host_sockets: list[Path]
) -> None:
    named, other = host_sockets
    write_home_config(kimihome, FAST + f'sandbox_sockets = ["{named}"]\n')
    probe = "import socket, sys; s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); print(s.recv(64).decode())"
    fake_llm.script(
        Reply(tool_calls=[ToolCall("bash", {"command": f"python3 -c '{probe}' {named}; python3 -c '{probe}' {other}"})]),
        Reply(content="done"),
    )
    proc = kimicode(fake_llm, kimihome, workspace, "-p", "-y", "go")
    assert proc.returncode == 0, proc.stderr
    output = fake_llm.chat_requests[1].tool_results()[-1]["content"]
    assert "reached named.sock" in output and "reached other.sock" not in output, output
    assert "No such file or directory" in output  # the other one is not there at all


def test_sandbox_sockets_must_be_absolute_paths(fake_llm: FakeLLM, kimihome: Path, workspace: Path) -> None:
    write_home_config(kimihome, FAST + 'sandbox_sockets = ["agent.sock"]\n')
    proc = kimicode(fake_llm, kimihome, workspace, "-p", "-y", "go")
    assert proc.returncode != 0
    assert "sandbox_sockets must be a list of absolute socket paths" in proc.stderr
    assert "Traceback" not in proc.stderr


@needs_bwrap
def test_a_sub_agents_worktree_under_git_is_writable_and_git_around_it_is_not(workspace: Path, kimihome: Path) -> None:
    git(workspace, "init", "-q")
    git(workspace, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "one")
    worktree = workspace / ".git" / "kimicode-worktrees" / "sub-1"
    git(workspace, "worktree", "add", "-q", "--detach", str(worktree))
    config, pointer = (workspace / ".git" / "config").read_text(), (worktree / ".git").read_text()
    sandbox = sandbox_for(workspace, kimihome)
    ctx = ToolContext(workspace=worktree, sandbox=sandbox)  # as the swarm gives a sub-agent its worktree
    result = bash(ctx, "echo mine > own.txt; echo '[core]' >> ../../config; echo 'gitdir: /x' > .git; mv .git g")
    assert (worktree / "own.txt").read_text() == "mine\n", result.text
    assert (workspace / ".git" / "config").read_text() == config
    assert (worktree / ".git").read_text() == pointer
