"""The Python SDK: README's example against a real `kimicode serve`, typed events over HTTP, and the same
API in-process (kimicode.sdk.local) without a server."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kimicode.sdk import Client, KimicodeError
from kimicode.sdk import events as ev
from tests.clirun import REPO, cli_env
from tests.fake_llm import FakeLLM, Reply, ToolCall
from tests.webserver import Server, start_server


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeLLM]:
    with FakeLLM() as server:
        yield server


@pytest.fixture(scope="module")
def places(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("sdk")
    (root / "ws").mkdir()
    return root / "home", root / "ws"


@pytest.fixture(scope="module")
def server(llm: FakeLLM, places: tuple[Path, Path]) -> Iterator[Server]:
    home, ws = places
    running = start_server(home, [ws], llm.base_url, "--sandbox", "off")
    yield running
    running.stop()


def readme_example() -> str:
    section = (REPO / "README.md").read_text(encoding="utf-8").split("### Server, web UI and SDK", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    return code.group(1)


def test_the_readme_example_runs(server: Server, llm: FakeLLM, places: tuple[Path, Path]) -> None:
    home, ws = places
    example = readme_example()
    assert len(example.strip().splitlines()) <= 14
    script = example.replace("http://127.0.0.1:5494", server.url).replace("/path/to/project", str(ws))
    llm.script(Reply(tool_calls=[ToolCall("bash", {"command": "touch from-sdk.txt"})]), Reply(content="Added the test."))
    done = subprocess.run([sys.executable, "-c", script], env=cli_env(home), cwd=ws, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "Added the test."
    assert (ws / "from-sdk.txt").exists()  # the approval the example gave let the command run


def test_events_are_typed_and_a_denial_reaches_the_model(server: Server, llm: FakeLLM, places: tuple[Path, Path]) -> None:
    ws = places[1]
    llm.script(Reply(content="Let me try.", tool_calls=[ToolCall("bash", {"command": "touch denied.txt"})]), Reply(content="Understood."))

    async def scenario() -> list[ev.Event]:
        async with Client(server.url, server.token) as client:
            with pytest.raises(KimicodeError) as refused:
                await client.create(str(places[0]))
            assert refused.value.status == 403
            session = await client.create(str(ws))
            seen = []
            async for event in session.send("make it"):
                seen.append(event)
                if isinstance(event, ev.ApprovalRequest):
                    await session.deny(event.call_id, "not today")
            assert session.id in [s["id"] for s in await client.sessions()]
            # a reader that stopped after the third event resumes right after it (Last-Event-ID)
            resumed = []
            async for event in client.events(session.id, seen[2].id):
                resumed.append(event)
                if isinstance(event, ev.Done):
                    break
            assert [(e.id, e.raw) for e in resumed] == [(e.id, e.raw) for e in seen[3:]]
            return seen

    seen = asyncio.run(asyncio.wait_for(scenario(), 60))
    kinds = [type(event) for event in seen]
    assert kinds[0] is ev.UserMessage and kinds[-1] is ev.Done
    assert ev.TextDelta in kinds and ev.Assistant in kinds and ev.ToolCallStart in kinds and ev.ToolCallEnd in kinds
    ids = [event.id for event in seen]
    assert ids == list(range(ids[0], ids[0] + len(ids)))
    start = next(e for e in seen if isinstance(e, ev.ToolCallStart))
    assert start.name == "bash" and start.input == {"command": "touch denied.txt"}
    done = seen[-1]
    assert isinstance(done, ev.Done) and done.result == "Understood." and not done.is_error
    assert not (ws / "denied.txt").exists()
    assert "not today" in llm.requests[-1].tool_results()[-1]["content"]


def test_the_same_api_runs_in_process_without_a_server(llm: FakeLLM, places: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    from kimicode.sdk.local import LocalClient

    home, ws = places
    for name, value in cli_env(home, llm.base_url).items():
        if name.startswith(("KIMI", "HOME")):
            monkeypatch.setenv(name, value)
    llm.script(Reply(tool_calls=[ToolCall("createfile", {"path": "local.txt", "content": "in process\n"})]), Reply(content="Wrote it."))

    async def scenario() -> tuple[list[ev.Event], dict[str, object]]:
        async with LocalClient([ws], {"sandbox": "off"}) as client:
            session = await client.create(ws)
            seen = []
            async for event in session.send("write local.txt"):
                seen.append(event)
                if isinstance(event, ev.ApprovalRequest):
                    assert "+in process" in event.diff
                    await session.approve(event.call_id)
            return seen, await session.changes()

    seen, changes = asyncio.run(asyncio.wait_for(scenario(), 60))
    assert (ws / "local.txt").read_text() == "in process\n"
    assert isinstance(seen[-1], ev.Done) and seen[-1].result == "Wrote it."
    assert changes["files"] == ["local.txt"]
