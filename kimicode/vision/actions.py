"""Interacting with a page before it is captured: click, hover, type, press, wait_for, scroll_to.

Each action is one small object naming its kind: ``{"click": "#menu"}``, ``{"click": "Open menu"}``
(visible text), ``{"hover": ".card"}``, ``{"type": "#email", "text": "a@b.c"}``, ``{"press": "Enter"}``,
``{"wait_for": ".toast"}`` or ``{"wait_for": 300}`` (milliseconds), ``{"scroll_to": "#pricing"}`` or
``{"scroll_to": 1200}`` (pixels from the top). They run in order; the first one that fails stops the run
with an error naming the step, and the caller captures the page as it was.

A target is tried as a CSS selector first and then as visible text (exact, then contained), polled until
the step's timeout, so an element that appears after the previous step (a menu opening) is found.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

from kimicode.vision.errors import VisionError

__all__ = [
    "ACTION_KINDS",
    "MAX_ACTIONS",
    "Action",
    "ActionError",
    "locate",
    "parse_actions",
    "run_actions",
    "settle",
    "snapshot",
]

ACTION_KINDS = ("click", "hover", "type", "press", "wait_for", "scroll_to")
MAX_ACTIONS = 20
STEP_TIMEOUT_SECONDS = 5.0
MAX_WAIT_MS = 10_000
# How long to wait, after an action, for the CSS transitions and animations it started to finish.
SETTLE_LIMIT_MS = 1000


class ActionError(VisionError):
    """An action failed; ``png`` holds the page as it was at that moment (may be empty)."""

    def __init__(self, message: str, png: bytes = b"") -> None:
        super().__init__(message)
        self.png = png


@dataclass(frozen=True)
class Action:
    kind: str
    target: str = ""  # selector or visible text (click, hover, type, wait_for, scroll_to)
    text: str = ""  # what to type; the key to press
    amount: int | None = None  # milliseconds (wait_for) or pixels (scroll_to)

    def describe(self) -> str:
        value: Any = self.amount if self.amount is not None else (self.target or self.text)
        extra = f", text {json.dumps(self.text)}" if self.kind == "type" else ""
        return f"{self.kind} {json.dumps(value)}{extra}"


def parse_actions(raw: Any) -> list[Action]:
    """Validated actions, or a VisionError naming the step that is malformed and showing the right shape."""
    if raw in (None, "", []):
        return []
    if not isinstance(raw, list):
        raise VisionError('actions must be a list such as [{"click": "#menu"}, {"wait_for": 200}]')
    if len(raw) > MAX_ACTIONS:
        raise VisionError(f"too many actions ({len(raw)}): at most {MAX_ACTIONS} per screenshot")
    return [_parse_one(i, item) for i, item in enumerate(raw, start=1)]


def _parse_one(step: int, item: Any) -> Action:
    where = f"action {step}"
    if not isinstance(item, dict):
        raise VisionError(f"{where} must be an object such as {{\"click\": \"#menu\"}}, got {item!r}")
    kinds = [k for k in item if k in ACTION_KINDS]
    if len(kinds) != 1:
        raise VisionError(f"{where} must name exactly one of {', '.join(ACTION_KINDS)}; got {sorted(item)}")
    kind = kinds[0]
    value = item[kind]
    if kind == "type":
        if isinstance(value, dict):  # {"type": {"selector": ..., "text": ...}}
            item = {**item, **value}
            value = value.get("selector", "")
        text = item.get("text")
        if not isinstance(value, str) or not value.strip() or not isinstance(text, str):
            raise VisionError(f'{where}: type needs a selector and the text, e.g. {{"type": "#email", "text": "a@b.c"}}')
        return Action(kind, target=value.strip(), text=text)
    if kind == "press":
        if not isinstance(value, str) or not value.strip():
            raise VisionError(f'{where}: press needs a key, e.g. {{"press": "Enter"}} or {{"press": "Control+A"}}')
        return Action(kind, text=value.strip())
    if kind in ("wait_for", "scroll_to") and isinstance(value, (int, float)) and not isinstance(value, bool):
        amount = int(value)
        if amount < 0 or (kind == "wait_for" and amount > MAX_WAIT_MS):
            raise VisionError(f"{where}: {kind} {amount} is out of range (0..{MAX_WAIT_MS} ms)")
        return Action(kind, amount=amount)
    if isinstance(value, str) and value.strip().isdigit() and kind in ("wait_for", "scroll_to"):
        return _parse_one(step, {kind: int(value.strip())})
    if not isinstance(value, str) or not value.strip():
        raise VisionError(f"{where}: {kind} needs a CSS selector or visible text, got {value!r}")
    return Action(kind, target=value.strip())


async def run_actions(page: Any, actions: list[Action], timeout: float = STEP_TIMEOUT_SECONDS) -> None:
    """Run ``actions`` in order on ``page``; an ActionError (with the page as it was) on the first failure."""
    from playwright.async_api import Error as PlaywrightError

    for step, action in enumerate(actions, start=1):
        try:
            await _run_one(page, action, timeout)
        except (PlaywrightError, VisionError) as exc:
            reason = str(exc) if isinstance(exc, VisionError) else _reason(exc)
            png = await snapshot(page)
            raise ActionError(
                f"action {step} of {len(actions)} ({action.describe()}) failed: {reason}", png
            ) from None
    if actions and actions[-1].kind not in ("click", "hover", "press"):  # those settled already
        await settle(page)


async def _run_one(page: Any, action: Action, timeout: float) -> None:
    """One action; those that make the page react (click, hover, press) wait for it to settle."""
    from playwright.async_api import Error as PlaywrightError

    ms = int(timeout * 1000)
    if action.kind == "wait_for":
        if action.amount is not None:
            await page.wait_for_timeout(action.amount)
        else:
            await locate(page, action.target, timeout)
        return
    if action.kind == "press":
        await page.keyboard.press(action.text)
        await settle(page)
        return
    if action.kind == "scroll_to" and action.amount is not None:
        await page.evaluate("y => window.scrollTo({top: y, left: 0, behavior: 'instant'})", action.amount)
        return
    element = await locate(page, action.target, timeout)
    if action.kind == "click":
        await element.click(timeout=ms)
    elif action.kind == "hover":
        await element.hover(timeout=ms)
    elif action.kind == "type":
        try:
            await element.fill(action.text, timeout=ms)  # one input event: fast, and what forms listen to
        except PlaywrightError:  # not an input, textarea or contenteditable: type key by key
            await element.click(timeout=ms)
            await element.press_sequentially(action.text, timeout=ms)
        return
    elif action.kind == "scroll_to":
        await element.evaluate("e => e.scrollIntoView({block: 'start', behavior: 'instant'})")
        return  # the settle after the last action lets scroll-triggered observers run
    await settle(page)


async def locate(page: Any, target: str, timeout: float) -> Any:
    """The first element matching ``target`` as a CSS selector, else by its visible text; polled."""
    deadline = time.monotonic() + timeout
    css_valid = True
    while True:
        if css_valid:
            try:
                by_css = page.locator(target)
                if await by_css.count():
                    return by_css.first
            except Exception:  # noqa: BLE001 - not valid CSS: it can only be text
                css_valid = False
        for exact in (True, False):
            by_text = page.get_by_text(target, exact=exact)
            if await by_text.count():
                return await _visible_first(by_text)
        if time.monotonic() >= deadline:
            kind = "selector or visible text" if css_valid else "visible text"
            raise VisionError(f"nothing on the page matches {kind} {json.dumps(target)} after {timeout:g}s")
        await asyncio.sleep(0.1)


async def _visible_first(locator: Any) -> Any:
    """Of several text matches, the first one a user could see (menus often hold hidden copies)."""
    count = await locator.count()
    for index in range(min(count, 10)):
        candidate = locator.nth(index)
        if await candidate.is_visible():
            return candidate
    return locator.first


_SETTLE = """
async (limitMs) => {
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  const finite = document.getAnimations().filter(a => {
    const timing = a.effect && a.effect.getComputedTiming ? a.effect.getComputedTiming() : {};
    return a.playState === 'running' && timing.endTime !== Infinity;
  });
  if (finite.length) {
    await Promise.race([
      Promise.allSettled(finite.map(a => a.finished)),
      new Promise(r => setTimeout(r, limitMs)),
    ]);
  }
}
"""


async def settle(page: Any, limit_ms: int = SETTLE_LIMIT_MS) -> None:
    """Let the page react: two frames, then the CSS transitions and finite animations finish (bounded)."""
    try:
        await page.evaluate(_SETTLE, limit_ms)
    except Exception:  # noqa: BLE001 - a navigation mid-evaluate is not a failure of the action
        await asyncio.sleep(0.05)


async def snapshot(page: Any) -> bytes:
    """The page as it is now (PNG), or nothing when it cannot be captured."""
    try:
        return bytes(await page.screenshot(type="png", timeout=5000))
    except Exception:  # noqa: BLE001 - the page may be gone; the error text still says what failed
        return b""


def _reason(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if not lines:
        return exc.__class__.__name__
    first = lines[0].split(": ", 1)[-1] if lines[0].count(":") else lines[0]
    # Playwright's timeouts explain themselves in the call log; keep its most telling line.
    hints = [line.lstrip("- ") for line in lines[1:] if "intercepts pointer events" in line or "not visible" in line]
    return first + (f" ({hints[-1]})" if hints else "")
