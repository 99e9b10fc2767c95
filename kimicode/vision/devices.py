"""Device presets for screenshots: viewport, pixel ratio, touch and user agent of a phone or a tablet.

"phone" and "tablet" are the two sizes that matter for responsive layouts; any name Playwright knows
("iPhone 15", "Pixel 7", "iPad Mini", ... matched without regard to case) works too, from the
descriptors Playwright ships (no network needed). A few newer models Playwright does not list are added.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kimicode.vision.errors import VisionError

__all__ = ["Device", "resolve_device"]

_MOBILE_UA = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Mobile Safari/537.36"
)
_TABLET_UA = (
    "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Mobile/15E148 Safari/604.1"
)


@dataclass(frozen=True)
class Device:
    name: str
    width: int
    height: int
    scale: float  # device pixel ratio: a capture has width*scale pixels
    mobile: bool = False
    touch: bool = False
    user_agent: str = ""

    def context_options(self) -> dict[str, Any]:
        """Keyword arguments for Playwright's ``new_page``."""
        options: dict[str, Any] = {
            "viewport": {"width": self.width, "height": self.height},
            "device_scale_factor": self.scale,
            "is_mobile": self.mobile,
            "has_touch": self.touch,
        }
        if self.user_agent:
            options["user_agent"] = self.user_agent
        return options

    def describe(self) -> str:
        extras = ", touch" if self.touch else ""
        return f"{self.name}: {self.width}x{self.height} at {self.scale:g}x{extras}"


PRESETS = {
    "phone": Device("phone", 390, 844, 3, mobile=True, touch=True, user_agent=_MOBILE_UA),
    "tablet": Device("tablet", 820, 1180, 2, mobile=True, touch=True, user_agent=_TABLET_UA),
    "desktop": Device("desktop", 1280, 800, 1),
    "pixel 8": Device("Pixel 8", 412, 915, 2.625, mobile=True, touch=True, user_agent=_MOBILE_UA),
}


def resolve_device(name: str, playwright_devices: dict[str, Any] | None) -> Device:
    """The preset or Playwright descriptor called ``name``; a clear error naming some choices otherwise."""
    key = " ".join(name.split()).lower()
    if key in PRESETS:
        return PRESETS[key]
    for known, descriptor in (playwright_devices or {}).items():
        if known.lower() == key:
            viewport = descriptor.get("viewport") or {}
            return Device(
                known,
                int(viewport.get("width", 390)),
                int(viewport.get("height", 844)),
                float(descriptor.get("device_scale_factor", 1)),
                mobile=bool(descriptor.get("is_mobile", False)),
                touch=bool(descriptor.get("has_touch", False)),
                user_agent=str(descriptor.get("user_agent", "")),
            )
    raise VisionError(
        f"unknown device {name!r}: use phone, tablet or desktop, or a model such as iPhone 15, Pixel 7, iPad Mini"
    )
