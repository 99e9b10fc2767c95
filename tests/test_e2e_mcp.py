"""End-to-end: `kimicode -p` with real MCP servers (stdio and HTTP) against the scripted model server."""

from __future__ import annotations

import base64
import io
import json
import zlib
from pathlib import Path

import pytest

from kimicode.mcp.server_config import McpServerConfig
from kimicode.mcp.store import save_servers
from tests.clirun import run_cli, write_home_config
from tests.fake_llm import FakeLLM, Reply, ToolCall
from tests.mcp_servers.fixtures import http_server, live_processes_with, stdio_config, unauthorized_server

# Wait for servers before the first request so the scripted calls find their tools.
WAIT_FOR_SERVERS = "retry_base_delay = 0.01\nmax_retries = 2\nmcp_startup_wait = 30\n"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "kimihome"
    write_home_config(home, WAIT_FOR_SERVERS)
    return home


@pytest.fixture
def project(tmp_path: Path) -> Path:
    project = tmp_path / "proj"
    project.mkdir()
    return project


def marker_of(server: McpServerConfig) -> str:
    return server.args[server.args.index("--name") + 1]


def kimicode(fake: FakeLLM, home: Path, cwd: Path, *args: str):
    return run_cli(list(args), home=home, cwd=cwd, base_url=fake.base_url, timeout=90)


