"""The one error type of the vision package: a single line the user or the model can act on."""

from __future__ import annotations


class VisionError(Exception):
    """An image, video or page could not be turned into pixels; the message says why and what to do."""
