"""End-to-end seeing: screenshots and attached media reach the model as real pixels."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest

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
    assert "screenshot" in fake_llm.requests[0].tool_names()
    shots = images_in(fake_llm.requests[1])
    assert len(shots) == 1
    _, image = shots[0]
    scale = image.width / 1280  # the image may be downscaled to the token budget
    assert is_colour(image.getpixel((int(200 * scale), int(175 * scale))), (0, 160, 0))
    assert is_colour(image.getpixel((int(50 * scale), int(50 * scale))), (255, 255, 255))
    # the request carried pixels, never a file path the model cannot open
    assert "base64" in fake_llm.requests[1].raw.decode()


def test_scroll_frames_show_each_section(fake_llm: FakeLLM, home: Path, site: Path) -> None:
    fake_llm.script(
        Reply(tool_calls=[ToolCall("screenshot", {"target": "tall.html", "scroll_frames": 3})]),
        Reply(content="three sections"),
    )
    proc = run_cli(["-p", "scroll it"], home=home, cwd=site, base_url=fake_llm.base_url, timeout=120)
    assert proc.returncode == 0, proc.stderr
    frames = images_in(fake_llm.requests[1])
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
    [(_, image)] = images_in(fake_llm.requests[0])
    tokens = -(-image.width // 28) * -(-image.height // 28)
    assert tokens <= 4096
    assert abs(image.width / image.height - 4 / 3) < 0.02
    assert fake_llm.requests[0].messages[-1]["content"][-1] == {"type": "text", "text": "what is this?"}


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
    frames = images_in(fake_llm.requests[0])
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
