"""Video frames: timestamped, sorted, within budget, and the scene change is caught."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
import pytest

from kimicode.vision.errors import VisionError
from kimicode.vision.images import estimate_image_tokens
from kimicode.vision.video import sample_video, upload_video_native, video_url_part

RED_BGR = (0, 0, 255)
BLUE_BGR = (255, 0, 0)
FPS = 10
CHANGE_FRAME = 33  # t = 3.3 s: between two uniform samples (3.0 s and 3.5 s at 2 fps)


@pytest.fixture(scope="module")
def red_then_blue(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """6 s at 10 fps, 320x240: red until t=3.3 s, then blue."""
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (320, 240))
    assert writer.isOpened()
    for index in range(6 * FPS):
        frame = np.zeros((240, 320, 3), np.uint8)
        frame[:] = RED_BGR if index < CHANGE_FRAME else BLUE_BGR
        writer.write(frame)
    writer.release()
    return path


def _time(label: str) -> float:
    match = re.fullmatch(r"frame at t=(\d+\.\d)s", label)
    assert match, label
    return float(match.group(1))


def _centre_bgr(data: bytes) -> tuple[int, int, int]:
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    height, width = pixels.shape[:2]
    return tuple(int(v) for v in pixels[height // 2, width // 2])  # type: ignore[return-value]


def _is(colour: tuple[int, int, int], expected: tuple[int, int, int]) -> bool:
    return all(abs(a - b) <= 40 for a, b in zip(colour, expected))


def test_frames_are_timestamped_and_catch_the_scene_change(red_then_blue: Path) -> None:
    frames = sample_video(red_then_blue)

    times = [_time(frame.label) for frame in frames]
    assert times == sorted(times) and len(set(times)) == len(times)
    assert len(frames) <= 32
    assert all(frame.mime == "image/jpeg" for frame in frames)
    # Uniform samples at <= 2 fps cover the whole clip ...
    assert times[0] == 0.0 and times[-1] >= 5.0
    # ... and the first blue frame, which no uniform sample lands on, is there too.
    assert 3.3 in times
    for frame, t in zip(frames, times):
        expected = RED_BGR if t < 3.3 else BLUE_BGR
        assert _is(_centre_bgr(frame.data), expected), (t, _centre_bgr(frame.data))
    assert any(t < 3.3 for t in times) and any(t >= 3.3 for t in times)


def test_frame_cap_and_rate_are_respected(red_then_blue: Path) -> None:
    frames = sample_video(red_then_blue, max_frames=4, max_fps=2.0)
    assert len(frames) <= 4
    assert 3.3 in [_time(frame.label) for frame in frames]  # the scene change outranks a uniform sample
    one_fps = sample_video(red_then_blue, max_fps=1.0, scene_threshold=1000.0)
    assert [_time(frame.label) for frame in one_fps] == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]


def test_total_tokens_stay_within_budget(red_then_blue: Path) -> None:
    frames = sample_video(red_then_blue, token_budget=600)
    total = sum(estimate_image_tokens(frame.width, frame.height) for frame in frames)
    assert total <= 600
    assert all(abs(frame.width / frame.height - 320 / 240) < 0.05 for frame in frames)


def test_unreadable_missing_and_huge_files_are_clear_errors(tmp_path: Path, red_then_blue: Path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is not a video" * 100)
    with pytest.raises(VisionError, match="cannot read video .*junk.mp4"):
        sample_video(junk)
    with pytest.raises(VisionError, match="video not found"):
        sample_video(tmp_path / "missing.mp4")
    with pytest.raises(VisionError, match="video too large") as error:
        sample_video(red_then_blue, max_bytes=1000)
    assert "\n" not in str(error.value)


class _FilesApi(BaseHTTPRequestHandler):
    """A stand-in for POST /v1/files that records what it received."""

    received: list[dict[str, object]] = []
    status = 200

    def do_POST(self) -> None:  # noqa: N802 - http.server naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(
            {"path": self.path, "auth": self.headers["Authorization"], "type": self.headers["Content-Type"], "body": body}
        )
        payload = json.dumps({"id": "file-abc123", "object": "file"} if self.status == 200 else {"error": "bad"})
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload.encode())

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def files_api() -> Iterator[tuple[str, type[_FilesApi]]]:
    handler = type("Handler", (_FilesApi,), {"received": [], "status": 200})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1", handler
    server.shutdown()
    server.server_close()


def test_native_upload_sends_the_file_with_purpose_video(files_api: tuple[str, type[_FilesApi]], red_then_blue: Path) -> None:
    import asyncio

    base_url, handler = files_api
    file_id = asyncio.run(upload_video_native(base_url + "/", "sk-test", red_then_blue))

    assert file_id == "file-abc123"
    [request] = handler.received
    assert request["path"] == "/v1/files"
    assert request["auth"] == "Bearer sk-test"
    assert str(request["type"]).startswith("multipart/form-data")
    body = request["body"]
    assert isinstance(body, bytes)
    assert b'name="purpose"\r\n\r\nvideo' in body
    assert b'filename="clip.mp4"' in body
    assert red_then_blue.read_bytes() in body
    assert video_url_part(file_id) == {"type": "video_url", "video_url": {"url": "ms://file-abc123"}}


def test_native_upload_refusal_is_one_line(files_api: tuple[str, type[_FilesApi]], red_then_blue: Path) -> None:
    import asyncio

    base_url, handler = files_api
    handler.status = 401
    with pytest.raises(VisionError, match="API key is not valid"):
        asyncio.run(upload_video_native(base_url, "sk-wrong", red_then_blue))


def _clip(path: Path, fourcc: str, colours: list[tuple[int, int, int]], fps: int = FPS) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (320, 240))
    assert writer.isOpened()
    for colour in colours:
        frame = np.zeros((240, 320, 3), np.uint8)
        frame[:] = colour
        cv2.putText(frame, "scene", (40, 120), cv2.FONT_HERSHEY_SIMPLEX, 2, (255, 255, 255), 3)
        writer.write(frame)
    writer.release()
    return path


@pytest.mark.parametrize(("fourcc", "suffix"), [("mp4v", "mp4"), ("VP80", "webm")])
def test_a_cut_off_every_grid_is_found_at_its_frame(tmp_path: Path, fourcc: str, suffix: str) -> None:
    # 3.4 s: between the 2 fps samples (3.0 s, 3.5 s) and on no scan grid either; the frame shown for the
    # new scene must be the cut's own frame, not the next regular sample.
    clip = _clip(tmp_path / f"cut.{suffix}", fourcc, [RED_BGR] * 34 + [BLUE_BGR] * 26)
    frames = sample_video(clip)
    times = [_time(frame.label) for frame in frames]
    assert 3.4 in times, times
    cut = frames[times.index(3.4)]
    assert _is(_centre_bgr(cut.data), BLUE_BGR)
    assert all(_is(_centre_bgr(f.data), RED_BGR) for f, t in zip(frames, times) if t < 3.4)


def test_a_one_frame_flash_is_seen(tmp_path: Path) -> None:
    colours = [RED_BGR] * 47 + [BLUE_BGR] + [RED_BGR] * 12  # frame 47: t = 4.7 s
    frames = sample_video(_clip(tmp_path / "flash.mp4", "mp4v", colours))
    times = [_time(frame.label) for frame in frames]
    assert 4.7 in times and _is(_centre_bgr(frames[times.index(4.7)].data), BLUE_BGR)


def test_a_long_video_pins_each_change_to_its_frame(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Past the dense limit the scan compares grid points; a change between two of them is then located by
    # decoding only that stretch. The limits are lowered so a short clip takes that path.
    import kimicode.vision.video as video

    monkeypatch.setattr(video, "_MAX_DENSE_FRAMES", 10)
    monkeypatch.setattr(video, "_MAX_SCAN_POINTS", 6)
    green = (0, 200, 0)
    clip = _clip(tmp_path / "long.mp4", "mp4v", [RED_BGR] * 23 + [BLUE_BGR] * 18 + [green] * 19)
    frames = sample_video(clip, max_fps=0.5)
    times = [_time(frame.label) for frame in frames]
    assert 2.3 in times and 4.1 in times, times
    assert _is(_centre_bgr(frames[times.index(2.3)].data), BLUE_BGR)
    assert _is(_centre_bgr(frames[times.index(4.1)].data), green)
