"""Loading a page and taking its pictures: the viewport, the whole page, one element, or scroll frames.

Invariants:
- Every picture is a ScreenshotFrame: PNG bytes with the page position its top-left corner shows
  (``origin_x``, ``scroll_y``, CSS px), so boxes found in it map back to the page.
- A page whose document arrived is captured even when a resource never finishes loading (with a note);
  one whose document never arrived is an error that says so.
- Each Playwright failure becomes one VisionError line; nothing here leaves the page open (the caller
  closes its context).
"""

from __future__ import annotations

import asyncio
from typing import Any

from kimicode.vision.errors import VisionError, first_line

__all__ = [
    "ScreenshotFrame", "capture", "element_capture", "load", "read_page_height", "read_scroll_y", "scroll_capture",
]

# After each scroll: two animation frames so scroll/IntersectionObserver handlers run, then a pause
# so the CSS transitions they start are (mostly) finished in the picture.
SCROLL_SETTLE_SECONDS = 0.35


class ScreenshotFrame(bytes):
    """PNG bytes of one capture, with what the picture shows (scroll position, page size)."""

    scroll_y: int  # page y (CSS px) of the picture's top edge
    origin_x: int  # page x of its left edge (non-zero for element captures)
    scale: float  # device pixel ratio: picture pixels per CSS pixel
    page_height: int
    note: str
    page_errors: list[str]  # JavaScript errors, console errors and failed requests seen while loading
    facts: list[str]  # what the picture hides: overflow, an element's computed style
    device: str

    def __new__(cls, png: bytes, scroll_y: int = 0, page_height: int = 0, note: str = "") -> ScreenshotFrame:
        frame = super().__new__(cls, png)
        frame.scroll_y = scroll_y
        frame.page_height = page_height
        frame.note = note
        frame.page_errors = []
        frame.origin_x = 0
        frame.scale = 1.0
        frame.facts = []
        frame.device = ""
        return frame


async def load(page: Any, url: str, timeout: float, unreachable: set[tuple[str, int]]) -> str:
    """Navigate and wait for "load"; a page that never finishes loading is still captured, with a note."""
    from playwright.async_api import Error as PlaywrightError
    from playwright.async_api import TimeoutError as PlaywrightTimeout

    try:
        response = await page.goto(url, wait_until="load", timeout=timeout * 1000)
    except PlaywrightTimeout:
        state = await _ready_state(page)
        if state in ("interactive", "complete"):
            return f"the page did not finish loading within {timeout:g}s (a resource is still pending); captured as it was"
        raise VisionError(
            f"{url} did not load within {timeout:g}s (no document arrived): check that the server is running "
            "and answering, or raise the timeout"
        ) from None
    except PlaywrightError as exc:
        message = first_line(exc)
        if "ERR_CONNECTION_REFUSED" in message or _target_of(url) in unreachable:
            raise VisionError(f"cannot open {url}: connection refused (is the server running?)") from None
        if "ERR_FILE_NOT_FOUND" in message:
            raise VisionError(f"cannot open {url}: file not found") from None
        raise VisionError(f"cannot open {url}: {message}") from None
    if response is not None and response.status >= 400:
        return f"the server answered HTTP {response.status}"
    return ""


def _target_of(url: str) -> tuple[str, int] | None:
    from kimicode.security import urls

    try:
        target = urls.parse(url)
    except urls.UrlError:
        return None
    return target.host, target.port


async def _ready_state(page: Any) -> str:
    try:
        return str(await asyncio.wait_for(page.evaluate("document.readyState"), 2.0))
    except Exception:  # noqa: BLE001 - a page stuck before its document exists has no state to read
        return ""


async def capture(page: Any, url: str, timeout: float, full_page: bool = False) -> bytes:
    from playwright.async_api import TimeoutError as PlaywrightTimeout

    try:
        # animations="disabled" would freeze the very effects scroll_frames exists to show.
        return await page.screenshot(type="png", full_page=full_page, timeout=timeout * 1000, caret="initial")
    except PlaywrightTimeout:
        raise VisionError(
            f"screenshot of {url} timed out after {timeout:g}s (the page kept the renderer busy): "
            "try again or raise the timeout"
        ) from None


async def read_page_height(page: Any) -> int:
    try:
        return int(await page.evaluate("document.documentElement.scrollHeight"))
    except Exception:  # noqa: BLE001 - a size is a nicety, not a reason to fail
        return 0


async def read_scroll_y(page: Any) -> int:
    try:
        return int(await page.evaluate("Math.round(scrollY)"))
    except Exception:  # noqa: BLE001
        return 0


async def element_capture(page: Any, selector: str, timeout: float, note: str) -> tuple[list[ScreenshotFrame], str]:
    """One element's picture (scrolled into view by Playwright) and the line of facts about it."""
    from kimicode.vision.actions import ActionError, locate, snapshot
    from kimicode.vision.pagefacts import element_facts

    try:
        element = await locate(page, selector, min(timeout, 5.0))
    except VisionError as exc:
        raise ActionError(f"selector: {exc}", await snapshot(page)) from None
    png = await element.screenshot(type="png", timeout=timeout * 1000, caret="initial")
    facts = await element_facts(element, selector)
    box = await element.bounding_box() or {"x": 0, "y": 0}
    frame = ScreenshotFrame(png, 0, await read_page_height(page), note)
    # Element captures start at the element: boxes found in them are offset by its page position.
    offset = await page.evaluate("() => [scrollX, scrollY]")
    frame.origin_x = round(box["x"] + offset[0])
    frame.scroll_y = round(box["y"] + offset[1])
    return [frame], facts


_SCROLL_AND_SETTLE = """
async ([fraction, settleMs]) => {
  const root = document.scrollingElement || document.documentElement;
  root.style.scrollBehavior = 'auto';
  const max = Math.max(0, root.scrollHeight - window.innerHeight);
  window.scrollTo({top: Math.round(max * fraction), left: 0, behavior: 'instant'});
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  await new Promise(r => setTimeout(r, settleMs));
  return [Math.round(window.scrollY), root.scrollHeight];
}
"""


async def scroll_capture(page: Any, frames: int, timeout: float, note: str) -> list[ScreenshotFrame]:
    shots: list[ScreenshotFrame] = []
    settle_ms = int(SCROLL_SETTLE_SECONDS * 1000)
    for i in range(frames):
        fraction = i / (frames - 1) if frames > 1 else 0.0
        scroll_y, page_height = await page.evaluate(_SCROLL_AND_SETTLE, [fraction, settle_ms])
        png = await capture(page, page.url, timeout)
        shots.append(ScreenshotFrame(png, int(scroll_y), int(page_height), note if i == 0 else ""))
    return shots
