"""Headless Chromium for screenshots: one browser per session, started on first use.

Starting Chromium costs seconds, so the browser stays alive between screenshots and each screenshot only
opens (and closes) a page in a context of its own. Finding and starting Chromium is ``launch``'s job,
loading a page and taking its pictures ``capture``'s, and what the page reported ``page_report``'s.

The browser stays inside the boundary (kimicode/vision/boundary.py): its network goes through the gate,
its files are the workspace's, and Chromium's sandbox is on wherever the machine allows it.

Invariants:
- One Browser (one Chromium, one gate) per event loop: Playwright's objects belong to the loop that made
  them. A crashed browser is replaced on the next screenshot.
- Each screenshot has a browser context of its own, closed when it ends, whose every request passes the
  file route and the gate; a private address the policy allowed for it is allowed only while it runs.
- A screenshot's report holds only what its own context did (kimicode/vision/page_report.py).
"""

from __future__ import annotations

import asyncio
import re
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from kimicode.vision.boundary import Boundary, FileGuard
from kimicode.vision.capture import (
    ScreenshotFrame,
    capture,
    element_capture,
    load,
    read_page_height,
    read_scroll_y,
    scroll_capture,
)
from kimicode.vision.errors import VisionError, first_line
from kimicode.vision.gate import Refusal
from kimicode.vision.launch import launch
from kimicode.vision.page_report import PageRequests, compose, watch_errors

if TYPE_CHECKING:
    from kimicode.vision.actions import Action

__all__ = [
    "MAX_SCROLL_FRAMES",
    "UNSANDBOXED_NOTE",
    "Browser",
    "ScreenshotFrame",
    "resolve_target",
    "session_browser",
    "close_session_browsers",
]

MAX_SCROLL_FRAMES = 20
UNSANDBOXED_NOTE = (
    "Chromium runs without its own sandbox on this machine (no user namespaces), so a page that exploits it "
    "runs as you; its network and files are still limited"
)
_URL_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://|^(about|data):")
_HOST_LIKE = re.compile(r"^(localhost|127\.0\.0\.1|\[::1\]|[\w.-]+:\d+)(:\d+)?(/.*)?$")


def resolve_target(target: str, workspace: Path | None = None) -> str:
    """A URL stays as it is; ``localhost:3000``-style hosts get http://; anything else is a local file."""
    target = target.strip()
    if not target:
        raise VisionError("screenshot target is empty: give a URL or a local HTML file path")
    if _URL_SCHEME.match(target):
        return target
    path = Path(target).expanduser()
    if not path.is_absolute():
        path = (workspace or Path.cwd()) / path
    if path.exists():
        if path.is_dir():
            index = path / "index.html"
            if not index.is_file():
                raise VisionError(f"{path} is a directory without index.html: give the HTML file to render")
            path = index
        return path.resolve().as_uri()
    if _HOST_LIKE.match(target):
        return "http://" + target
    raise VisionError(f"screenshot target not found: {path} is neither an existing file nor a URL")


