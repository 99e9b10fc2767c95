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
    Browser,
    close_session_browsers,
    resolve_target,
    session_browser,
)
from kimicode.vision.errors import VisionError
from kimicode.vision.images import estimate_image_tokens
from kimicode.vision.launch import NO_CHROMIUM_MESSAGE
from tests.sandboxing import missing

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
            missing(f"a usable Chromium ({exc})")

    loop.run_until_complete(start())

    def run_in_loop(coroutine: Awaitable[T]) -> T:
        return loop.run_until_complete(coroutine)

    return run_in_loop


def _pixels(data: bytes) -> PILImage.Image:
    return PILImage.open(io.BytesIO(data)).convert("RGB")


def _near(pixel: tuple[int, ...], colour: tuple[int, int, int], tolerance: int = 12) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, colour, strict=False))


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
    import kimicode.vision.launch as launch_module

    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("KIMICODE_CHROMIUM", raising=False)
    monkeypatch.setattr(launch_module, "FALLBACK_PATHS", [str(tmp_path / "no-chromium")])
    monkeypatch.setattr(launch_module, "playwright_executable", lambda chromium: None)

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


# --- Interacting, devices, facts, references -----------------------------------------------------------

FORM_PAGE = """<!doctype html><html><head><style>
body { margin: 0; font: 16px sans-serif } #out { height: 40px } .tip { display: none }
#hover:hover + .tip { display: block; width: 200px; height: 60px; background: rgb(0, 120, 255) }
section { height: 900px } #far { background: rgb(200, 0, 200) }
</style></head><body>
<input id="q"><div id="out"></div>
<a id="hover">hover me</a><div class="tip"></div>
<section></section><section id="far">far</section>
<script>
document.getElementById('q').addEventListener('keydown', e => {
  if (e.key === 'Enter') { const o = document.getElementById('out'); o.textContent = 'searched ' + e.target.value;
    setTimeout(() => { o.style.background = 'rgb(255, 0, 0)'; o.className = 'done' }, 150) }
});
</script></body></html>"""


def test_actions_type_press_wait_and_scroll_in_order(run: Any, tmp_path: Path) -> None:
    (tmp_path / "form.html").write_text(FORM_PAGE)
    actions = [
        {"type": "#q", "text": "shoes"},
        {"press": "Enter"},
        {"wait_for": ".done"},
        {"scroll_to": "#far"},
    ]
    result = _screenshot(run, tmp_path, target="form.html", actions=actions, width=400, height=300)
    assert not result.is_error, result.text
    [image] = result.images
    assert _near(_pixels(image.data).getpixel((200, 150)), (200, 0, 200))  # scrolled to #far
    top = _screenshot(run, tmp_path, target="form.html", actions=actions[:3], width=400, height=300)
    picture = _pixels(top.images[0].data)
    assert _near(picture.getpixel((300, 40)), (255, 0, 0))  # the Enter handler ran and finished


def test_hover_shows_what_only_hover_shows(run: Any, tmp_path: Path) -> None:
    (tmp_path / "form.html").write_text(FORM_PAGE)
    plain = _screenshot(run, tmp_path, target="form.html", width=400, height=300)
    hovered = _screenshot(run, tmp_path, target="form.html", width=400, height=300, actions=[{"hover": "hover me"}])
    blue = (0, 120, 255)
    assert not any(_near(p, blue) for p in _pixels(plain.images[0].data).get_flattened_data())
    assert sum(_near(p, blue) for p in _pixels(hovered.images[0].data).get_flattened_data()) > 5000


def test_a_failed_action_names_the_step_and_shows_the_page(run: Any, tmp_path: Path) -> None:
    (tmp_path / "box.html").write_text(BOX_PAGE)
    result = _screenshot(
        run, tmp_path, target="box.html", actions=[{"wait_for": 10}, {"click": "Sign in"}, {"press": "Enter"}]
    )
    assert result.is_error
    assert result.text.startswith('action 2 of 3 (click "Sign in") failed: nothing on the page matches')
    [image] = result.images
    assert image.label == "the page as it was when the action failed"
    assert _near(_pixels(image.data).getpixel((350, 195)), (220, 30, 40))
    malformed = _screenshot(run, tmp_path, target="box.html", actions=[{"tap": "#x"}])
    assert malformed.is_error and "action 1 must name exactly one of click, hover" in malformed.text


