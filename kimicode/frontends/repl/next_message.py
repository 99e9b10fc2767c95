"""What goes with the next message besides its words: images, a video's frames, a shell command's output,
and the text files it mentions as ``@path``.

Attachments gather here from ``--image``/``--video``, ``/image``, ``/video``, Ctrl-V, ``!cmd`` and the
message itself, and are taken (and cleared) together when the message is sent.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kimicode.frontends.common.media import (
    MediaError,
    attach_image_files,
    attach_video_file,
    expand_mentions,
    image_mentions,
    pasted_image_path,
)

if TYPE_CHECKING:
    from kimicode.config import Config
    from kimicode.frontends.repl.render import Renderer
    from kimicode.llm.messages import Image
    from kimicode.llm.profiles import ModelProfile

MENTION = re.compile(r"(?<!\S)@(\S+)")
Parts = list[dict[str, Any]]


class NextMessage:
    def __init__(self, config: Config, renderer: Renderer, profile: Callable[[], ModelProfile]) -> None:
        self._config = config
        self._renderer = renderer
        self._profile = profile  # the current agent's: /model and /mode change it
        self.images: list[Image] = []
        self.parts: Parts = []

    def add(self, images: list[Image], parts: Parts) -> None:
        self.images.extend(images)
        self.parts.extend(parts)

    async def load(self, images: list[Path], video: Path | None) -> None:
        """--image/--video for the first message; sampling or uploading runs off the event loop."""
        if images or video:
            from kimicode.frontends.common.media import load_media

            media, parts = await asyncio.to_thread(load_media, self._config, images, video, self._profile())
            self.add(media, parts)

    def attach_images(self, paths: list[Path]) -> bool:
        """Encode image files for the next message and say what was attached; False (and one line) on failure."""
        try:
            images = attach_image_files(self._config, paths, self._profile())
        except MediaError as exc:
            self._renderer.error(str(exc))
            return False
        self.images.extend(images)
        for image in images:
            self._renderer.dim(f"attached {image.describe()}")
        return True

    async def attach_video(self, path: Path) -> bool:
        try:  # frame sampling (or the upload) runs off the event loop
            frames, parts, line = await asyncio.to_thread(attach_video_file, self._config, path, self._profile())
        except MediaError as exc:
            self._renderer.error(str(exc))
            return False
        self.add(frames, parts)
        self._renderer.dim(f"attached {line}")
        return True

    def compose(self, text: str) -> tuple[str, list[Image] | None, Parts | None] | None:
        """The message to send: its text with the mentioned files, and everything attached (taken from here);
        None when nothing is to be sent yet (an image file was pasted alone, or a mentioned image failed)."""
        work_dir = self._config.work_dir
        pasted = pasted_image_path(text, work_dir)
        if pasted is not None:  # a dropped or pasted image file: attach it and wait for the words
            self.attach_images([pasted])
            return None
        mentioned = image_mentions(text, work_dir)
        if mentioned and not self.attach_images(mentioned):
            return None
        text, attached, problems = expand_mentions(text, work_dir)
        for path in attached:
            self._renderer.dim(f"attached {path}")
        for problem in problems:
            self._renderer.warn(problem)
        images, self.images = self.images, []
        parts, self.parts = self.parts, []
        return text, images or None, parts or None


def attach_mentions(text: str, workspace: Path) -> tuple[str, list[str]]:
    """``text`` with the files its ``@path`` mentions appended, and their names (see expand_mentions)."""
    text, attached, _ = expand_mentions(text, workspace)
    return text, attached
