"""`kimicode web` in a real Chromium (Playwright): log in with the link, stream a reply, approve a command,
see a picture inline, cancel a turn, at desktop and phone sizes; hostile text in a reply stays text."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fake_llm import FakeLLM, Reply, ToolCall
from tests.mcp_servers.demo_server import red_square_png
from tests.sandboxing import missing
from tests.webserver import Server, gone, start_server

# Where the screenshots are also copied, to be looked at after the run (unset: only the test's tmp folder).
ARTIFACTS = os.environ.get("KIMICODE_TEST_ARTIFACTS", "")
HOSTILE = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'
LINKS = "[docs](https://example.invalid/docs) and [click me](javascript:window.__pwned=3)"
REPLY = f"Here is **bold** and `code`:\n\n```python\nprint('hi')  # greet\n```\n\n{HOSTILE}\n\n{LINKS}\n"


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeLLM]:
    with FakeLLM() as server:
        yield server


@pytest.fixture(scope="module")
def places(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("web")
    (root / "ws").mkdir()
    return root / "home", root / "ws"


@pytest.fixture(scope="module")
def server(llm: FakeLLM, places: tuple[Path, Path]) -> Iterator[Server]:
    home, ws = places
    running = start_server(home, [ws], llm.base_url, "--sandbox", "off", command="web")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    from kimicode.vision.launch import CHROMIUM_ARGS, find_chromium

    executable = find_chromium()
    if executable is None:
        missing("Chromium")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox", *CHROMIUM_ARGS])
        yield launched
        launched.close()


def keep(page: Any, tmp_path: Path, name: str) -> None:
    """The screenshot as a test artifact (and in KIMICODE_TEST_ARTIFACTS when that is set)."""
    shot = tmp_path / f"web-{name}.png"
    page.screenshot(path=str(shot), full_page=False)
    if ARTIFACTS:
        Path(ARTIFACTS).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(ARTIFACTS) / f"web-{name}.png")


def wait_gone(pid: int) -> None:
    deadline = time.monotonic() + 10
    while not gone(pid):
        assert time.monotonic() < deadline, f"process {pid} still runs"
        time.sleep(0.02)


def send(page: Any, text: str) -> None:
    box = page.get_by_label("Message")
    box.fill(text)
    box.press("Enter")


def test_desktop_login_stream_approve_and_picture(server: Server, browser: Any, llm: FakeLLM, places: tuple[Path, Path], tmp_path: Path) -> None:
    ws = places[1]
    (ws / "red.png").write_bytes(red_square_png())
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(server.login_url)
    assert page.url == f"{server.url}/"
    page.wait_for_selector("kc-app[data-ready] .sessions li.current")  # the first visit opens a session in the workspace

    llm.script(Reply(content=REPLY, chunk_delay=0.01))
    box = page.get_by_label("Message")
    box.fill("first line")
    box.press("Shift+Enter")  # a new line, not a send
    box.type("second line")
    assert box.input_value() == "first line\nsecond line"
    box.press("Enter")
    page.wait_for_selector(".msg.user")
    assert page.locator(".msg.user").inner_text() == "first line\nsecond line"
    reply = page.locator(".msg.assistant").last
    reply.locator("pre.code").wait_for()
    page.locator(".msg.assistant", has_text="__pwned=3").wait_for()  # the whole reply is in
    assert reply.locator("strong").inner_text() == "bold"
    assert reply.locator(".tk-c").inner_text() == "# greet"  # highlighted code
    # the hostile markup is shown as text: no element made from it, nothing of it ran
    assert HOSTILE in reply.inner_text()
    assert reply.locator("img, script").count() == 0
    assert page.evaluate("window.__pwned") is None
    # only http(s) links become links, and they open apart from the page
    links = reply.locator("a")
    assert links.count() == 1 and links.get_attribute("href") == "https://example.invalid/docs"
    assert links.get_attribute("rel") == "noopener noreferrer"
    assert "[click me](javascript:window.__pwned=3)" in reply.inner_text()

    llm.script(Reply(tool_calls=[ToolCall("bash", {"command": "echo approved > ok.txt"})]), Reply(content="Wrote ok.txt."))
    send(page, "write ok.txt")
    question = page.locator(".approval").last
    assert question.locator("pre.command").inner_text() == "echo approved > ok.txt"
    assert not (ws / "ok.txt").exists()
    question.locator("button[data-decision=allow]").click()
    page.locator(".msg.assistant", has_text="Wrote ok.txt.").wait_for()
    assert (ws / "ok.txt").read_text() == "approved\n"
    assert question.locator("button[data-decision=allow]").is_disabled()

    llm.script(Reply(tool_calls=[ToolCall("view", {"path": "red.png"})]), Reply(content="A red square."))
    send(page, "look at red.png")
    shot = page.locator(".tool img.shot")
    shot.wait_for()
    assert shot.get_attribute("src").startswith("data:image/png;base64,")
    page.locator(".msg.assistant", has_text="A red square.").wait_for()
    assert page.evaluate("document.querySelector('.tool img.shot').naturalWidth") > 0
    status = page.locator("header .status")
    assert "tokens in context" in status.inner_text()
    assert "$" not in status.inner_text()  # the scripted endpoint's prices are not known: no cost is made up
    keep(page, tmp_path, "desktop")
    assert errors == []
    # the login link was spent by this visit
    again = context.new_page()
    assert again.goto(server.login_url).status == 401
    context.close()


def test_phone_cancel_a_turn_with_esc(server: Server, browser: Any, llm: FakeLLM, places: tuple[Path, Path], tmp_path: Path) -> None:
    ws = places[1]
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.goto(f"{server.url}/login?token={server.token}")  # the token itself logs in too
    page.wait_for_selector("kc-app[data-ready]")
    page.get_by_role("button", name="Sessions").click()
    # The first visit may have opened a session already (when this test runs first): wait for the new one to be
    # the current one, or the message would go to the old one.
    before = page.evaluate("document.querySelector('.sessions li.current')?.dataset.id ?? null")
    page.get_by_role("button", name="New session", exact=True).click()
    page.wait_for_function(
        "(before) => { const c = document.querySelector('.sessions li.current'); return c && c.dataset.id !== before; }",
        arg=before,
    )
    page.wait_for_selector(".panels")
    llm.script(Reply(tool_calls=[ToolCall("bash", {"command": "echo $$ > pid; sleep 60"})]), Reply(content="unused"))
    send(page, "wait a minute")
    page.locator(".approval button[data-decision=allow]").click()
    deadline = time.monotonic() + 30
    while not ((ws / "pid").is_file() and (ws / "pid").read_text().strip()):
        assert time.monotonic() < deadline, "the command never started"
        page.wait_for_timeout(50)
    pid = int((ws / "pid").read_text())
    assert page.locator("button.cancel").is_visible()
    # nothing overflows sideways at phone width
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    keep(page, tmp_path, "phone")
    page.keyboard.press("Escape")
    page.locator(".notice.error", has_text="cancelled").wait_for()
    wait_gone(pid)  # killed with its group; a killed process may take a moment to finish dying
    assert page.locator(".tool.failed").count() == 1
    assert page.locator("button.cancel").is_hidden()
    context.close()