class Browser:
    """One headless Chromium, launched lazily and reused until ``close()``."""

    def __init__(self, workspace: Path | None = None, executable: str | None = None) -> None:
        self.workspace = workspace
        self._executable = executable
        self._playwright: Any = None
        self._browser: Any = None
        self._lock = asyncio.Lock()
        self._gate: Any = None
        self.boundary = Boundary()
        self.sandboxed = False  # Chromium's own sandbox is on (known after start)
        self._told_unsandboxed = False

    @property
    def started(self) -> bool:
        return self._browser is not None and self._browser.is_connected()

    @property
    def gate_port(self) -> int:
        """The loopback port all of Chromium's traffic goes through (0 before start)."""
        return self._gate.port if self._gate is not None else 0

    async def start(self) -> None:
        async with self._lock:
            if self.started:
                return
            await self._shutdown()  # a crashed browser leaves a driver behind
            from playwright.async_api import async_playwright

            from kimicode.vision.gate import Gate

            self._gate = Gate(self.boundary.network_problem)
            await self._gate.start()
            self._playwright = await async_playwright().start()
            self._browser = await self._launch()

    async def _launch(self) -> Any:
        try:
            browser, self.sandboxed = await launch(self._playwright.chromium, self._executable, self._gate.port)
        except VisionError:
            await self._shutdown()
            raise
        return browser

    async def close(self) -> None:
        async with self._lock:
            await self._shutdown()

    async def _shutdown(self) -> None:
        browser, playwright, gate = self._browser, self._playwright, self._gate
        self._browser = self._playwright = self._gate = None
        if browser is not None:
            try:
                await browser.close()
            except Exception:  # noqa: BLE001 - already gone is fine when closing
                pass
        if playwright is not None:
            try:
                await playwright.stop()
            except Exception:  # noqa: BLE001
                pass
        if gate is not None:
            await gate.close()

    async def screenshot(
        self,
        target: str,
        width: int = 1280,
        height: int = 800,
        full_page: bool = False,
        scroll_frames: int = 0,
        timeout: float = 30.0,
        workspace: Path | None = None,
        actions: list[Action] | None = None,
        selector: str = "",
        device: str = "",
        color_scheme: str = "",
    ) -> list[ScreenshotFrame]:
        """PNG screenshots of ``target``: one (viewport, full page or one element), or ``scroll_frames``.

        ``actions`` run first, in order; one that fails raises ActionError carrying the page as it was.
        ``device`` (a preset or Playwright device name) replaces width and height with its viewport, pixel
        ratio and touch. The first frame carries what the page reported and the facts a picture hides.
        """
        from kimicode.vision.actions import run_actions, settle
        from kimicode.vision.devices import Device, resolve_device

        if not (64 <= width <= 4096 and 64 <= height <= 4096):
            raise VisionError(f"viewport {width}x{height} is out of range: width and height must be 64..4096")
        if not 0 <= scroll_frames <= MAX_SCROLL_FRAMES:
            raise VisionError(f"scroll_frames must be between 0 and {MAX_SCROLL_FRAMES}, got {scroll_frames}")
        if color_scheme not in ("", "light", "dark"):
            raise VisionError(f"color_scheme must be light or dark, got {color_scheme!r}")
        url = resolve_target(target, workspace or self.workspace)
        await self.start()
        from playwright.async_api import Error as PlaywrightError

        chosen = resolve_device(device, self._playwright.devices) if device else Device("", width, height, 1)
        options = chosen.context_options()
        if color_scheme:
            options["color_scheme"] = color_scheme
        # Service workers would fetch out of sight of the file route; the gate sees them, but one place is
        # simpler to trust.
        options["service_workers"] = "block"
        try:
            context = await self._browser.new_context(**options)
        except PlaywrightError:
            # The browser died between calls: start a fresh one once.
            await self.close()
            await self.start()
            context = await self._browser.new_context(**options)
        page_file = Path(unquote(urlsplit(url).path)) if url.startswith("file:") else None
        root = workspace or self.workspace
        refused: list[str] = []
        requests = PageRequests()
        requests.watch(context)
        await context.route("**/*", requests.routed(FileGuard([root] if root else [], page_file, refused)))
        address = self.boundary.allow_address(url)
        gate_refusals: list[Refusal] = []
        gate = self._gate

        def heard(refusal: Refusal) -> None:
            gate_refusals.append(refusal)

        page = await context.new_page()
        requests.watch_page(page)
        errors = watch_errors(page)
        gate.listeners.add(heard)  # before the page asks for anything: it has not navigated yet
        try:
            note = await load(page, url, timeout, self._gate.unreachable)
            if actions:
                await settle(page)  # transitions started on load should not race the first action
                await run_actions(page, actions)
            element_line = ""
            if selector:
                frames, element_line = await element_capture(page, selector, timeout, note)
            elif scroll_frames:
                frames = await scroll_capture(page, scroll_frames, timeout, note)
            else:
                shot = await capture(page, url, timeout, full_page=full_page)
                scroll_y = 0 if full_page else await read_scroll_y(page)
                frames = [ScreenshotFrame(shot, scroll_y, await read_page_height(page), note)]
            from kimicode.vision.pagefacts import overflow_facts

            first = frames[0]
            first.page_errors = compose(refused, gate_refusals, requests, errors)
            first.facts = [line for line in [element_line, *await overflow_facts(page)] if line]
            for frame in frames:
                frame.scale = chosen.scale
            first.device = chosen.describe() if device else ""
            if not self.sandboxed and not self._told_unsandboxed:
                self._told_unsandboxed = True  # once per browser: it is a fact about the machine
                first.note = "; ".join(filter(None, [first.note, UNSANDBOXED_NOTE]))
            return frames
        except PlaywrightError as exc:
            raise VisionError(f"screenshot of {url} failed: {first_line(exc)}") from None
        finally:
            gate.listeners.discard(heard)
            self.boundary.release(address)
            try:
                await context.close()
            except Exception:  # noqa: BLE001 - the page may already be gone with a crashed browser
                pass


# One Browser per running event loop: Playwright objects belong to the loop that created them, and a
# session (with its sub-agents) runs on one loop.
_session_browsers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Browser] = weakref.WeakKeyDictionary()


def session_browser() -> Browser:
    """The Browser of the running event loop (created on first use, launched on first screenshot)."""
    loop = asyncio.get_running_loop()
    browser = _session_browsers.get(loop)
    if browser is None:
        browser = _session_browsers[loop] = Browser()
    return browser


async def close_session_browsers() -> None:
    """Close the running loop's Browser, if one was started; call when a session ends."""
    browser = _session_browsers.pop(asyncio.get_running_loop(), None)
    if browser is not None:
        await browser.close()
