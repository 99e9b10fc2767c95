"""Headless Chromium for screenshots: one browser per session, started on first use.

Playwright drives the browser. Its own Chromium download is used when present and working; otherwise a
system Chromium or Chrome is found on PATH. Starting Chromium costs seconds, so the browser stays alive
between screenshots and each screenshot only opens (and closes) a page in a context of its own.

The browser stays inside the boundary (kimicode/vision/boundary.py): its network goes through the gate,
its files are the workspace's, and Chromium's sandbox is on wherever the machine allows it.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from kimicode.vision.boundary import Boundary, FileGuard, gate_args, sandbox_wrapper
from kimicode.vision.errors import VisionError
from kimicode.vision.gate import Refusal
from kimicode.vision.page_report import PageRequests, compose, watch_errors

if TYPE_CHECKING:
    from kimicode.vision.actions import Action

__all__ = [
    "CHROMIUM_ARGS",
    "NO_CHROMIUM_MESSAGE",
    "MAX_SCROLL_FRAMES",
    "Browser",
    "ScreenshotFrame",
    "find_chromium",
    "resolve_target",
    "session_browser",
    "close_session_browsers",
]

CHROMIUM_ARGS = [
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # The on-device model's manifest is fetched from the component updater on demand, which
    # --disable-component-update does not stop; a local manifest (here: none) replaces that request.
    f"--optimization-guide-manifest-override={os.devnull}",
]
SYSTEM_BROWSERS = ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"]
FALLBACK_PATHS = ["/usr/bin/chromium"]
NO_CHROMIUM_MESSAGE = (
    "no Chromium found: install it with `sudo apt-get install chromium` (Debian/Ubuntu) "
    "or `playwright install chromium`"
)
MAX_SCROLL_FRAMES = 20
UNSANDBOXED_NOTE = (
    "Chromium runs without its own sandbox on this machine (no user namespaces), so a page that exploits it "
    "runs as you; its network and files are still limited"
)
# After each scroll: two animation frames so scroll/IntersectionObserver handlers run, then a pause
# so the CSS transitions they start are (mostly) finished in the picture.
SCROLL_SETTLE_SECONDS = 0.35
_URL_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://|^(about|data):")
_HOST_LIKE = re.compile(r"^(localhost|127\.0\.0\.1|\[::1\]|[\w.-]+:\d+)(:\d+)?(/.*)?$")


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


def find_chromium(playwright_executable: str | None = None) -> str | None:
    """The browser to launch: $KIMICODE_CHROMIUM, Playwright's own, then a system Chromium/Chrome."""
    override = os.environ.get("KIMICODE_CHROMIUM")
    if override:
        return override if Path(override).is_file() else shutil.which(override)
    if playwright_executable and Path(playwright_executable).is_file():
        return playwright_executable
    for name in SYSTEM_BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    for candidate in FALLBACK_PATHS:
        if Path(candidate).is_file():
            return candidate
    return None


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
        chromium = self._playwright.chromium
        candidates: list[str] = []
        if self._executable:
            candidates.append(self._executable)
        else:
            own = _playwright_executable(chromium)
            if own and not os.environ.get("KIMICODE_CHROMIUM"):
                candidates.append(own)  # tried first; on failure fall through to a system browser
            system = find_chromium()
            if system and system not in candidates:
                candidates.append(system)
        if not candidates:
            await self._shutdown()
            raise VisionError(NO_CHROMIUM_MESSAGE)
        failure = ""
        args = [*CHROMIUM_ARGS, *gate_args(self._gate.port)]
        for executable in candidates:
            # Sandboxed first (as root: as an ordinary user in a user namespace), then without a sandbox.
            for launcher, sandbox in ((sandbox_wrapper(executable) or executable, True), (executable, False)):
                try:
                    browser = await chromium.launch(
                        executable_path=launcher, args=args, headless=True, chromium_sandbox=sandbox
                    )
                except Exception as exc:  # noqa: BLE001 - any launch failure means: try the next way
                    failure = f"{executable}: {_first_line(exc)}"
                    continue
                self.sandboxed = sandbox
                return browser
        await self._shutdown()
        raise VisionError(f"Chromium failed to start ({failure}); {NO_CHROMIUM_MESSAGE.split(': ', 1)[1]}")

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
            note = await _load(page, url, timeout, self._gate.unreachable)
            if actions:
                await settle(page)  # transitions started on load should not race the first action
                await run_actions(page, actions)
            element_line = ""
            if selector:
                frames, element_line = await _element_capture(page, selector, timeout, note)
            elif scroll_frames:
                frames = await _scroll_capture(page, scroll_frames, timeout, note)
            else:
                shot = await _capture(page, url, timeout, full_page=full_page)
                scroll_y = 0 if full_page else await _scroll_y(page)
                frames = [ScreenshotFrame(shot, scroll_y, await _page_height(page), note)]
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
            raise VisionError(f"screenshot of {url} failed: {_first_line(exc)}") from None
        finally:
            gate.listeners.discard(heard)
            self.boundary.release(address)
            try:
                await context.close()
            except Exception:  # noqa: BLE001 - the page may already be gone with a crashed browser
                pass


async def _element_capture(page: Any, selector: str, timeout: float, note: str) -> tuple[list[ScreenshotFrame], str]:
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
    frame = ScreenshotFrame(png, 0, await _page_height(page), note)
    # Element captures start at the element: boxes found in them are offset by its page position.
    offset = await page.evaluate("() => [scrollX, scrollY]")
    frame.origin_x = round(box["x"] + offset[0])
    frame.scroll_y = round(box["y"] + offset[1])
    return [frame], facts


async def _scroll_y(page: Any) -> int:
    try:
        return int(await page.evaluate("Math.round(scrollY)"))
    except Exception:  # noqa: BLE001
        return 0


async def _load(page: Any, url: str, timeout: float, unreachable: set[tuple[str, int]]) -> str:
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
        message = _first_line(exc)
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


async def _capture(page: Any, url: str, timeout: float, full_page: bool = False) -> bytes:
    from playwright.async_api import TimeoutError as PlaywrightTimeout

    try:
        # animations="disabled" would freeze the very effects scroll_frames exists to show.
        return await page.screenshot(type="png", full_page=full_page, timeout=timeout * 1000, caret="initial")
    except PlaywrightTimeout:
        raise VisionError(
            f"screenshot of {url} timed out after {timeout:g}s (the page kept the renderer busy): "
            "try again or raise the timeout"
        ) from None


async def _page_height(page: Any) -> int:
    try:
        return int(await page.evaluate("document.documentElement.scrollHeight"))
    except Exception:  # noqa: BLE001 - a size is a nicety, not a reason to fail
        return 0


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


async def _scroll_capture(page: Any, frames: int, timeout: float, note: str) -> list[ScreenshotFrame]:
    shots: list[ScreenshotFrame] = []
    settle_ms = int(SCROLL_SETTLE_SECONDS * 1000)
    for i in range(frames):
        fraction = i / (frames - 1) if frames > 1 else 0.0
        scroll_y, page_height = await page.evaluate(_SCROLL_AND_SETTLE, [fraction, settle_ms])
        png = await _capture(page, page.url, timeout)
        shots.append(ScreenshotFrame(png, int(scroll_y), int(page_height), note if i == 0 else ""))
    return shots


def _playwright_executable(chromium: Any) -> str | None:
    try:
        return str(chromium.executable_path)
    except Exception:  # noqa: BLE001 - no bundled browser registered
        return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    if not text:
        return exc.__class__.__name__
    return re.sub(r"^\w+\.\w+: ", "", text[0])  # drop Playwright's "Page.goto: " call prefix


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
