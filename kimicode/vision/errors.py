"""The one error type of the vision package: a single line the user or the model can act on."""

from __future__ import annotations

import re


class VisionError(Exception):
    """An image, video or page could not be turned into pixels; the message says why and what to do."""


def first_line(exc: BaseException) -> str:
    """An error's first line, without the call prefix Playwright puts before it ("Page.goto: ")."""
    text = str(exc).strip().splitlines()
    if not text:
        return exc.__class__.__name__
    return re.sub(r"^\w+\.\w+: ", "", text[0])
