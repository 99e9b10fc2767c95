"""`kimicode serve` end to end: the real CLI on a real loopback port, driven over HTTP and SSE, with the
scripted model server as the model."""

from __future__ import annotations

import json
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from kimicode.frontends.web.auth import COOKIE, TOKEN_FILE
from tests.fake_llm import FakeLLM, Reply, ToolCall
from tests.webserver import Server, gone, is_result, read_events, start_server

STREAMED = "The quick brown fox jumps over the lazy dog, streamed in small pieces. " * 3


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeLLM]:
    with FakeLLM() as server:
        yield server


@pytest.fixture(scope="module")
def places(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("serve")
    (root / "ws").mkdir()
    return root / "home", root / "ws"


@pytest.fixture(scope="module")
def server(llm: FakeLLM, places: tuple[Path, Path]) -> Iterator[Server]:
    home, ws = places
    running = start_server(home, [ws], llm.base_url, "--sandbox", "off")
    yield running
    running.stop()


@pytest.fixture
def api(server: Server) -> Iterator[httpx2.Client]:
    with server.client() as client:
        yield client


def new_session(api: httpx2.Client, ws: Path) -> str:
    response = api.post("/sessions", json={"workspace": str(ws)})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_every_request_needs_the_token_and_the_servers_own_origin(server: Server, places: tuple[Path, Path]) -> None:
    home, ws = places
    with httpx2.Client(base_url=server.url, timeout=30) as anonymous:
        assert anonymous.get("/sessions").status_code == 401
        assert anonymous.get("/").status_code == 401
        assert anonymous.get("/sessions", headers={"authorization": "Bearer wrong"}).status_code == 401
        # the token file is the printed token, for the user alone
        token_file = home / TOKEN_FILE
        assert token_file.read_text().strip() == server.token
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        good = {"authorization": f"Bearer {server.token}"}
        assert anonymous.get("/sessions", headers=good).status_code == 200
        # another page in the browser, even with the token: refused; DNS rebinding (a foreign Host): refused
        evil = anonymous.get("/sessions", headers={**good, "origin": "http://evil.example"})
        assert evil.status_code == 403 and "Origin" in evil.json()["error"]
        own_origin = anonymous.get("/sessions", headers={**good, "origin": server.url})
        assert own_origin.status_code == 200
        rebound = anonymous.get("/sessions", headers={**good, "host": f"evil.example:{server.url.rsplit(':', 1)[1]}"})
        assert rebound.status_code == 421
        preflight = anonymous.options("/sessions", headers={"origin": "http://evil.example", "access-control-request-method": "POST"})
        for response in (evil, own_origin, rebound, preflight):
            assert not any(name.lower().startswith("access-control-") for name in response.headers)
        # the login link: once, then spent; its cookie is HttpOnly and SameSite=Strict
        login = anonymous.get(server.login_url)
        assert login.status_code == 303
        cookie = login.headers["set-cookie"]
        assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
        value = cookie.split(";")[0].split("=", 1)[1]
        assert anonymous.get("/sessions", headers={"cookie": f"{COOKIE}={value}"}).status_code == 200
        assert anonymous.get("/sessions", headers={"cookie": f"{COOKIE}=forged"}).status_code == 401
        assert anonymous.get(server.login_url).status_code == 401
    with server.client() as api:
        # only the named workspaces (or trusted ones)
        elsewhere = api.post("/sessions", json={"workspace": str(home)})
        assert elsewhere.status_code == 403 and "--workspace" in elsewhere.json()["error"]
        assert api.post("/sessions", json={"workspace": "relative"}).status_code == 400
        assert api.post("/sessions", content=b"not json").status_code == 400
        assert "/sessions/{sid}/events" in api.get("/openapi.json").json()["paths"]


def test_two_sessions_stream_at_once(server: Server, api: httpx2.Client, llm: FakeLLM, places: tuple[Path, Path]) -> None:
    ws = places[1]
    llm.script(Reply(content=STREAMED, chunk_delay=0.02), Reply(content=STREAMED, chunk_delay=0.02))
    first, second = new_session(api, ws), new_session(api, ws)
    seen: dict[str, list[tuple[float, dict[str, Any]]]] = {first: [], second: []}

    def follow(sid: str) -> None:
        with server.client() as client:
            for _, event in read_events(client, sid, is_result):
                seen[sid].append((time.monotonic(), event))

    readers = [threading.Thread(target=follow, args=(sid,)) for sid in (first, second)]
    for reader in readers:
        reader.start()
    for sid in (first, second):
        assert api.post(f"/sessions/{sid}/messages", json={"text": "tell me"}).status_code == 202
    for reader in readers:
        reader.join(60)
    for sid in (first, second):
        events = [event for _, event in seen[sid]]
        assert events[0]["type"] == "system" and events[0]["session_id"] == sid
        assert "".join(e["text"] for e in events if e["type"] == "text_delta") == STREAMED
        assert [e["text"] for e in events if e["type"] == "assistant"] == [STREAMED]
        assert events[-1]["subtype"] == "success" and events[-1]["session_id"] == sid
    # both were streaming at the same time: each one's first piece came before the other's end
    def first_delta(sid: str) -> float:
        return next(t for t, e in seen[sid] if e["type"] == "text_delta")

    assert first_delta(first) < seen[second][-1][0] and first_delta(second) < seen[first][-1][0]


def test_an_approval_is_answered_over_http(server: Server, api: httpx2.Client, llm: FakeLLM, places: tuple[Path, Path]) -> None:
    ws = places[1]
    llm.script(Reply(tool_calls=[ToolCall("createfile", {"path": "approved.txt", "content": "hello\n"})]), Reply(content="Made it."))
    sid = new_session(api, ws)
    assert api.post(f"/sessions/{sid}/messages", json={"text": "make the file"}).status_code == 202
    asked = [e for _, e in read_events(api, sid, lambda e: e["type"] == "approval_request")][-1]
    assert asked["tool"] == "createfile" and asked["arguments"]["path"] == "approved.txt"
    assert "+hello" in asked["diff"]  # what the edit would do, shown with the question
    assert asked["options"] == ["allow", "allow_session", "deny"]
    assert not (ws / "approved.txt").exists()  # nobody answered yet: nothing ran
    assert api.get(f"/sessions/{sid}").json()["pending_approvals"][0]["call_id"] == asked["call_id"]
    wrong = api.post(f"/sessions/{sid}/approvals/{asked['call_id']}", json={"decision": "maybe"})
    assert wrong.status_code == 400
    assert api.post(f"/sessions/{sid}/approvals/nope", json={"decision": "allow"}).status_code == 404
    answer = api.post(f"/sessions/{sid}/approvals/{asked['call_id']}", json={"decision": "allow"})
    assert answer.status_code == 200
    events = [e for _, e in read_events(api, sid, is_result)]
    assert (ws / "approved.txt").exists()
    assert {"type": "approval_resolved", "call_id": asked["call_id"], "decision": "allow"} in events
    assert events[-1]["subtype"] == "success" and events[-1]["result"] == "Made it."
    changed = api.get(f"/sessions/{sid}/changes").json()
    assert changed["files"] == ["approved.txt"] and "+hello" in changed["diff"]


def test_cancel_kills_the_running_command(server: Server, api: httpx2.Client, llm: FakeLLM, places: tuple[Path, Path]) -> None:
    ws = places[1]
    llm.script(Reply(tool_calls=[ToolCall("bash", {"command": "echo $$ > pid; sleep 60"})]), Reply(content="still here"))
    sid = new_session(api, ws)
    api.post(f"/sessions/{sid}/messages", json={"text": "sleep"})
    asked = [e for _, e in read_events(api, sid, lambda e: e["type"] == "approval_request")][-1]
    api.post(f"/sessions/{sid}/approvals/{asked['call_id']}", json={"decision": "allow"})
    deadline = time.monotonic() + 30
    while not ((ws / "pid").is_file() and (ws / "pid").read_text().strip()):
        assert time.monotonic() < deadline, "the command never started"
        time.sleep(0.05)
    pid = int((ws / "pid").read_text())
    assert not gone(pid)
    assert api.post(f"/sessions/{sid}/cancel").json() == {"cancelled": True}
    events = [e for _, e in read_events(api, sid, is_result)]
    assert events[-1]["is_error"] and events[-1]["error_kind"] == "interrupted"
    ended = [e for e in events if e["type"] == "tool_result"]
    assert ended and ended[-1]["is_error"]
    deadline = time.monotonic() + 10  # killed with its group; a killed process may take a moment to finish dying
    while not gone(pid):
        assert time.monotonic() < deadline, f"process {pid} still runs"
        time.sleep(0.02)
    (ws / "pid").unlink()
    # the session goes on
    last = api.get(f"/sessions/{sid}").json()["last_event_id"]
    api.post(f"/sessions/{sid}/messages", json={"text": "are you there?"})
    again = [e for _, e in read_events(api, sid, is_result, after=last)]
    assert again[-1]["result"] == "still here"


def test_events_resume_after_a_dropped_connection(server: Server, api: httpx2.Client, llm: FakeLLM, places: tuple[Path, Path]) -> None:
    ws = places[1]
    llm.script(Reply(content=STREAMED, chunk_delay=0.03, chunk_size=4))
    sid = new_session(api, ws)
    api.post(f"/sessions/{sid}/messages", json={"text": "stream"})
    received: list[tuple[int, dict[str, Any]]] = []
    for item in read_events(api, sid, lambda e: e["type"] == "text_delta"):
        received.append(item)  # the connection drops right after the first piece of the reply
    cut = received[-1][0]
    deadline = time.monotonic() + 30
    while api.get(f"/sessions/{sid}").json()["last_event_id"] < cut + 3:  # events published while away
        assert time.monotonic() < deadline
        time.sleep(0.02)
    received += list(read_events(api, sid, is_result, last_event_id=cut))
    ids = [event_id for event_id, _ in received]
    assert ids == list(range(1, len(ids) + 1))  # none lost, none repeated
    assert "".join(e["text"] for _, e in received if e["type"] == "text_delta") == STREAMED


def test_a_session_is_resumed_from_disk_by_a_new_server(server: Server, llm: FakeLLM, places: tuple[Path, Path]) -> None:
    home, ws = places
    llm.script(Reply(content="The password is swordfish."), Reply(content="You asked about the password."))
    with server.client() as api:
        sid = new_session(api, ws)
        api.post(f"/sessions/{sid}/messages", json={"text": "what is the password?"})
        list(read_events(api, sid, is_result))
        assert api.delete(f"/sessions/{sid}").status_code == 200
        assert api.post(f"/sessions/{sid}/messages", json={"text": "x"}).status_code == 404
    later = start_server(home, [ws], llm.base_url, "--sandbox", "off")
    try:
        with later.client() as api:
            listed = {s["id"]: s for s in api.get("/sessions").json()["sessions"]}
            assert listed[sid]["open"] is False and listed[sid]["title"] == "what is the password?"
            resumed = api.post("/sessions", json={"workspace": str(ws), "resume": sid})
            assert resumed.status_code == 201 and resumed.json()["id"] == sid
            texts = [m.get("content") for m in api.get(f"/sessions/{sid}/transcript").json()["messages"]]
            assert "The password is swordfish." in texts
            api.post(f"/sessions/{sid}/messages", json={"text": "what did I ask?"})
            events = [e for _, e in read_events(api, sid, is_result)]
            assert events[-1]["result"] == "You asked about the password."
            sent = [m.get("content") for m in llm.requests[-1].body["messages"]]
            assert "The password is swordfish." in sent  # the model saw the earlier conversation
            forked = api.post(f"/sessions/{sid}/fork")
            assert forked.status_code == 201 and forked.json()["id"] != sid
        # stopping the server ends the streams still open cleanly, then the process exits 0
        outcome: list[object] = []

        def watch() -> None:
            try:
                with later.client() as client:
                    outcome.append(len(list(read_events(client, sid, lambda e: False, after=10**6))))
            except Exception as exc:  # noqa: BLE001 - whatever ended the stream is the test's finding
                outcome.append(exc)

        watcher = threading.Thread(target=watch)
        watcher.start()
        api = later.client()
        deadline = time.monotonic() + 30
        while api.get(f"/sessions/{sid}").json()["readers"] == 0:
            assert time.monotonic() < deadline, "the stream never opened"
            time.sleep(0.05)
    finally:
        code = later.stop()
    watcher.join(30)
    assert outcome == [0] and code in (0, -15)  # uvicorn ends by the signal it was stopped with


def test_a_non_loopback_address_is_served_only_when_named_and_is_warned_about(llm: FakeLLM, places: tuple[Path, Path]) -> None:
    home, ws = places
    everywhere = start_server(home, [ws], llm.base_url, "--host", "0.0.0.0")
    try:
        port = everywhere.url.rsplit(":", 1)[1]
        with everywhere.client() as api:
            assert api.get("/sessions").status_code == 200
            # an address of this machine is fine; a DNS name is what rebinding needs, so it is not
            assert api.get("/sessions", headers={"host": f"10.1.2.3:{port}"}).status_code == 200
            assert api.get("/sessions", headers={"host": f"attacker.example:{port}"}).status_code == 421
    finally:
        everywhere.stop()
    assert everywhere.proc.stderr is not None
    assert "warning: serving on 0.0.0.0, not loopback" in everywhere.proc.stderr.read()


def test_help_loads_neither_the_server_nor_the_model_client(places: tuple[Path, Path]) -> None:
    import subprocess
    import sys

    from tests.clirun import cli_env

    home, ws = places
    probe = (
        "import sys\n"
        "from kimicode.cli import main\n"
        "for argv in (['kimicode', '--help'], ['kimicode', 'serve', '--help'], ['kimicode', 'web', '--help']):\n"
        "    sys.argv = argv\n"
        "    try:\n"
        "        main()\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'starlette', 'uvicorn', 'openai'}))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], env=cli_env(home), cwd=ws, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "--workspace" in done.stdout and "--no-browser" in done.stdout and "serve|web" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_images_steering_mode_and_model(server: Server, api: httpx2.Client, llm: FakeLLM, places: tuple[Path, Path]) -> None:
    import base64

    from tests.mcp_servers.demo_server import red_square_png

    ws = places[1]
    sid = new_session(api, ws)
    bad = api.post(f"/sessions/{sid}/messages", json={"text": "look", "images": ["https://example.invalid/x.png"]})
    assert bad.status_code == 400 and "data URL" in bad.json()["error"]
    assert api.post(f"/sessions/{sid}/steer", json={"text": "nothing runs"}).status_code == 409
    # a message with a picture, during which the user steers and tries to switch modes
    llm.script(Reply(tool_calls=[ToolCall("bash", {"command": "touch steered.txt"})]), Reply(content="A red square; and hi."))
    url = "data:image/png;base64," + base64.b64encode(red_square_png()).decode()
    api.post(f"/sessions/{sid}/messages", json={"text": "what is this?", "images": [url]})
    asked = [e for _, e in read_events(api, sid, lambda e: e["type"] == "approval_request")][-1]
    assert asked["type"] == "approval_request"
    assert api.post(f"/sessions/{sid}/messages", json={"text": "another"}).status_code == 409
    assert api.post(f"/sessions/{sid}/mode", json={"mode": "instant"}).status_code == 409
    assert api.post(f"/sessions/{sid}/steer", json={"text": "also say hi"}).status_code == 202
    api.post(f"/sessions/{sid}/approvals/{asked['call_id']}", json={"decision": "allow"})
    events = [e for _, e in read_events(api, sid, is_result)]
    assert {"type": "user", "content": "also say hi", "agent": ""} in events
    first, second = llm.requests[-2].body["messages"], llm.requests[-1].body["messages"]
    assert any(part.get("type") == "image_url" for part in first[-1]["content"])
    assert "also say hi" in json.dumps(second)
    # between turns: plan mode (the stance), another mode, another model
    assert api.post(f"/sessions/{sid}/mode", json={"mode": "plan"}).json()["mode"] == "plan"
    assert api.post(f"/sessions/{sid}/mode", json={"mode": "instant"}).json()["mode"] == "instant"
    assert api.post(f"/sessions/{sid}/mode", json={"mode": "fast"}).status_code == 400
    assert api.post(f"/sessions/{sid}/model", json={"model": "kimi-other"}).json()["model"] == "kimi-other"
    llm.script(Reply(content="switched"))
    last = api.get(f"/sessions/{sid}").json()["last_event_id"]
    api.post(f"/sessions/{sid}/messages", json={"text": "still there?"})
    assert [e for _, e in read_events(api, sid, is_result, after=last)][-1]["result"] == "switched"
    assert llm.requests[-1].body["model"] == "kimi-other"


def test_plan_mode_asks_the_client_to_review_the_plan(server: Server, api: httpx2.Client, llm: FakeLLM, places: tuple[Path, Path]) -> None:
    ws = places[1]
    sid = new_session(api, ws)
    assert api.post(f"/sessions/{sid}/mode", json={"mode": "plan"}).json()["mode"] == "plan"
    llm.script(Reply(tool_calls=[ToolCall("propose_plan", {"plan": "1. Add `parse_date`\n2. Test it"})]), Reply(content="Starting."))
    api.post(f"/sessions/{sid}/messages", json={"text": "plan the parser"})
    asked = [e for _, e in read_events(api, sid, lambda e: e["type"] == "approval_request")][-1]
    assert asked["tool"] == "propose_plan" and "parse_date" in asked["arguments"]["plan"]
    api.post(f"/sessions/{sid}/approvals/{asked['call_id']}", json={"decision": "allow_session"})
    assert [e for _, e in read_events(api, sid, is_result)][-1]["result"] == "Starting."
    assert api.get(f"/sessions/{sid}").json()["mode"] == "agent"  # out of plan mode, edits allowed
    assert "edits in the workspace run without asking" in llm.requests[-1].tool_results()[-1]["content"]


def test_bad_start_options_are_one_line_and_exit_2(places: tuple[Path, Path]) -> None:
    import socket
    import subprocess
    import sys

    from tests.clirun import cli_env

    home, ws = places
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        cases = {
            ("--workspace", str(ws / "missing")): "is not a folder",
            ("--port", port, "--workspace", str(ws)): f"cannot listen on 127.0.0.1:{port}",
            ("--mode", "fast"): "unknown --mode 'fast'",
        }
        for args, said in cases.items():
            done = subprocess.run([sys.executable, "-m", "kimicode", "serve", *args], env=cli_env(home), cwd=ws,
                                  capture_output=True, text=True, timeout=60)
            assert done.returncode == 2 and said in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
            assert done.stdout == ""


def test_cancel_while_a_question_is_open(server: Server, api: httpx2.Client, llm: FakeLLM, places: tuple[Path, Path]) -> None:
    ws = places[1]
    sid = new_session(api, ws)
    llm.script(Reply(tool_calls=[ToolCall("bash", {"command": "touch never.txt"})]))
    api.post(f"/sessions/{sid}/messages", json={"text": "go"})
    asked = [e for _, e in read_events(api, sid, lambda e: e["type"] == "approval_request")][-1]
    assert asked["type"] == "approval_request"
    api.post(f"/sessions/{sid}/cancel")
    events = [e for _, e in read_events(api, sid, is_result)]
    assert {"type": "approval_resolved", "call_id": asked["call_id"], "decision": "cancelled"} in events
    assert events[-1]["error_kind"] == "interrupted"
    assert api.get(f"/sessions/{sid}").json()["pending_approvals"] == []
    late = api.post(f"/sessions/{sid}/approvals/{asked['call_id']}", json={"decision": "allow"})
    assert late.status_code == 404
    assert not (ws / "never.txt").exists()
