"""End-to-end seeing: screenshots and attached media reach the model as real pixels."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest

from kimicode.vision.compare import SIMILARITY_TARGET
from tests.clirun import run_cli, write_home_config
from tests.fake_llm import FakeLLM, Reply, ToolCall
from tests.fake_llm.recorded import RecordedRequest


def images_in(request: RecordedRequest) -> list[tuple[str, object]]:
    """(preceding label text, PIL image) for every image in the request's messages."""
    from PIL import Image as PILImage

    found = []
    for message in request.messages:
        content = message.get("content")
        if not isinstance(content, list):
            continue
        label = ""
        for part in content:
            if part.get("type") == "text":
                label = part["text"]
            elif part.get("type") == "image_url":
                url = part["image_url"]["url"]
                header, data = url.split(",", 1)
                assert header.startswith("data:image/") and header.endswith(";base64")
                found.append((label, PILImage.open(io.BytesIO(base64.b64decode(data))).convert("RGB")))
    return found


def is_colour(pixel: tuple[int, int, int], rgb: tuple[int, int, int], tolerance: int = 40) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, rgb))


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "kimihome"
    write_home_config(home, "retry_base_delay = 0.01\n")
    return home


@pytest.fixture
def site(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    site.mkdir()
    (site / "box.html").write_text(
        "<html><body style='margin:0;background:#fff'>"
        "<div style='position:absolute;left:100px;top:100px;width:200px;height:150px;background:rgb(0,160,0)'></div>"
        "</body></html>"
    )
    (site / "tall.html").write_text(
        "<html><body style='margin:0'>"
        + "".join(f"<div style='height:800px;background:{c}'></div>" for c in ("rgb(255,0,0)", "rgb(0,255,0)", "rgb(0,0,255)"))
        + "</body></html>"
    )
    return site


def test_screenshot_pixels_reach_the_model(fake_llm: FakeLLM, home: Path, site: Path) -> None:
    fake_llm.script(
        Reply(tool_calls=[ToolCall("screenshot", {"target": "box.html"})]),
        Reply(content="I see a green box."),
    )
    proc = run_cli(["-p", "look at box.html"], home=home, cwd=site, base_url=fake_llm.base_url, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "screenshot" in fake_llm.chat_requests[0].tool_names()
    shots = images_in(fake_llm.chat_requests[1])
    assert len(shots) == 1
    _, image = shots[0]
    scale = image.width / 1280  # the image may be downscaled to the token budget
    assert is_colour(image.getpixel((int(200 * scale), int(175 * scale))), (0, 160, 0))
    assert is_colour(image.getpixel((int(50 * scale), int(50 * scale))), (255, 255, 255))
    # the request carried pixels, never a file path the model cannot open
    assert "base64" in fake_llm.chat_requests[1].raw.decode()


def test_scroll_frames_show_each_section(fake_llm: FakeLLM, home: Path, site: Path) -> None:
    fake_llm.script(
        Reply(tool_calls=[ToolCall("screenshot", {"target": "tall.html", "scroll_frames": 3})]),
        Reply(content="three sections"),
    )
    proc = run_cli(["-p", "scroll it"], home=home, cwd=site, base_url=fake_llm.base_url, timeout=120)
    assert proc.returncode == 0, proc.stderr
    frames = images_in(fake_llm.chat_requests[1])
    assert len(frames) == 3
    centres = [image.getpixel((image.width // 2, image.height // 2)) for _, image in frames]
    for centre, colour in zip(centres, [(255, 0, 0), (0, 255, 0), (0, 0, 255)]):
        assert is_colour(centre, colour), centres
    assert [label.split(" at ")[0] for label, _ in frames] == ["frame 1/3", "frame 2/3", "frame 3/3"]


def test_big_photo_arrives_within_budget_with_its_aspect(fake_llm: FakeLLM, home: Path, tmp_path: Path) -> None:
    from PIL import Image as PILImage

    photo = tmp_path / "photo.jpg"
    PILImage.new("RGB", (4000, 3000), (200, 30, 30)).save(photo, quality=90)
    fake_llm.script(Reply(content="a red photo"))
    proc = run_cli(["-p", "what is this?", "--image", str(photo)], home=home, cwd=tmp_path, base_url=fake_llm.base_url)
    assert proc.returncode == 0, proc.stderr
    [(_, image)] = images_in(fake_llm.chat_requests[0])
    tokens = -(-image.width // 28) * -(-image.height // 28)
    assert tokens <= 4096
    assert abs(image.width / image.height - 4 / 3) < 0.02
    assert fake_llm.chat_requests[0].messages[-1]["content"][-1] == {"type": "text", "text": "what is this?"}


def write_video(path: Path, seconds: float = 6.0, fps: int = 10, change_at: float = 3.3) -> None:
    import cv2
    import numpy as np

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (320, 240))
    for i in range(int(seconds * fps)):
        frame = np.zeros((240, 320, 3), dtype=np.uint8)
        frame[:, :] = (0, 0, 255) if i / fps < change_at else (255, 0, 0)  # BGR: red, then blue
        writer.write(frame)
    writer.release()


def test_video_arrives_as_timestamped_frames_including_the_scene_change(fake_llm: FakeLLM, home: Path, tmp_path: Path) -> None:
    video = tmp_path / "clip.mp4"
    write_video(video)
    fake_llm.script(Reply(content="red then blue"))
    proc = run_cli(["-p", "describe the video", "--video", str(video)], home=home, cwd=tmp_path, base_url=fake_llm.base_url)
    assert proc.returncode == 0, proc.stderr
    frames = images_in(fake_llm.chat_requests[0])
    assert 2 <= len(frames) <= 32
    times = [float(label.rsplit("t=", 1)[1].rstrip("s")) for label, _ in frames]
    assert times == sorted(times)
    colours = [image.getpixel((160, 120)) for _, image in frames]
    first_blue = next(t for t, c in zip(times, colours) if is_colour(c, (0, 0, 255)))
    assert 3.2 <= first_blue <= 3.5  # the frame where the scene changes, not the next regular sample
    assert all(is_colour(c, (255, 0, 0)) for t, c in zip(times, colours) if t < 3.2)


def test_video_upload_route_sends_the_file_and_a_video_url(fake_llm: FakeLLM, tmp_path: Path) -> None:
    home = tmp_path / "kimihome"
    write_home_config(home, 'video_input = "upload"\n')
    video = tmp_path / "clip.mp4"
    write_video(video, seconds=1.0)
    fake_llm.script(Reply(content="ok"))
    proc = run_cli(["-p", "what happens?", "--video", str(video)], home=home, cwd=tmp_path, base_url=fake_llm.base_url)
    assert proc.returncode == 0, proc.stderr
    [uploaded] = fake_llm.files.values()
    assert uploaded.purpose == "video" and uploaded.data == video.read_bytes()
    content = fake_llm.chat_requests[0].messages[-1]["content"]
    assert content[0]["type"] == "video_url" and uploaded.id in json.dumps(content[0])


def test_media_for_a_model_without_vision_is_refused_clearly(fake_llm: FakeLLM, home: Path, tmp_path: Path) -> None:
    from PIL import Image as PILImage

    photo = tmp_path / "p.png"
    PILImage.new("RGB", (10, 10)).save(photo)
    proc = run_cli(["-p", "hi", "--image", str(photo), "-m", "kimi-k2-turbo-preview"], home=home, cwd=tmp_path, base_url=fake_llm.base_url)
    assert proc.returncode == 2
    assert "does not accept images" in proc.stderr and "Traceback" not in proc.stderr
    assert fake_llm.requests == []


def test_unreadable_image_is_one_line_and_exit_2(fake_llm: FakeLLM, home: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    proc = run_cli(["-p", "hi", "--image", str(bad)], home=home, cwd=tmp_path, base_url=fake_llm.base_url)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "bad.png" in proc.stderr


# --- The visual loop: interact, compare with a reference, facts ---------------------------------------

REPORT_CSS = """
body { margin: 0; font: 18px sans-serif; background: #fff }
main { padding: 40px 80px }
h1 { font-size: 48px; margin: 0 0 24px; color: rgb(34, 34, 34) }
p { width: 600px; line-height: 1.5; color: #444 }
button { MISPLACED margin-top: 24px; padding: 16px 32px; font-size: 20px; border: 0; border-radius: 8px;
         background: rgb(30, 90, 220); color: #fff }
"""
REPORT_BODY = """<main><h1>Quarterly report</h1>
<p>Revenue grew in every region this quarter. The details are below, with the numbers per team.</p>
<button>Download</button></main>"""
MISPLACED = "position: relative; top: -150px; left: 300px;"


def report_page(css: str) -> str:
    return f"<!doctype html><html><head><style>{css}</style></head><body>{REPORT_BODY}</body></html>"


@pytest.fixture
def overlap_site(tmp_path: Path) -> Path:
    """overlap.html: the button sits on the heading; design.png: the same page laid out correctly."""
    import asyncio

    from kimicode.vision.browser import Browser

    site = tmp_path / "site"
    site.mkdir()
    (site / "correct.html").write_text(report_page(REPORT_CSS.replace("MISPLACED ", "")))
    (site / "overlap.html").write_text(report_page(REPORT_CSS.replace("MISPLACED", MISPLACED)))

    async def render() -> bytes:
        browser = Browser()
        try:
            [frame] = await browser.screenshot(str(site / "correct.html"))
            return bytes(frame)
        finally:
            await browser.close()

    (site / "design.png").write_bytes(asyncio.run(render()))
    (site / "correct.html").unlink()  # the model only has the design
    return site


def tool_text(request: RecordedRequest) -> str:
    return str(request.tool_results()[-1]["content"])


def similarity_in(text: str) -> float:
    import re

    match = re.search(r"^similarity: ([01]\.\d\d)\b", text, re.MULTILINE)
    assert match, text
    return float(match.group(1))


def bbox_of(image: object, rgb: tuple[int, int, int], tolerance: int = 30) -> tuple[int, int, int, int]:
    import numpy as np

    pixels = np.asarray(image).astype(int)
    ys, xs = np.nonzero(np.all(np.abs(pixels - rgb) <= tolerance, axis=2))
    assert len(xs), f"no pixels of colour {rgb}"
    return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())


def red_box_encloses(diff: object, box: tuple[int, int, int, int], margin: int = 30) -> bool:
    """The diff image has a red outline on all four sides of ``box`` (within ``margin`` px)."""
    import numpy as np

    pixels = np.asarray(diff).astype(int)
    red = (pixels[..., 0] > 200) & (pixels[..., 1] < 60) & (pixels[..., 2] < 60)
    x0, y0, x1, y1 = box
    h, w = red.shape
    sides = [
        red[max(0, y0 - margin) : y0 + 1, x0 : x1 + 1].any(axis=0).mean(),  # top edge, across the width
        red[y1 : min(h, y1 + margin), x0 : x1 + 1].any(axis=0).mean(),  # bottom edge
        red[y0 : y1 + 1, max(0, x0 - margin) : x0 + 1].any(axis=1).mean(),  # left edge, down the height
        red[y0 : y1 + 1, x1 : min(w, x1 + margin)].any(axis=1).mean(),  # right edge
    ]
    return all(side > 0.8 for side in sides)


def test_compare_loop_marks_the_overlap_then_passes_after_the_fix(fake_llm: FakeLLM, home: Path, overlap_site: Path) -> None:
    shot = {"target": "overlap.html", "reference": "design.png"}
    fix = {"path": "overlap.html", "old_str": MISPLACED, "new_str": ""}
    fake_llm.script(
        Reply(tool_calls=[ToolCall("screenshot", shot)]),
        Reply(tool_calls=[ToolCall("strreplace", fix)]),
        Reply(tool_calls=[ToolCall("screenshot", shot)]),
        Reply(content="The button is back under the paragraph; the page matches the design."),
    )
    proc = run_cli(["-p", "-y", "make overlap.html match design.png"], home=home, cwd=overlap_site, base_url=fake_llm.base_url, timeout=180)
    assert proc.returncode == 0, proc.stderr

    after_first = fake_llm.chat_requests[1]
    before = similarity_in(tool_text(after_first))
    assert before < SIMILARITY_TARGET
    pictures = dict(images_in(after_first))
    capture = pictures["overlap.html at 1280x800"]
    [diff] = [image for label, image in pictures.items() if label.startswith("diff vs design.png")]
    assert any(label.startswith("reference design.png") for label in pictures)
    # The page really is broken: the button (blue) sits on the heading (dark text).
    button = bbox_of(capture, (30, 90, 220))
    heading = bbox_of(capture, (34, 34, 34), tolerance=10)
    assert button[1] < heading[3] and button[0] < heading[2], (button, heading)
    # ... and the diff image boxes exactly that place, at its own scale.
    scale = diff.width / capture.width
    assert red_box_encloses(diff, tuple(round(v * scale) for v in button)), button  # type: ignore[arg-type]

    after_fix = fake_llm.chat_requests[3]
    text = tool_text(after_fix)
    assert similarity_in(text) >= SIMILARITY_TARGET > before
    assert "no diff image sent" in text
    new_labels = [label for label, _ in images_in(after_fix)][len(images_in(after_first)) :]
    assert new_labels == ["overlap.html at 1280x800"]  # the fixed capture alone: no diff, no reference


MENU_PAGE = """<!doctype html><html><head><style>
body { margin: 0; font: 16px sans-serif }
nav { height: 60px; background: rgb(20, 20, 40); display: flex; align-items: center; padding: 0 20px }
#menu { display: none; position: absolute; top: 60px; left: 20px; width: 240px; height: 200px;
        background: rgb(250, 200, 0) }
#menu.open { display: block }
</style></head><body>
<nav><button onclick="document.getElementById('menu').classList.toggle('open')">Menu</button></nav>
<div id="menu"><a href="#">Pricing</a></div>
<script>console.error("analytics failed to start: no key")</script>
</body></html>"""

WIDE_PAGE = """<!doctype html><html><head><meta name="viewport" content="width=device-width, initial-scale=1">
<style>body { margin: 0 } .promo { width: 720px; height: 100px; background: rgb(0, 150, 90) }</style></head>
<body><div class="promo"></div><p>Welcome</p></body></html>"""


def test_menu_click_phone_overflow_and_console_error_reach_the_model(fake_llm: FakeLLM, home: Path, tmp_path: Path) -> None:
    (tmp_path / "menu.html").write_text(MENU_PAGE)
    (tmp_path / "wide.html").write_text(WIDE_PAGE)
    fake_llm.script(
        Reply(tool_calls=[ToolCall("screenshot", {"target": "menu.html"})]),
        Reply(tool_calls=[ToolCall("screenshot", {"target": "menu.html", "actions": [{"click": "Menu"}]})]),
        Reply(tool_calls=[ToolCall("screenshot", {"target": "wide.html", "device": "phone"})]),
        Reply(content="The menu opens; the promo overflows on phones."),
    )
    proc = run_cli(["-p", "check the menu and the phone layout"], home=home, cwd=tmp_path, base_url=fake_llm.base_url, timeout=180)
    assert proc.returncode == 0, proc.stderr

    closed_text = tool_text(fake_llm.chat_requests[1])
    assert "console error: analytics failed to start: no key" in closed_text
    [(_, closed)] = images_in(fake_llm.chat_requests[1])
    assert is_colour(closed.getpixel((140, 160)), (255, 255, 255))  # menu shut before the click

    [_, (label, opened)] = images_in(fake_llm.chat_requests[2])
    assert label == "menu.html at 1280x800"
    assert is_colour(opened.getpixel((140, 160)), (250, 200, 0))  # captured open

    phone_text = tool_text(fake_llm.chat_requests[3])
    assert "device phone: 390x844 at 3x, touch" in phone_text
    assert "horizontal overflow: the page is 720px wide in a 390px viewport" in phone_text
    assert "div.promo at x=0 y=0 is 720px wide" in phone_text
    [*_, (_, phone)] = images_in(fake_llm.chat_requests[3])
    assert abs(phone.width / phone.height - 390 / 844) < 0.01