def test_selector_captures_one_element_with_its_facts(run: Any, tmp_path: Path) -> None:
    (tmp_path / "box.html").write_text(BOX_PAGE.replace("<div ", '<div class="card" '))
    result = _screenshot(run, tmp_path, target="box.html", selector=".card")
    assert not result.is_error, result.text
    [image] = result.images
    assert (image.width, image.height) == (300, 150)
    assert "element .card: x=200 y=120 w=300 h=150" in result.text
    assert "background rgb(220, 30, 40)" in result.text
    missing = _screenshot(run, tmp_path, target="box.html", selector="#nothing")
    assert missing.is_error and "selector: nothing on the page matches" in missing.text


def test_device_and_dark_scheme(run: Any, tmp_path: Path) -> None:
    (tmp_path / "scheme.html").write_text(
        '<html><head><meta name="viewport" content="width=device-width"><style>body { background: rgb(255,255,255) }'
        " @media (prefers-color-scheme: dark) { body { background: rgb(10, 10, 10) } }</style></head><body></body></html>"
    )
    dark = _screenshot(run, tmp_path, target="scheme.html", color_scheme="dark", device="iPhone 15")
    assert "device iPhone 15: 393x659 at 3x, touch" in dark.text
    [image] = dark.images
    assert _near(_pixels(image.data).getpixel((10, 10)), (10, 10, 10))
    assert abs(image.width / image.height - 393 / 659) < 0.01
    tablet = _screenshot(run, tmp_path, target="scheme.html", device="tablet")
    assert _near(_pixels(tablet.images[0].data).getpixel((10, 10)), (255, 255, 255))
    unknown = _screenshot(run, tmp_path, target="scheme.html", device="Nokia 3310")
    assert unknown.is_error and "unknown device 'Nokia 3310'" in unknown.text


def test_overflow_names_the_outermost_culprit_only(run: Any, tmp_path: Path) -> None:
    (tmp_path / "wide.html").write_text(
        "<html><body style='margin:0'><div class='row'><div class='inner' style='width:900px;height:20px'></div></div>"
        "<div style='overflow:hidden'><div style='width:2000px;height:20px'></div></div></body></html>"
    )
    result = _screenshot(run, tmp_path, target="wide.html", width=500, height=300)
    assert "horizontal overflow: the page is 900px wide in a 500px viewport" in result.text
    assert "div.row" in result.text or "div.inner" in result.text
    assert "2000px" not in result.text  # clipped by its parent: no scrollbar, not a problem
    fits = _screenshot(run, tmp_path, target="wide.html", width=1200, height=300)
    assert "overflow" not in fits.text


def test_identical_capture_is_not_sent_twice_in_one_conversation(run: Any, tmp_path: Path) -> None:
    (tmp_path / "box.html").write_text(BOX_PAGE)
    ctx = ToolContext(workspace=tmp_path)
    first = run(ScreenshotTool().run({"target": "box.html"}, ctx))
    again = run(ScreenshotTool().run({"target": "box.html"}, ctx))
    assert len(first.images) == 1
    assert again.images == [] and "identical to the picture already shown" in again.text
    other_conversation = _screenshot(run, tmp_path, target="box.html")
    assert len(other_conversation.images) == 1


def test_reference_image_below_and_above_the_target(run: Any, tmp_path: Path) -> None:
    (tmp_path / "box.html").write_text(BOX_PAGE)
    (tmp_path / "moved.html").write_text(BOX_PAGE.replace("left:200px", "left:600px"))
    [design] = run(_shoot(str(tmp_path / "box.html")))
    (tmp_path / "design.png").write_bytes(bytes(design))

    moved = _screenshot(run, tmp_path, target="moved.html", reference="design.png")
    assert not moved.is_error, moved.text
    assert "similarity: 0." in moved.text and "(target 0.95: below)" in moved.text
    assert "1) x=" in moved.text and "2) x=" in moved.text
    assert [i.label.split(":")[0] for i in moved.images] == ["moved.html at 1280x800", "diff vs design.png", "reference design.png"]

    same = _screenshot(run, tmp_path, target="box.html", reference="design.png")
    assert "similarity: 1.00 (target 0.95: matches)" in same.text
    assert len(same.images) == 1 and "no diff image sent" in same.text
    missing = _screenshot(run, tmp_path, target="box.html", reference="nope.png")
    assert missing.is_error and "reference image not found" in missing.text


