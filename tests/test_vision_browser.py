"""Screenshots in real headless Chromium: the pixels the model gets are the page the user would see."""

from __future__ import annotations

import asyncio
import io
import os
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Awaitable, Iterator, TypeVar

import pytest
from PIL import Image as PILImage

from kimicode.tools.base import ToolContext, ToolResult
from kimicode.tools.screenshot import ScreenshotTool
from kimicode.vision.browser import (
    NO_CHROMIUM_MESSAGE,
    Browser,
    close_session_browsers,
    resolve_target,
    session_browser,
)
from kimicode.vision.errors import VisionError
from kimicode.vision.images import estimate_image_tokens

T = TypeVar("T")

BOX_PAGE = """<!doctype html><html><body style="margin:0;background:#ffffff">
<div style="position:absolute;left:200px;top:120px;width:300px;height:150px;background:rgb(220,30,40)"></div>
</body></html>"""

# Three 800px sections; the last one turns blue only when an IntersectionObserver sees it.
TALL_PAGE = """<!doctype html><html><head><style>
body { margin: 0 } section { height: 800px }
#c { background: rgb(128,128,128) } #c.seen { background: rgb(0,0,255) }
</style></head><body>
<section style="background:rgb(255,0,0)"></section>
<section style="background:rgb(0,160,0)"></section>
<section id="c"></section>
<script>
new IntersectionObserver(es => es.forEach(e => { if (e.isIntersecting) e.target.classList.add('seen') }))
  .observe(document.getElementById('c'));
</script></body></html>"""


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """One event loop for the module, so the session browser is launched once."""
    event_loop = asyncio.new_event_loop()
    yield event_loop
    event_loop.run_until_complete(close_session_browsers())
    event_loop.close()


@pytest.fixture(scope="module")
def run(loop: asyncio.AbstractEventLoop) -> Any:
    async def start() -> None:
        try:
            await session_browser().start()
        except VisionError as exc:
            if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
                pytest.fail(f"CI must have a browser for these tests: {exc}")
            pytest.skip(f"no usable Chromium on this machine ({exc})")

    loop.run_until_complete(start())

    def run_in_loop(coroutine: Awaitable[T]) -> T:
        return loop.run_until_complete(coroutine)

    return run_in_loop


def _pixels(data: bytes) -> PILImage.Image:
    return PILImage.open(io.BytesIO(data)).convert("RGB")


def _near(pixel: tuple[int, ...], colour: tuple[int, int, int], tolerance: int = 12) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, colour))


async def _shoot(target: str, **options: Any) -> list[bytes]:
    return await session_browser().screenshot(target, **options)


def _screenshot(run: Any, workspace: Path, **args: Any) -> ToolResult:
    return run(ScreenshotTool().run(args, ToolContext(workspace=workspace)))


def test_box_is_where_the_page_puts_it(run: Any, tmp_path: Path) -> None:
    (tmp_path / "box.html").write_text(BOX_PAGE)

    result = _screenshot(run, tmp_path, target="box.html")

    assert not result.is_error, result.text
    [image] = result.images
    assert image.mime == "image/png"
    assert (image.width, image.height) == (1280, 800)
    picture = _pixels(image.data)
    assert _near(picture.getpixel((350, 195)), (220, 30, 40))  # inside the box
    assert _near(picture.getpixel((100, 60)), (255, 255, 255))  # outside it
    assert _near(picture.getpixel((510, 195)), (255, 255, 255))  # just right of it
    assert "box.html" in result.text and "1280x800" in result.text


def test_viewport_size_is_honoured(run: Any, tmp_path: Path) -> None:
    (tmp_path / "box.html").write_text(BOX_PAGE)
    result = _screenshot(run, tmp_path, target=str(tmp_path / "box.html"), width=400, height=300)
    [image] = result.images
    assert (image.width, image.height) == (400, 300)
    assert _near(_pixels(image.data).getpixel((300, 200)), (220, 30, 40))


def test_scroll_frames_show_each_section_and_scroll_triggered_changes(run: Any, tmp_path: Path) -> None:
    (tmp_path / "tall.html").write_text(TALL_PAGE)

    result = _screenshot(run, tmp_path, target="tall.html", scroll_frames=3)

    assert not result.is_error, result.text
    assert [image.label for image in result.images] == [
        "frame 1/3 at scrollY=0",
        "frame 2/3 at scrollY=800",
        "frame 3/3 at scrollY=1600",
    ]
    centres = [_pixels(image.data).getpixel((640, 400)) for image in result.images]
    assert _near(centres[0], (255, 0, 0))
    assert _near(centres[1], (0, 160, 0))
    assert _near(centres[2], (0, 0, 255))  # the observer ran before the picture was taken
    assert "3 frames" in result.text


