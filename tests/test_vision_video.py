"""Video frames: timestamped, sorted, within budget, and each scene change is caught at its own frame.

Clips are made here: OpenCV's writer (MPEG-4 with a keyframe every 12 frames, VP8), and PyAV's encoders
for what people record: H.264 with B-frames and keyframes far apart, VP8 with a single keyframe. The long
clips carry their frame number in a Gray-coded band across the top, so a test reads which frame it got.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from fractions import Fraction
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
import pytest

from kimicode.vision.errors import VisionError
from kimicode.vision.images import estimate_image_tokens
from kimicode.vision.video import sample_video, upload_video_native, video_url_part

REPO = Path(__file__).resolve().parents[1]
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


def test_without_pyav_a_long_video_pins_each_change_to_its_frame(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The OpenCV fallback: past its dense limit it compares grid points, and a change between two of them
    # is located by decoding only that stretch. The limits are lowered so a short clip takes that path.
    import kimicode.vision.video_cv as video_cv

    _without_pyav(monkeypatch)
    monkeypatch.setattr(video_cv, "_MAX_DENSE_FRAMES", 10)
    monkeypatch.setattr(video_cv, "_MAX_SCAN_POINTS", 6)
    green = (0, 200, 0)
    clip = _clip(tmp_path / "long.mp4", "mp4v", [RED_BGR] * 23 + [BLUE_BGR] * 18 + [green] * 19)
    frames = sample_video(clip, max_fps=0.5)
    times = [_time(frame.label) for frame in frames]
    assert 2.3 in times and 4.1 in times, times
    assert _is(_centre_bgr(frames[times.index(2.3)].data), BLUE_BGR)
    assert _is(_centre_bgr(frames[times.index(4.1)].data), green)


# --- Which decoder does the work -------------------------------------------------------------------------


def _without_pyav(monkeypatch: pytest.MonkeyPatch) -> None:
    """As on a machine without PyAV: ``import av`` fails, OpenCV does the scan."""
    monkeypatch.setitem(sys.modules, "av", None)


def _pyav_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """The OpenCV fallback refuses: what the test sees is the PyAV scan's doing."""
    import kimicode.vision.video_cv as video_cv

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the OpenCV fallback was used")

    monkeypatch.setattr(video_cv, "scan", refuse)