def test_tall_design_is_sliced_by_scroll_position(run: Any, tmp_path: Path) -> None:
    (tmp_path / "tall.html").write_text(TALL_PAGE.replace("<script>", "<script>document.getElementById('c').classList.add('seen');"))
    [design] = run(_shoot(str(tmp_path / "tall.html"), full_page=True))
    (tmp_path / "design.png").write_bytes(bytes(design))
    result = _screenshot(run, tmp_path, target="tall.html", scroll_frames=3, reference="design.png")
    assert not result.is_error, result.text
    assert "similarity: 1.00" in result.text
    assert "frame 2/3: similarity 1.00 vs reference rows 800-1600" in result.text
    # The page without the blue section is wrong only in the last frame.
    (tmp_path / "grey.html").write_text(TALL_PAGE.replace("new IntersectionObserver", "false && new IntersectionObserver"))
    grey = _screenshot(run, tmp_path, target="grey.html", scroll_frames=3, reference="design.png")
    lines = {line.split(":")[0].strip("- "): line for line in grey.text.splitlines() if line.startswith("- frame")}
    assert "similarity 1.00" in lines["frame 1/3"] and "similarity 1.00" in lines["frame 2/3"]
    assert "similarity 1.00" not in lines["frame 3/3"]
    assert sum(i.label.startswith("frame 3/3: diff") for i in grey.images) == 1


