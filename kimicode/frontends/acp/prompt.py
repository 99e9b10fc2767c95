"""A ``session/prompt``'s content blocks as the model's input: text, images, and attached files.

They reach the model as they do from the REPL (kimicode.frontends.common.media): images are encoded within
the model's budget, a mentioned file (a resource link, or an embedded resource an editor sends with the
text of its buffer) is named inline as ``@path`` and its text attached after the message.
"""

from __future__ import annotations

import base64
import binascii
import urllib.parse
from pathlib import Path
from typing import Any

from kimicode.config import Config
from kimicode.frontends.acp.editor import EditorFiles
from kimicode.frontends.common.media import (
    MAX_ATTACH_BYTES,
    MediaError,
    attach_image_bytes,
    attach_image_files,
    file_block,
    is_image_path,
)
from kimicode.llm.messages import Image
from kimicode.llm.profiles import ModelProfile


def uri_path(uri: str) -> Path | None:
    """The local path a ``file://`` URI (or a bare absolute path) names, else None."""
    if uri.startswith("file://"):
        return Path(urllib.parse.unquote(urllib.parse.urlsplit(uri).path))
    if uri.startswith("/"):
        return Path(uri)
    return None


def shown_name(path: Path, workspace: Path) -> str:
    """A path relative to the workspace when it is inside it."""
    try:
        return str(path.relative_to(workspace))
    except ValueError:
        return str(path)


def _decoded(data: str, what: str) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise MediaError(f"the {what} is not valid base64") from None


def _clipped(text: str) -> str:
    if len(text) <= MAX_ATTACH_BYTES:
        return text
    return text[:MAX_ATTACH_BYTES] + f"\n[... cut at {MAX_ATTACH_BYTES} characters; view the file for the rest ...]"


def _joined(words: list[str]) -> str:
    """The blocks' words in order, a space between two that would otherwise touch (``@a.py@b.py``)."""
    text = ""
    for word in words:
        if text and word and not text[-1].isspace() and not word[0].isspace():
            text += " "
        text += word
    return text


async def prompt_input(
    config: Config, blocks: list[Any], files: EditorFiles, profile: ModelProfile
) -> tuple[str, list[Image]]:
    """The message text (with its attached files) and its images (within ``profile``'s picture budget);
    MediaError (one line) for bad media."""
    workspace = config.work_dir
    words: list[str] = []
    attached: list[str] = []
    images: list[Image] = []
    for block in blocks:
        kind = getattr(block, "type", "")
        if kind == "text":
            words.append(block.text)
        elif kind == "image":
            images.append(attach_image_bytes(config, _decoded(block.data, "image"), profile, block.uri or ""))
        elif kind == "resource_link":
            path = uri_path(block.uri)
            if path is None:
                words.append(block.uri)
                continue
            name = shown_name(path, workspace)
            words.append(f"@{name}")
            if is_image_path(path) and path.is_file():
                images.extend(attach_image_files(config, [path], profile))
            elif path.is_file():
                text = await files.current_text(path)
                if text is not None:
                    attached.append(file_block(name, _clipped(text)))
        elif kind == "resource":
            resource = block.resource
            path = uri_path(resource.uri)
            name = shown_name(path, workspace) if path is not None else resource.uri
            words.append(f"@{name}")
            if getattr(resource, "text", None) is not None:
                attached.append(file_block(name, _clipped(resource.text)))
            elif (resource.mime_type or "").startswith("image/"):
                images.append(attach_image_bytes(config, _decoded(resource.blob, "embedded image"), profile, name))
            else:
                attached.append(f'<file path="{name}">(binary content, {resource.mime_type or "unknown type"}: not shown)</file>')
        else:
            raise MediaError(f"{kind or 'this'} content is not supported in a prompt; send text, images or files")
    text = _joined(words).strip()
    if attached:
        text = (text + "\n\n" if text else "") + "\n\n".join(attached)
    return text, images