@pytest.fixture(params=["pyav", "opencv"])
def decoder(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "pyav":
        _pyav_only(monkeypatch)
    else:
        _without_pyav(monkeypatch)
    return str(request.param)


@pytest.mark.parametrize(("fourcc", "suffix"), [("mp4v", "mp4"), ("VP80", "webm")])
def test_short_clip_cut_off_the_grid_is_found_at_its_frame_by_either_decoder(
    tmp_path: Path, decoder: str, fourcc: str, suffix: str
) -> None:
    clip = _clip(tmp_path / f"cut.{suffix}", fourcc, [RED_BGR] * 34 + [BLUE_BGR] * 26)
    frames = sample_video(clip)
    times = [_time(frame.label) for frame in frames]
    assert 3.4 in times, times
    assert _is(_centre_bgr(frames[times.index(3.4)].data), BLUE_BGR)
    assert all(_is(_centre_bgr(f.data), RED_BGR) for f, t in zip(frames, times) if t < 3.4)


def test_a_flash_is_not_taken_for_a_cut(tmp_path: Path, decoder: str) -> None:
    # Red with one white frame at 2.0 s, then a real cut to blue at 4.1 s.
    white = (255, 255, 255)
    clip = _clip(tmp_path / "flash.mp4", "mp4v", [RED_BGR] * 20 + [white] + [RED_BGR] * 20 + [BLUE_BGR] * 19)
    few = sample_video(clip, max_frames=4)
    times = [_time(frame.label) for frame in few]
    # With four frames to give, the cut takes a sample's place; the flash takes none.
    assert 4.1 in times and 2.0 not in times, times
    assert not any(_is(_centre_bgr(frame.data), white) for frame in few)
    # With room to spare the flash is shown, but the frame it returns on is no scene change.
    many = sample_video(clip, max_frames=32)
    times = [_time(frame.label) for frame in many]
    assert 2.0 in times and 4.1 in times and 2.1 not in times, times


def test_version_imports_neither_pyav_nor_opencv() -> None:
    probe = (
        "import sys, runpy\n"
        "sys.argv = ['kimicode', '--version']\n"
        "try:\n    runpy.run_module('kimicode', run_name='__main__')\nexcept SystemExit:\n    pass\n"
        "print('LOADED=' + ','.join(m for m in ('av', 'cv2', 'numpy') if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "LOADED=\n" in proc.stdout, proc.stdout


# --- Long clips: motion in every frame, cuts anywhere ---------------------------------------------------

LONG_FPS = 30
WIDTH, HEIGHT = 192, 108  # small, so 45 s encode and decode in about a second
BAND = 16  # rows of the frame-number band at the top
BITS = WIDTH // BAND


def _texture() -> np.ndarray:
    rows, cols = np.mgrid[0:HEIGHT, 0:WIDTH]
    return np.dstack([cols % 256, (rows * 2) % 256, (rows + cols) % 256]).astype(np.uint8)


_LOOKS = [
    lambda f: f,
    lambda f: 255 - f,  # everything inverted
    lambda f: f[:, :, ::-1],  # red and blue swapped: mostly a change of colour, little of brightness
    lambda f: (f // 2 + 100).astype(np.uint8),  # washed out
    lambda f: np.dstack([f[:, :, 1], f[:, :, 2], f[:, :, 0]]),
]


def _long_frame(index: int, look: int, texture: np.ndarray) -> np.ndarray:
    """Frame ``index`` of scene ``look``: a scrolling texture, a fast disc, and the frame number on top."""
    frame = np.ascontiguousarray(_LOOKS[look](np.roll(texture, index * 4, axis=1)))
    cv2.circle(frame, ((index * 6) % WIDTH, 62), 14, (255, 255, 255), -1)
    code = index ^ (index >> 1)  # Gray code: one block changes from a frame to the next
    for bit in range(BITS):
        frame[:BAND, bit * BAND : (bit + 1) * BAND] = 255 if (code >> (BITS - 1 - bit)) & 1 else 0
    return frame


def _frame_number(data: bytes) -> int:
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
    height, width = pixels.shape
    row, block = int(BAND / 2 * height / HEIGHT), width / BITS
    code = 0
    for bit in range(BITS):
        code = code << 1 | int(pixels[row, int((bit + 0.5) * block)] > 128)
    number, shift = code, code >> 1
    while shift:
        number, shift = number ^ shift, shift >> 1
    return number


def _long_clip(path: Path, seconds: int, cuts: dict[int, int], flashes: dict[int, int], writer: str) -> Path:
    """``cuts``: first frame of each new look; ``flashes``: first frame of each flash and its length."""
    texture = _texture()
    looks, look = [], 0
    for index in range(seconds * LONG_FPS):
        look = cuts.get(index, look)
        looks.append(look)
    for start, length in flashes.items():
        for index in range(start, start + length):
            looks[index] = 1 if looks[index] != 1 else 0
    frames = (_long_frame(index, look, texture) for index, look in enumerate(looks))
    if writer == "opencv-mp4v":
        out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), LONG_FPS, (WIDTH, HEIGHT))
        assert out.isOpened()
        for frame in frames:
            out.write(frame)
        out.release()
        return path
    import av
    container = av.open(str(path), "w")
    if writer == "pyav-h264":
        # B-frames, keyframes 20 s apart and none at the cuts: what a cut inside a GOP looks like.
        stream = container.add_stream("libx264", rate=LONG_FPS)
        stream.options = {"x264-params": "scenecut=0:keyint=600:min-keyint=600:bframes=3"}
    else:  # "pyav-vp8": one keyframe for the whole clip, as browsers record
        stream = container.add_stream("libvpx", rate=LONG_FPS)
        stream.options = {"g": "99999", "keyint_min": "99999", "deadline": "realtime", "cpu-used": "16", "b": "800k"}
    stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    for frame in frames:
        for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="bgr24")):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)
    container.close()
    return path


def _keyframes(path: Path) -> list[float]:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return sorted(float(p.pts * stream.time_base) for p in container.demux(stream) if p.size and p.is_keyframe)


def _found(frames: list, cut: int) -> list[int]:
    """Frame numbers shown within a frame of ``cut`` (reading the band)."""
    return [n for n in (_frame_number(f.data) for f in frames) if abs(n - cut) <= 1]


CUT = 737  # 24.57 s: on no sample, no grid and no keyframe of any of the clips
MOTION_CUTS = {301: 1, 604: 2, 904: 3, 1213: 4}  # 10.0 s, 20.1 s, 30.1 s, 40.4 s