def test_recorded_scroll_video_pairs_frames_by_scroll_position(run: Any, tmp_path: Path) -> None:
    import cv2
    import numpy as np

    page = (
        "<html><body style='margin:0'>"
        + "".join(
            f"<div style='height:{h}px;background:rgb({r},{g},{b});border-top:6px solid #000;font:20px sans-serif'>"
            + "".join(f"<p style='margin:0 0 {12 + (h * i) % 37}px {(i * 53) % 200}px'>Line {i} of a {h}px section</p>" for i in range(h // 60))
            + "</div>"
            for h, r, g, b in [(300, 255, 80, 80), (500, 80, 200, 80), (400, 80, 80, 255), (700, 240, 240, 60), (500, 120, 40, 160)]
        )
        + "</body></html>"
    )
    (tmp_path / "page.html").write_text(page)
    [full] = run(_shoot(str(tmp_path / "page.html"), full_page=True, width=640, height=400))
    tall = cv2.imdecode(np.frombuffer(bytes(full), np.uint8), cv2.IMREAD_COLOR)
    # A screen recording at half size: 1 s still, then scrolling 40 page px per frame at 25 fps.
    video = tmp_path / "recording.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 25, (320, 200))
    max_scroll = tall.shape[0] - 400
    positions = [0] * 25 + list(range(0, max_scroll, 40)) + [max_scroll] * 10
    for y in positions:
        writer.write(cv2.resize(tall[y : y + 400], (320, 200), interpolation=cv2.INTER_AREA))
    writer.release()

    result = _screenshot(run, tmp_path, target="page.html", width=640, height=400, scroll_frames=4, reference=str(video))
    assert not result.is_error, result.text
    pairs = [line for line in result.text.splitlines() if line.startswith("- frame") and "similarity" in line]
    assert len(pairs) == 4, result.text
    for line in pairs:
        estimated = int(line.rsplit("scrollY≈", 1)[1].rstrip(")"))
        frame = int(line.split("/")[0].split()[-1])
        captured = [int(i.label.split("scrollY=")[1]) for i in result.images if i.label.startswith("frame ") and "scrollY=" in i.label]
        assert abs(estimated - captured[frame - 1]) <= 45, (line, captured)  # samples are 80px apart
        assert float(line.split("similarity ")[1].split()[0]) > 0.5, result.text  # a half-size, lossy recording


def test_actions_are_checked_before_the_browser_starts() -> None:
    from kimicode.vision.actions import Action, parse_actions

    assert parse_actions([{"click": "Open menu"}, {"type": {"selector": "#q", "text": "x"}}, {"wait_for": "250"}]) == [
        Action("click", target="Open menu"),
        Action("type", target="#q", text="x"),
        Action("wait_for", amount=250),
    ]
    assert parse_actions([{"scroll_to": 1200}, {"press": "Control+A"}]) == [
        Action("scroll_to", amount=1200),
        Action("press", text="Control+A"),
    ]
    for bad, message in [
        ({"click": "#a", "hover": "#b"}, "exactly one of"),
        ({"type": "#q"}, "type needs a selector and the text"),
        ({"wait_for": 60_000}, "out of range"),
        ("click #a", "must be an object"),
    ]:
        with pytest.raises(VisionError, match=message):
            parse_actions([{"wait_for": 1}, bad])
    with pytest.raises(VisionError, match="action 2"):
        parse_actions([{"wait_for": 1}, {"press": ""}])


def test_schema_stays_small() -> None:
    import json

    # Every request carries it: the new parameters must not crowd the first request (budget 8 KB).
    assert len(json.dumps(ScreenshotTool().schema())) <= 1100


class _ApiSite(BaseHTTPRequestHandler):
    """/ is a page whose stylesheet is missing (404) and whose data call fails (500)."""

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        routes = {
            "/": (200, b'<html><head><link rel="stylesheet" href="/app.css"></head><body><p>hi</p>'
                  b"<script>fetch('/api/items')</script></body></html>"),
            "/api/items": (500, b"boom"),
        }
        status, body = routes.get(self.path, (404, b"not found"))
        self.send_response(status)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_failed_requests_are_reported_with_their_status(run: Any, tmp_path: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ApiSite)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        result = _screenshot(run, tmp_path, target=url, actions=[{"wait_for": 200}])
    finally:
        server.shutdown()
        server.server_close()
    assert not result.is_error, result.text
    assert f"- HTTP 404 for {url}app.css" in result.text
    assert f"- HTTP 500 for {url}api/items" in result.text
    assert "Failed to load resource" not in result.text  # the console's copy of the same news


def test_each_conversation_keeps_its_own_record_of_pictures(tmp_path: Path) -> None:
    from kimicode.agent.loop import Agent

    shared = ToolContext(workspace=tmp_path)
    shared.shown_images["digest"] = "a capture"
    main, sub = (Agent(client=None, tools={}, ctx=shared, system_prompt="s") for _ in range(2))  # type: ignore[arg-type]
    assert main.ctx.shown_images == {} and sub.ctx.shown_images == {}
    main.ctx.shown_images["x"] = "main's picture"
    assert sub.ctx.shown_images == {}  # a sub-agent never hears "already shown" about the main's pictures
    assert main.ctx.file_locks is sub.ctx.file_locks is shared.file_locks  # edits still serialise


def _descendants(pid: int) -> list[int]:
    children: list[int] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                ppid = int(handle.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid:
            children.append(int(entry))
    return children + [grand for child in children for grand in _descendants(child)]


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads process environments from /proc")
def test_the_browser_does_not_inherit_the_model_keys(run: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A page can show `file:///proc/self/environ`; Chromium must not hold kimicode's key to show."""
    from kimicode.security import childenv

    monkeypatch.setenv("KIMI_API_KEY", "sk-browser-must-not-see-this-0123456789")
    monkeypatch.setattr(childenv, "_taken", {})
    childenv.withhold_keys()  # what kimicode's start-up does
    assert childenv.environment()["KIMI_API_KEY"] == "sk-browser-must-not-see-this-0123456789"
    page = tmp_path / "box.html"
    page.write_text(BOX_PAGE)
    browser = Browser()
    try:
        run(browser.screenshot(page.as_uri()))
        pids = _descendants(os.getpid())
        assert pids, "the browser runs as a child of this process"
        for pid in pids:
            try:
                environ = open(f"/proc/{pid}/environ", "rb").read()
            except OSError:
                continue
            assert b"sk-browser-must-not-see-this" not in environ, pid
    finally:
        run(browser.close())


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


@pytest.mark.skipif(not Path("/proc/self/ns/user").exists(), reason="Linux namespaces only")
def test_chromium_renders_inside_its_own_sandbox(run: Any, tmp_path: Path) -> None:
    # As root too: Chromium refuses its sandbox as root, so it is started as an ordinary user in a user
    # namespace of its own, where the sandbox works.
    page = tmp_path / "p.html"
    page.write_text("<p>hello</p>")
    renderers: list[str] = []
    sandboxed: list[bool] = []

    async def shoot_and_look() -> None:
        browser = session_browser()
        sandboxed.append(browser.sandboxed)
        context = await browser._browser.new_context()
        tab = await context.new_page()
        await tab.goto(page.as_uri())
        for pid in _descendants(os.getpid()):
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes()
                status = Path(f"/proc/{pid}/status").read_text()
                namespace = os.readlink(f"/proc/{pid}/ns/user")
            except OSError:
                continue
            assert b"--no-sandbox" not in command
            if b"--type=renderer" in command:
                renderers.append(f"{status} user-ns {namespace}")
        await context.close()

    run(shoot_and_look())
    assert sandboxed == [True] and renderers
    ours = os.readlink("/proc/self/ns/user")
    for renderer in renderers:
        assert "Seccomp:\t2" in renderer and "CapEff:\t0000000000000000" in renderer and ours not in renderer


@pytest.mark.skipif(os.geteuid() != 0, reason="as root Chromium refuses its sandbox without the user namespace")
def test_a_browser_without_its_sandbox_says_so_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import kimicode.vision.launch as launch_module
    from kimicode.vision.browser import UNSANDBOXED_NOTE

    monkeypatch.setattr(launch_module, "sandbox_wrapper", lambda executable: None)  # as if unshare were missing
    (tmp_path / "p.html").write_text("<p>hello</p>")

    async def two_shots() -> list[str]:
        browser = Browser(workspace=tmp_path)
        try:
            return [(await browser.screenshot("p.html"))[0].note for _ in range(2)]
        finally:
            await browser.close()

    try:
        notes = asyncio.run(two_shots())
    except VisionError as exc:
        pytest.skip(f"no usable Chromium on this machine ({exc})")
    assert notes == [UNSANDBOXED_NOTE, ""]


class _BackgroundTrigger(BaseHTTPRequestHandler):
    """/trigger.js: before answering, asks the browser's gate for two refused addresses itself, the way
    Chromium's own background services do (an updater, an account check): requests no page made."""

    gate_port = 0
    answers: list[bytes] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        for request in (
            b"GET http://169.254.169.254/from-the-background HTTP/1.1\r\nHost: 169.254.169.254\r\n\r\n",
            b"CONNECT 169.254.169.254:9443 HTTP/1.1\r\nHost: 169.254.169.254:9443\r\n\r\n",
        ):
            with socket.create_connection(("127.0.0.1", self.gate_port)) as raw:
                raw.sendall(request)
                self.answers.append(b"".join(iter(lambda: raw.recv(65536), b"")))  # to the gate's close
        body = b"document.title = 'triggered'"
        self.send_response(200)
        self.send_header("Content-Type", "text/javascript")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_the_report_holds_the_pages_refused_requests_not_the_browsers_own(run: Any, tmp_path: Path) -> None:
    # A background request cannot be made to happen on cue in Chromium, so the test's server makes the
    # browser's kind of request at the gate while the page loads: outside the page's context, like them.
    async def gate_port() -> int:
        return session_browser().gate_port

    _BackgroundTrigger.gate_port = run(gate_port())
    _BackgroundTrigger.answers = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _BackgroundTrigger)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    trigger = f"<script src='http://127.0.0.1:{server.server_address[1]}/trigger.js'></script>"
    (tmp_path / "plain.html").write_text(BOX_PAGE.replace("<body", f"<head>{trigger}</head><body"))
    (tmp_path / "reaching.html").write_text(BOX_PAGE.replace("<body", f"<head>{trigger}</head><body").replace(
        "</body>",
        "<img src='http://169.254.169.254/from-the-page'><img src='https://169.254.169.254:8443/x.png'></body>",
    ))
    try:
        plain = _screenshot(run, tmp_path, target="plain.html")
        reaching = _screenshot(run, tmp_path, target="reaching.html")
    finally:
        server.shutdown()
        server.server_close()

    # The background requests were made and refused, during each page's load...
    assert len(_BackgroundTrigger.answers) == 4, _BackgroundTrigger.answers
    assert all(answer.startswith(b"HTTP/1.1 403") for answer in _BackgroundTrigger.answers)
    # ...but only what the page itself asked for is reported as the page's problem.
    assert not plain.is_error and "refused" not in plain.text, plain.text
    assert "- refused http://169.254.169.254/from-the-page: " in reaching.text, reaching.text
    assert "- refused 169.254.169.254:8443: " in reaching.text, reaching.text
    assert "from-the-background" not in reaching.text and "9443" not in reaching.text, reaching.text