def test_page_errors_are_reported_with_the_picture(run: Any, tmp_path: Path) -> None:
    (tmp_path / "broken.html").write_text(
        '<html><head><link rel="stylesheet" href="styles/missing.css"></head>'
        "<body><script>undefinedFunction()</script><p>text</p></body></html>"
    )
    result = _screenshot(run, tmp_path, target="broken.html")
    assert not result.is_error and len(result.images) == 1
    assert "Problems reported by the page:" in result.text
    assert "undefinedFunction" in result.text
    assert "styles/missing.css" in result.text


def test_full_page_captures_everything_within_budget(run: Any, tmp_path: Path) -> None:
    (tmp_path / "tall.html").write_text(TALL_PAGE)

    result = _screenshot(run, tmp_path, target="tall.html", full_page=True)

    [image] = result.images
    assert estimate_image_tokens(image.width, image.height) <= 4096
    assert abs(image.height / image.width - 2400 / 1280) < 0.02
    picture = _pixels(image.data)
    assert _near(picture.getpixel((image.width // 2, image.height // 6)), (255, 0, 0))
    assert _near(picture.getpixel((image.width // 2, image.height // 2)), (0, 160, 0))
    assert "page height 2400px" in result.text


def test_missing_file_is_a_clear_tool_error(run: Any, tmp_path: Path) -> None:
    result = _screenshot(run, tmp_path, target="nope.html")
    assert result.is_error
    assert "not found" in result.text and "\n" not in result.text
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    bad = _screenshot(run, tmp_path, target=f"http://127.0.0.1:{port}/")
    assert bad.is_error and "connection refused" in bad.text


class _SlowSite(BaseHTTPRequestHandler):
    """/page loads quickly but its image never finishes; /dead never sends a document at all."""

    release = threading.Event()

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        if self.path == "/page":
            body = (
                b'<html><body style="margin:0"><div style="width:300px;height:200px;background:rgb(0,0,255)">'
                b'</div><img src="/hang.png"></body></html>'
            )
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if self.path == "/hang.png":
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"\x89PNG")
            self.wfile.flush()
        # /hang.png after its first bytes, and /dead from the start: hold the connection open.
        self.release.wait(30)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def slow_site() -> Iterator[str]:
    _SlowSite.release.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SlowSite)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    _SlowSite.release.set()
    server.shutdown()
    server.server_close()


def test_page_that_never_finishes_loading_is_captured_with_a_note(run: Any, slow_site: str) -> None:
    frames = run(_shoot(slow_site + "/page", timeout=2.0))

    [frame] = frames
    assert "did not finish loading within 2s" in frame.note
    assert _near(_pixels(frame).getpixel((150, 100)), (0, 0, 255))


def test_page_whose_document_never_arrives_times_out_cleanly(run: Any, slow_site: str) -> None:
    with pytest.raises(VisionError) as error:
        run(_shoot(slow_site + "/dead", timeout=2.0))
    message = str(error.value)
    assert "did not load within 2s" in message and "\n" not in message
    # The browser is still usable afterwards.
    assert run(_shoot("about:blank", width=200, height=100))


def test_no_browser_anywhere_says_how_to_install_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import kimicode.vision.browser as browser_module

    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("KIMICODE_CHROMIUM", raising=False)
    monkeypatch.setattr(browser_module, "FALLBACK_PATHS", [str(tmp_path / "no-chromium")])
    monkeypatch.setattr(browser_module, "_playwright_executable", lambda chromium: None)

    with pytest.raises(VisionError) as error:
        asyncio.run(Browser().start())
    assert str(error.value) == NO_CHROMIUM_MESSAGE
    assert "sudo apt-get install chromium" in NO_CHROMIUM_MESSAGE


def test_targets_resolve_to_urls(tmp_path: Path) -> None:
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "index.html").write_text("<p>hi</p>")
    assert resolve_target("https://example.org/x") == "https://example.org/x"
    assert resolve_target("localhost:3000/app") == "http://localhost:3000/app"
    assert resolve_target("site", tmp_path) == (tmp_path / "site" / "index.html").resolve().as_uri()
    assert resolve_target("site/index.html", tmp_path).startswith("file:///")
    with pytest.raises(VisionError, match="neither an existing file nor a URL"):
        resolve_target("missing.html", tmp_path)