@pytest.mark.parametrize("writer", ["opencv-mp4v", "pyav-h264", "pyav-vp8"])
def test_a_long_clip_cut_off_the_grid_is_found_within_a_frame(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, writer: str
) -> None:
    _pyav_only(monkeypatch)
    suffix = "webm" if writer == "pyav-vp8" else "mp4"
    clip = _long_clip(tmp_path / f"long.{suffix}", 45, {CUT: 1}, {}, writer)
    keyframes = _keyframes(clip)
    assert all(abs(t * LONG_FPS - CUT) > 2 for t in keyframes), keyframes  # the cut is inside a GOP
    if writer == "pyav-vp8":
        assert keyframes == [0.0]  # long-GOP: nothing but the first frame is a keyframe

    frames = sample_video(clip)
    assert len(frames) <= 32
    numbers = [_frame_number(f.data) for f in frames]
    assert numbers == sorted(numbers) and numbers[0] == 0 and numbers[-1] > 1300, numbers
    assert _found(frames, CUT), numbers
    shown = frames[numbers.index(_found(frames, CUT)[0])]
    assert _time(shown.label) == pytest.approx(CUT / LONG_FPS, abs=0.1)
    # Every frame shown is what the clip has at that moment: inverted from the cut on, not before.
    for frame, number in zip(frames, numbers):
        pixels = cv2.imdecode(np.frombuffer(frame.data, np.uint8), cv2.IMREAD_COLOR)
        expected = _long_frame(number, 1 if number >= CUT else 0, _texture())
        assert np.abs(pixels[BAND + 4 :].astype(int) - expected[BAND + 4 :]).mean() < 25, number


@pytest.mark.parametrize("writer", ["opencv-mp4v", "pyav-h264"])
def test_every_cut_in_a_long_motion_heavy_clip_is_found_and_flashes_are_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, writer: str
) -> None:
    # The picture scrolls and a disc crosses it in every frame: over the 15 frames between two scan points
    # motion alone changes the picture as much as a cut. Two flashes (1 and 4 frames) come and go.
    _pyav_only(monkeypatch)
    flashes = {450: 1, 1030: 4}  # between uniform samples (every 1350 / 32 = 42.2 frames: 421, 464; 1012, 1054)
    clip = _long_clip(tmp_path / "motion.mp4", 45, MOTION_CUTS, flashes, writer)
    frames = sample_video(clip)
    numbers = [_frame_number(f.data) for f in frames]
    for cut in MOTION_CUTS:
        assert _found(frames, cut), (cut, numbers)
    for start, length in flashes.items():
        # Neither the flash nor the frame it returns on is taken for a change of scene.
        assert not any(start <= n <= start + length for n in numbers), (start, numbers)


def test_a_variable_frame_rate_recording_is_sampled_and_labelled_by_its_timestamps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As screen recorders write them: one frame a second while nothing moves (0-7 s), then 30 fps (8-10 s)
    # with a cut at 9.0 s. Counting frames would put the cut at frame 39 of 69, "t=5.7s" at 6.9 fps.
    import av
    _pyav_only(monkeypatch)
    path = tmp_path / "vfr.mp4"
    stamps = [second * 1000 for second in range(8)] + [8000 + round(i * 1000 / 30) for i in range(60)]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        for stamp in stamps:
            pixels = np.zeros((240, 320, 3), np.uint8)
            pixels[:] = BLUE_BGR if stamp >= 9000 else RED_BGR
            frame = av.VideoFrame.from_ndarray(pixels, format="bgr24")
            frame.pts, frame.time_base = stamp, Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)

    frames = sample_video(path, max_fps=1.0)
    times = [_time(frame.label) for frame in frames]
    assert times == [float(t) for t in range(11)] or times == [float(t) for t in range(10)], times
    for frame, t in zip(frames, times):
        assert _is(_centre_bgr(frame.data), BLUE_BGR if t >= 9.0 else RED_BGR), t


@pytest.mark.parametrize("writer", ["opencv-mp4v", "pyav-h264"])
def test_skipping_decode_work_changes_nothing_the_model_sees(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, writer: str
) -> None:
    # The scan skips frames (keyframes as anchors, unreferenced B-frames) and later decodes stretches again
    # after a seek. What it sends must be byte for byte what a decoder that decodes every frame gives.
    import kimicode.vision.video_layout as video_layout

    _pyav_only(monkeypatch)
    clip = _long_clip(tmp_path / "motion.mp4", 45, MOTION_CUTS, {450: 1, 1030: 4}, writer)
    skipping = sample_video(clip)
    monkeypatch.setattr(video_layout, "KEYFRAMES", video_layout.DECODE)
    monkeypatch.setattr(video_layout, "REFERENCES", video_layout.DECODE)
    everything = sample_video(clip)
    assert [f.label for f in skipping] == [f.label for f in everything]
    assert [f.data for f in skipping] == [f.data for f in everything]


