"""Images and video the user attaches in the REPL: /image, /video, @file.png mentions, a pasted image path.

Everything is encoded when attached (so a bad file is reported at once, in one line) and sent with the
next message. What the user sees is a short description (path, pixel size, bytes), never base64.
"""

from __future__ import annotations

import asyncio
import re
import urllib.parse
from pathlib import Path
from typing import Any

from kimicode.config import Config
from kimicode.llm.messages import Image
from kimicode.llm.profiles import ModelProfile, profile_for
from kimicode.session.listing import ATTACHMENT_OPENING
from kimicode.wording import plural

__all__ = [
    "IMAGE_SUFFIXES",
    "MAX_ATTACH_BYTES",
    "MediaError",
    "attach_image_bytes",
    "attach_image_files",
    "attach_video_file",
    "expand_mentions",
    "file_block",
    "image_mentions",
    "is_image_path",
    "pasted_image_path",
]

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".tif", ".tiff"})
MENTION = re.compile(r"(?<!\S)@(\S+)")
# A file attached to a message (@path, an editor's mention) is sent whole up to this size.
MAX_ATTACH_BYTES = 256 * 1024


class MediaError(Exception):
    """Attached media that cannot be sent; the message is one line for the user."""


def no_vision(config: Config) -> str:
    """Why the run's model takes no images, and what to do."""
    from kimicode.llm.endpoint import ENDPOINTS_FILE

    if profile_for(config.model).vision:  # it would, but this endpoint refused its images (llm/endpoint.py)
        return (
            f"model {config.model} at {config.base_url} refused images before (kept in "
            f"{config.home / ENDPOINTS_FILE}); once the server takes them (llama.cpp: --mmproj), "
            "`kimicode verify-endpoint` checks again and forgets the refusal"
        )
    return f"model {config.model} does not accept images; use a vision model such as kimi-k2.5"


def load_media(
    config: Config, images: list[Path], video: Path | None, profile: ModelProfile
) -> tuple[list[Any], list[dict[str, Any]]]:
    """Images (and sampled video frames) for the first message, plus other parts (an uploaded video),
    within the budget of ``profile`` (the run's model, as the run was assembled with it)."""
    if not images and video is None:
        return [], []
    from kimicode.vision.errors import VisionError
    from kimicode.vision.images import encode_image_file
    if not profile.vision:
        raise MediaError(no_vision(config))
    try:
        media = [encode_image_file(path, profile.image_max_tokens) for path in images]
        parts: list[dict[str, Any]] = []
        if video is not None and config.video_input == "upload":
            from kimicode.vision.video import upload_video_native, video_url_part

            if not profile.video:
                raise MediaError(f"model {config.model} does not accept video uploads; set video_input = \"frames\"")
            file_id = asyncio.run(upload_video_native(config.base_url, config.api_key, video))
            parts.append(video_url_part(file_id))
        elif video is not None:
            from kimicode.vision.video import sample_video

            media.extend(
                sample_video(video, max_frames=config.video_max_frames, token_budget=config.video_token_budget)
            )
    except VisionError as exc:
        raise MediaError(str(exc)) from exc
    return media, parts



def is_secret(path: Path) -> bool:
    """A secret path (the policy's one list, kimicode/security/paths.py): never attached for the model."""
    from kimicode.config import kimicode_home
    from kimicode.security.paths import secret_reason

    return bool(secret_reason(path, kimicode_home()))