def first_pixel_rgb(png: bytes) -> tuple[int, int, int]:
    """The top-left pixel of an 8-bit RGB PNG without filters (what the demo server draws)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    stream = io.BytesIO(png[8:])
    data = b""
    color_type = None
    while True:
        length = int.from_bytes(stream.read(4), "big")
        kind = stream.read(4)
        body = stream.read(length)
        stream.read(4)
        if kind == b"IHDR":
            color_type = body[9]
        elif kind == b"IDAT":
            data += body
        elif kind == b"IEND":
            break
    assert color_type == 2
    raw = zlib.decompress(data)
    assert raw[0] == 0  # filter type "none" on the first row
    return raw[1], raw[2], raw[3]


def test_stdio_and_http_tools_reach_the_model(fake_llm: FakeLLM, home: Path, project: Path) -> None:
    demo = stdio_config("demo")
    with http_server() as url:
        save_servers(home, [demo, McpServerConfig(name="web", transport="http", url=url, source="test")])
        fake_llm.script(
            Reply(tool_calls=[ToolCall("mcp__demo__echo", {"text": "hello from stdio"})]),
            Reply(tool_calls=[ToolCall("mcp__web__add", {"a": 20, "b": 22})]),
            Reply(content="all done"),
        )
        proc = kimicode(fake_llm, home, project, "-p", "-y", "use the mcp tools")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "all done"
    tools = set(fake_llm.chat_requests[0].tool_names())
    assert {"mcp__demo__echo", "mcp__demo__red_square", "mcp__web__add", "view", "bash"} <= tools
    assert fake_llm.chat_requests[1].tool_results()[-1]["content"] == "hello from stdio"
    assert fake_llm.chat_requests[2].tool_results()[-1]["content"] == "42"
    assert live_processes_with(marker_of(demo)) == []  # the server was shut down with the run


def test_image_result_reaches_the_model_as_an_image(fake_llm: FakeLLM, home: Path, project: Path) -> None:
    save_servers(home, [stdio_config("demo")])
    fake_llm.script(Reply(tool_calls=[ToolCall("mcp__demo__red_square", {})]), Reply(content="it is red"))
    proc = kimicode(fake_llm, home, project, "-p", "-y", "what colour is the square?")
    assert proc.returncode == 0, proc.stderr
    messages = fake_llm.chat_requests[1].messages
    image_parts = [
        part
        for message in messages
        if message["role"] == "user" and isinstance(message["content"], list)
        for part in message["content"]
        if part.get("type") == "image_url"
    ]
    assert len(image_parts) == 1
    url = image_parts[0]["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    assert first_pixel_rgb(base64.b64decode(url.split(",", 1)[1])) == (255, 0, 0)


def test_mcp_tool_needs_approval_unless_read_only(fake_llm: FakeLLM, home: Path, project: Path) -> None:
    save_servers(home, [stdio_config("demo")])
    fake_llm.script(
        Reply(tool_calls=[ToolCall("mcp__demo__add", {"a": 1, "b": 2}), ToolCall("mcp__demo__echo", {"text": "ro"})]),
        Reply(content="ok"),
    )
    proc = kimicode(fake_llm, home, project, "-p", "add without approval")
    assert proc.returncode == 0, proc.stderr
    add_result, echo_result = (r["content"] for r in fake_llm.chat_requests[1].tool_results())
    assert "not approve" in add_result  # headless without -y refuses side effects
    assert echo_result == "ro"  # readOnlyHint: runs without asking
    assert "refused demo:add" in proc.stderr


def test_missing_command_and_crashing_server_leave_the_run_working(
    fake_llm: FakeLLM, home: Path, project: Path
) -> None:
    crashy = stdio_config("crashy")
    save_servers(
        home,
        [
            McpServerConfig(name="ghost", command="no-such-mcp-server-binary", source="test"),
            crashy,
            stdio_config("demo"),
        ],
    )
    fake_llm.script(
        Reply(tool_calls=[ToolCall("mcp__crashy__crash", {})]),
        Reply(tool_calls=[ToolCall("mcp__demo__echo", {"text": "still here"})]),
        Reply(content="survived"),
    )
    proc = kimicode(fake_llm, home, project, "-p", "-y", "crash it")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "survived"
    tools = set(fake_llm.chat_requests[0].tool_names())
    assert "mcp__crashy__crash" in tools and not any(name.startswith("mcp__ghost__") for name in tools)
    crash_result = fake_llm.chat_requests[1].tool_results()[-1]["content"]
    assert "MCP server 'crashy' failed" in crash_result
    assert fake_llm.chat_requests[2].tool_results()[-1]["content"] == "still here"
    # the crashed server's tools are gone from the next request; the healthy ones stay
    assert not any(name.startswith("mcp__crashy__") for name in fake_llm.chat_requests[1].tool_names())
    assert "mcp__demo__echo" in fake_llm.chat_requests[1].tool_names()
    failures = [line for line in proc.stderr.splitlines() if line.startswith("kimicode: MCP server")]
    assert len(failures) == 2, proc.stderr
    ghost_line = next(line for line in failures if "'ghost'" in line)
    assert "no-such-mcp-server-binary" in ghost_line and str(home / "logs" / "ghost.log") in ghost_line
    assert any("'crashy'" in line and str(home / "logs" / "crashy.log") in line for line in failures)
    assert "crashing on purpose" in (home / "logs" / "crashy.log").read_text()
    assert "Traceback" not in proc.stderr
    assert live_processes_with(marker_of(crashy)) == []


def test_disabled_server_is_not_started(fake_llm: FakeLLM, home: Path, project: Path) -> None:
    off = stdio_config("off")
    off.enabled = False
    save_servers(home, [off])
    fake_llm.script(Reply(content="fine"))
    proc = kimicode(fake_llm, home, project, "-p", "hi")
    assert proc.returncode == 0, proc.stderr
    assert not any(name.startswith("mcp__") for name in fake_llm.chat_requests[0].tool_names())
    assert not (home / "logs" / "off.log").exists()


def test_broken_mcp_json_is_one_line_and_the_run_goes_on(fake_llm: FakeLLM, home: Path, project: Path) -> None:
    (home / "mcp.json").write_text("{not json")
    fake_llm.script(Reply(content="fine"))
    proc = kimicode(fake_llm, home, project, "-p", "hi")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "fine"
    assert "mcp.json" in proc.stderr and "continuing without MCP servers" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_one_shot_run_offers_mcp_tools_in_its_first_request(fake_llm: FakeLLM, home: Path, project: Path) -> None:
    write_home_config(home, "retry_base_delay = 0.01\n")  # the default mcp_startup_wait
    server = stdio_config("clock", "--start-delay", "1.5")  # slower than the first request would be
    save_servers(home, [server])
    fake_llm.script(
        Reply(tool_calls=[ToolCall("mcp__clock__echo", {"text": "Tokyo 09:00"})]),
        Reply(content="It is 09:00 in Tokyo."),
    )
    proc = kimicode(fake_llm, home, project, "-p", "what time is it in Tokyo? use the clock tool")
    assert proc.returncode == 0, proc.stderr
    assert "mcp__clock__echo" in fake_llm.requests[0].tool_names()
    assert fake_llm.requests[1].tool_results()[-1]["content"] == "Tokyo 09:00"
    assert proc.stdout.strip() == "It is 09:00 in Tokyo."


def test_slow_server_does_not_hold_back_the_first_request(fake_llm: FakeLLM, home: Path, project: Path) -> None:
    write_home_config(home, "retry_base_delay = 0.01\nmcp_startup_wait = 0.5\n")
    slow = stdio_config("slow", "--start-delay", "30")
    save_servers(home, [slow])
    fake_llm.script(Reply(content="answered at once"))
    proc = kimicode(fake_llm, home, project, "-p", "hi", "--output-format", "json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["result"] == "answered at once"
    assert "slow still starting after 0.5 s" in proc.stderr
    assert not any(name.startswith("mcp__") for name in fake_llm.requests[0].tool_names())
    assert live_processes_with(marker_of(slow)) == []  # the still-starting server was stopped too


def test_instant_mode_does_not_start_mcp_servers(fake_llm: FakeLLM, home: Path, project: Path) -> None:
    save_servers(home, [McpServerConfig(name="ghost", command="no-such-mcp-server-binary", source="test")])
    fake_llm.script(Reply(content="quick answer"), Reply(content="agent answer"))
    proc = kimicode(fake_llm, home, project, "-p", "--mode", "instant", "hi")
    assert proc.returncode == 0, proc.stderr
    assert "ghost" not in proc.stderr  # never started, so never failed
    assert not any(name.startswith("mcp__") for name in fake_llm.chat_requests[0].tool_names())
    proc = kimicode(fake_llm, home, project, "-p", "hi")  # agent mode starts it, and says it failed
    assert proc.returncode == 0 and "'ghost'" in proc.stderr


def test_task_only_tool_is_not_offered_to_the_model(fake_llm: FakeLLM, home: Path, project: Path) -> None:
    jobs = stdio_config("jobs", "--task-tools")  # research: taskSupport "required"; lookup: "optional"
    save_servers(home, [jobs])
    fake_llm.script(Reply(tool_calls=[ToolCall("mcp__jobs__lookup", {"word": "tea"})]), Reply(content="done"))
    proc = kimicode(fake_llm, home, project, "-p", "-y", "look it up")
    assert proc.returncode == 0, proc.stderr
    first = set(fake_llm.chat_requests[0].tool_names())
    assert "mcp__jobs__lookup" in first and "mcp__jobs__research" not in first
    assert fake_llm.chat_requests[1].tool_results()[-1]["content"] == "looked up tea"
    log = (home / "logs" / "jobs.log").read_text()
    assert "not offered (they run only as tasks" in log and "research" in log


def test_server_answering_401_gets_one_sign_in_line_and_the_run_goes_on(
    fake_llm: FakeLLM, home: Path, project: Path
) -> None:
    with unauthorized_server() as (url, authorizations):
        locked = McpServerConfig(name="locked", transport="http", url=url, source="test")
        save_servers(home, [locked, stdio_config("demo")])
        fake_llm.script(Reply(tool_calls=[ToolCall("mcp__demo__echo", {"text": "still works"})]), Reply(content="ok"))
        proc = kimicode(fake_llm, home, project, "-p", "-y", "hi")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"
    assert authorizations  # the server was really asked
    lines = [line for line in proc.stderr.splitlines() if "'locked'" in line]
    assert len(lines) == 1, proc.stderr
    assert lines[0] == "kimicode: MCP server 'locked' needs you to sign in: run `kimicode mcp login locked`"
    assert "MCPError" not in proc.stderr and "Traceback" not in proc.stderr
    tools = fake_llm.chat_requests[0].tool_names()
    assert "mcp__demo__echo" in tools and not any(name.startswith("mcp__locked__") for name in tools)
    assert fake_llm.chat_requests[1].tool_results()[-1]["content"] == "still works"


def test_server_refusing_the_configured_token_says_so(fake_llm: FakeLLM, home: Path, project: Path) -> None:
    with unauthorized_server() as (url, authorizations):
        headers = {"Authorization": "Bearer ${LOCKED_TOKEN}"}
        save_servers(home, [McpServerConfig(name="locked", transport="http", url=url, headers=headers, source="t")])
        fake_llm.script(Reply(content="ok"))
        token = {"LOCKED_TOKEN": "stale-token-123"}
        proc = run_cli(["-p", "hi"], home=home, cwd=project, base_url=fake_llm.base_url, timeout=90, env_extra=token)
    assert proc.returncode == 0, proc.stderr
    assert authorizations and authorizations[0] == "Bearer stale-token-123"
    [line] = [line for line in proc.stderr.splitlines() if "'locked'" in line]
    assert "refused the token in its Authorization header (401 Unauthorized)" in line
    assert "stale-token-123" not in proc.stderr