@pytest.mark.parametrize("writer", ["opencv-mp4v", "pyav-h264"])
def test_decoding_parts_of_a_clip_side_by_side_changes_nothing_the_model_sees(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, writer: str
) -> None:
    # With two cores the clip's GOPs are dealt to two decoders of their own, in threads. Cuts fall on the
    # keyframes at 20 s and 40 s (H.264: the second decoder starts there), so the change at a part's first
    # frame is decided only once the part before it is decoded. What is sent must be byte for byte what one
    # decoder gives.
    import kimicode.vision.video_layout as video_layout

    _pyav_only(monkeypatch)
    cuts = {301: 1, 600: 2, 904: 3, 1200: 4}
    clip = _long_clip(tmp_path / "motion.mp4", 45, cuts, {450: 1, 1030: 4}, writer)
    decoders: list[int] = []
    split = video_layout.Layout.split

    def counted(self: object, levels: list, count: int) -> list:
        dealt = split(self, levels, count)  # type: ignore[arg-type]
        decoders.append(len(dealt))
        return dealt

    monkeypatch.setattr(video_layout.Layout, "split", counted)
    monkeypatch.setattr(video_layout, "cores", lambda: 2)
    side_by_side = sample_video(clip)
    assert decoders and decoders[0] == 2, decoders  # the forward pass ran on two decoders
    monkeypatch.setattr(video_layout, "cores", lambda: 1)
    one = sample_video(clip)
    assert decoders[-1] == 1
    assert [f.label for f in side_by_side] == [f.label for f in one]
    assert [f.data for f in side_by_side] == [f.data for f in one]
    numbers = [_frame_number(f.data) for f in side_by_side]
    for cut in cuts:
        assert _found(side_by_side, cut), (cut, numbers)


def test_a_damaged_recording_is_still_sampled_and_its_cuts_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Bytes garbled all through the middle of the clip (a bad download, a recorder that crashed): packets
    # the decoder refuses are dropped, as players drop them, and the rest is sampled as usual.
    import random

    _pyav_only(monkeypatch)
    clip = _long_clip(tmp_path / "damaged.mp4", 45, MOTION_CUTS, {}, "pyav-h264")
    data = bytearray(clip.read_bytes())  # the index (moov) is at the end: only frames are damaged
    noise = random.Random(5)
    for at in range(len(data) // 10, len(data) * 3 // 4, 3000):
        data[at : at + 30] = bytes(noise.randrange(256) for _ in range(30))
    clip.write_bytes(bytes(data))

    frames = sample_video(clip)
    times = [_time(frame.label) for frame in frames]
    assert len(frames) >= 30 and times == sorted(times) and times[-1] > 40, times
    assert _found(frames, 1213), [_frame_number(f.data) for f in frames]  # past the damage


def _screen_page(number: int, width: int = 320, height: int = 180) -> np.ndarray:
    """A page of a screen recording, twice the screen's height: a header of its own colour, lines of text."""
    page = np.full((height * 2, width, 3), 250, np.uint8)
    page[:16] = ((number * 70) % 256, 90, 160)
    for row in range(26, height * 2 - 8, 8):
        page[row : row + 3, 20 : 20 + 50 + (row * 37 + number * 101) % 230] = 60
    return page


def test_a_page_change_in_a_screen_recording_is_found_though_most_of_the_screen_stays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A browser recording: most of the screen is white on both sides of a page change, so the picture
    # changes less than at a film cut; scrolling and the cursor keep something moving all the time.
    # Pages change at 7.1 s and 15.3 s (frames 213 and 459), each page is scrolled, H.264 with B-frames.
    import av
    _pyav_only(monkeypatch)
    changes = (213, 459)
    path = tmp_path / "screen.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 320, 180, "yuv420p"
        stream.options = {"x264-params": "scenecut=0:keyint=900:bframes=3"}
        pages = [_screen_page(number) for number in range(3)]
        for index in range(24 * 30):
            page = sum(index >= change for change in changes)
            start = (0, *changes)[page]
            top = min(max(0, index - start - 60) * 2, 180)  # still for 2 s, then scrolled 2 px a frame
            frame = pages[page][top : top + 180].copy()
            x, y = (index * 3) % 300, 60 + (index % 40)
            frame[y : y + 8, x : x + 5] = 0  # the cursor
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)

    frames = sample_video(path)
    times = [_time(frame.label) for frame in frames]
    assert 7.1 in times and 15.3 in times, times
    for change, t in zip(changes, (7.1, 15.3)):
        header = cv2.imdecode(np.frombuffer(frames[times.index(t)].data, np.uint8), cv2.IMREAD_COLOR)[4, 160]
        page = _screen_page(changes.index(change) + 1)[4, 160][::-1]  # (RGB there, BGR here)
        assert np.abs(header.astype(int) - page).max() < 40, (t, header, page)
    # Nothing else (scrolling, the cursor) is taken for a change: the rest are uniform samples.
    uniform = {_time(frame.label) for frame in sample_video(path, scene_threshold=1000.0)}
    assert set(times) - {7.1, 15.3} <= uniform, sorted(set(times) - uniform)