def is_image_path(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def resolve_user_path(text: str, workspace: Path) -> Path:
    """A path as typed or pasted: quotes, ``file://`` URLs, ``\\ ``-escaped spaces and ``~`` understood."""
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        text = text[1:-1]
    if text.startswith("file://"):
        text = urllib.parse.unquote(urllib.parse.urlparse(text).path)
    text = re.sub(r"\\(.)", r"\1", text)  # terminals escape spaces and parentheses in dropped paths
    path = Path(text).expanduser()
    return path if path.is_absolute() else workspace / path


def pasted_image_path(text: str, workspace: Path) -> Path | None:
    """The image file a message consists of (a dropped or pasted path), else None."""
    if "\n" in text.strip() or not text.strip():
        return None
    path = resolve_user_path(text, workspace)
    try:
        return path if is_image_path(path) and path.is_file() and not is_secret(path) else None
    except OSError:  # a message too long to be a file name
        return None


def image_mentions(text: str, workspace: Path) -> list[Path]:
    """Image files named by ``@path`` mentions, in order, each once."""
    found: list[Path] = []
    for match in MENTION.finditer(text):
        path = workspace / match.group(1).rstrip(".,;:!?)")
        if is_image_path(path) and path.is_file() and path not in found and not is_secret(path):
            found.append(path)
    return found


def attach_image_files(config: Config, paths: list[Path], profile: ModelProfile) -> list[Image]:
    """Encoded images within the model's budget; MediaError (one line) for a missing or unreadable file."""
    images, _ = load_media(config, paths, None, profile)
    return images


def attach_image_bytes(config: Config, data: bytes, profile: ModelProfile, label: str = "") -> Image:
    """Image bytes (an editor's pasted picture) encoded within the model's budget; MediaError when they
    are no image the model can take."""
    from kimicode.vision.errors import VisionError
    from kimicode.vision.images import encode_image_bytes

    if not profile.vision:
        raise MediaError(no_vision(config))
    try:
        return encode_image_bytes(data, profile.image_max_tokens, label)
    except VisionError as exc:
        raise MediaError(str(exc)) from exc


def file_block(name: str, content: str) -> str:
    """A file's text as the model sees an attached file (after the typed text, which titles a session)."""
    return f'{ATTACHMENT_OPENING}{name}">\n{content.rstrip()}\n</file>'


def expand_mentions(text: str, workspace: Path) -> tuple[str, list[str], list[str]]:
    """``text`` with the content of each ``@path`` naming a readable text file appended, the names
    attached, and one line for each named file left out that the user should hear about (too big).

    Images are left out (they go as images: image_mentions); so are secrets (never sent) and names that
    are no file (``@someone``)."""
    blocks: list[str] = []
    attached: list[str] = []
    problems: list[str] = []
    for match in MENTION.finditer(text):
        name = match.group(1).rstrip(".,;:!?)")
        path = (workspace / name).resolve()
        try:
            if name in attached or not path.is_file() or is_image_path(path) or is_secret(workspace / name):
                continue
            size = path.stat().st_size
        except OSError:  # a name too long to be a path
            continue
        if size > MAX_ATTACH_BYTES:
            problems.append(
                f"@{name} not attached: {_size(path)} is over the {MAX_ATTACH_BYTES // 1024} KB limit for an "
                "attached file (ask for the part that matters, or let the agent view it)"
            )
            continue
        try:
            content = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        attached.append(name)
        blocks.append(file_block(name, content))
    if not blocks:
        return text, [], problems
    return text + "\n\n" + "\n\n".join(blocks), attached, problems


def attach_video_file(
    config: Config, path: Path, profile: ModelProfile
) -> tuple[list[Image], list[dict[str, Any]], str]:
    """Sampled frames (or an uploaded video part) and a line saying what was attached."""
    frames, parts = load_media(config, [], path, profile)
    size = _size(path)
    if parts:
        return frames, parts, f"video {path} ({size}), uploaded"
    if not frames:
        raise MediaError(f"no frames could be read from {path}; is it a video file?")
    span = f"{frames[0].label} … {frames[-1].label}" if frames[0].label else ""
    sent_kb = sum(len(frame.data) for frame in frames) // 1024
    return frames, parts, f"video {path} ({size}): {plural(len(frames), 'frame')} {span} ({sent_kb} KB)".replace("  ", " ")


def _size(path: Path) -> str:
    try:
        size = float(path.stat().st_size)
    except OSError:
        return "?"
    if size < 1024:
        return f"{int(size)} bytes"
    for unit in ("KB", "MB", "GB"):
        size /= 1024
        if size < 1024 or unit == "GB":
            break
    return f"{size:.1f} {unit}"
