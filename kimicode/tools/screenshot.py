"""The `screenshot` tool: render a page in headless Chromium, optionally after interacting with it, show it
to the model, and compare it with a reference design.

Cost rules: every picture goes at the budget the model reads (28x28 px per token, ~4k per image, 24k per
call); a diff image (and the reference slice it was compared with) only when the similarity is below
SIMILARITY_TARGET; a picture identical to one this conversation was already shown is named, not resent.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated, Any, ClassVar

from pydantic import Field, PlainValidator

from kimicode.llm.messages import Image
from kimicode.tools.base import Tool, ToolContext, ToolError, ToolResult
from kimicode.tools.params import Flag, Int, OneOf, Str, ToolParams

# All frames of one call together; one frame alone is still capped by the per-image budget (4096).
SCREENSHOT_TOKEN_BUDGET = 24_000
PER_IMAGE_TOKENS = 4096
MAX_LISTED_REGIONS = 5


def _for_parse_actions(value: Any) -> Any:
    return value  # kimicode.vision.actions checks each action and names the one at fault


class ScreenshotParams(ToolParams):
    target: Str = Field(description="URL or local HTML file path")
    width: Int = 1280
    height: Int = 800
    full_page: Flag | None = None
    scroll_frames: Int | None = None
    actions: Annotated[list[dict[str, Any]], PlainValidator(_for_parse_actions)] | None = Field(
        None,
        description="run first: {click|hover|wait_for|scroll_to: selector, text, ms or y}, "
        "{type: selector, text}, {press: key}",
    )
    selector: Str | None = Field(None, description="capture one element")
    device: Str | None = Field(None, description="phone, tablet, iPhone 15...")
    # The browser names a scheme it does not know; the model is told the two there are.
    color_scheme: Annotated[Str, OneOf(("light", "dark"))] | None = None
    reference: Str | None = Field(None, description="image or video path")


class ScreenshotTool(Tool):
    name: ClassVar[str] = "screenshot"
    description: ClassVar[str] = (
        "Render a URL or local HTML file in headless Chromium and look at it. full_page: whole page; "
        "scroll_frames=N: N frames while scrolling; reference: compare with a design (similarity, diff)."
    )
    params: ClassVar[type[ScreenshotParams]] = ScreenshotParams
    read_only: ClassVar[bool] = True

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        from kimicode.vision.actions import ActionError, parse_actions
        from kimicode.vision.browser import session_browser
        from kimicode.vision.errors import VisionError

        try:
            given = ScreenshotParams.parse(args)
        except ToolError as exc:
            return ToolResult(text=str(exc), is_error=True)
        try:
            target, width, height = given.target, given.width, given.height
            full_page = bool(given.full_page)
            scroll_frames = given.scroll_frames or 0
            selector = (given.selector or "").strip()
            if selector or scroll_frames:
                full_page = False  # an element, or viewport-sized frames, by definition
            if selector:
                scroll_frames = 0
            frames = await session_browser().screenshot(
                target,
                width=width,
                height=height,
                full_page=full_page,
                scroll_frames=scroll_frames,
                workspace=ctx.workspace,
                actions=parse_actions(given.actions),
                selector=selector,
                device=(given.device or "").strip(),
                color_scheme=(given.color_scheme or "").strip().lower(),
            )
            reference = (given.reference or "").strip()
            report = _Report(target, width, height, full_page, selector, ctx)
            report.add_frames(frames)
            if reference:
                report.add_comparison(frames, ctx.resolve(reference), whole=full_page or bool(selector))
        except ActionError as exc:
            images = [_encode(exc.png, "the page as it was when the action failed")] if exc.png else []
            return ToolResult(text=str(exc), images=images, is_error=True)
        except VisionError as exc:
            return ToolResult(text=str(exc), is_error=True)
        return report.result()


def _encode(png: bytes, label: str, max_tokens: int = PER_IMAGE_TOKENS) -> Image:
    from kimicode.vision.images import image_from_png_bytes

    return image_from_png_bytes(png, max_tokens=max_tokens, label=label)


class _Report:
    """The text and pictures of one call, kept within the image budget and free of repeats."""

    def __init__(self, target: str, width: int, height: int, full_page: bool, selector: str, ctx: ToolContext):
        self.target, self.width, self.height = target, width, height
        self.full_page, self.selector = full_page, selector
        self.shown = ctx.shown_images
        self.lines: list[str] = []
        self.picture_lines: list[str] = []
        self.pictures: list[tuple[bytes, str]] = []  # PNG bytes and label, encoded at the end
        self.page_height = 0

    def add_frames(self, frames: list[Any]) -> None:
        first = frames[0]
        self.page_height = max((getattr(f, "page_height", 0) for f in frames), default=0)
        size = f"device {first.device}" if first.device else f"viewport {self.width}x{self.height}"
        self.lines.append(f"Screenshot of {self.target} ({size}, page height {self.page_height}px).")
        self.lines.extend(f"Note: {f.note}." for f in frames if f.note)
        if first.page_errors:
            self.lines.append("Problems reported by the page:")
            self.lines.extend(f"- {error}" for error in first.page_errors)
        if first.facts:
            self.lines.append("Facts:")
            self.lines.extend(f"- {fact}" if not fact.startswith("  ") else fact for fact in first.facts)
        if len(frames) > 1:
            self.picture_lines.append(f"{len(frames)} frames while scrolling from top to bottom:")
        for i, frame in enumerate(frames, start=1):
            self.pictures.append((bytes(frame), self._label(frame, i, len(frames))))

    def _label(self, frame: Any, number: int, count: int) -> str:
        if count > 1:
            return f"frame {number}/{count} at scrollY={frame.scroll_y}"
        if self.selector:
            return f"element {self.selector}"
        if self.full_page:
            return f"full page of {self.target}"
        if frame.device:
            return f"{self.target} on {frame.device.split(':')[0]}"
        return f"{self.target} at {self.width}x{self.height}"

    def add_comparison(self, frames: list[Any], reference: Path, whole: bool) -> None:
        from kimicode.vision.compare import SIMILARITY_TARGET, png_from_array, render_diff
        from kimicode.vision.reference import compare_with_reference

        pairs = compare_with_reference(frames, reference, whole=whole)
        scores = [pair.comparison.similarity for pair in pairs]
        overall = sum(scores) / len(scores)
        verdict = "matches" if overall >= SIMILARITY_TARGET else "below"
        self.lines.append(f"Compared with {reference.name}:")
        self.lines.append(f"similarity: {overall:.2f} (target {SIMILARITY_TARGET:.2f}: {verdict})")
        for pair in pairs:
            frame = frames[pair.index]
            comparison = pair.comparison
            where = f"frame {pair.index + 1}/{len(frames)}: " if len(frames) > 1 else ""
            source = f" vs {pair.source}" if pair.source else ""
            if len(pairs) > 1 or source:
                self.lines.append(f"- {where}similarity {comparison.similarity:.2f}{source}")
            if comparison.note:
                self.lines.append(f"  ({comparison.note})")
            if comparison.regions:
                # Capture pixels -> CSS pixels of the page (device pixel ratio, scroll, element position).
                boxes = [
                    box.shifted(0, pair.offset_y).shifted(frame.origin_x, frame.scroll_y, frame.scale)
                    for box in comparison.regions
                ][:MAX_LISTED_REGIONS]
                listed = "; ".join(f"{n}) {box}" for n, box in enumerate(boxes, start=1))
                self.lines.append(f"  regions that differ, largest first (page px): {listed}")
            if comparison.similarity < SIMILARITY_TARGET:
                label = f"{where}diff vs {reference.name}: magenta = differs, red boxes = regions above"
                self.pictures.append((render_diff(pair.capture, comparison), label))
                self.pictures.append((png_from_array(pair.reference), f"{where}reference {reference.name}{source}"))
        missing = [str(i + 1) for i in range(len(frames)) if i not in {pair.index for pair in pairs}]
        if missing:
            self.lines.append(f"- frames {', '.join(missing)}: the reference ends above them (not compared)")
        if all(score >= SIMILARITY_TARGET for score in scores):
            self.lines.append("At or above the target: no diff image sent.")

    def result(self) -> ToolResult:
        per_image = min(PER_IMAGE_TOKENS, SCREENSHOT_TOKEN_BUDGET // max(1, len(self.pictures)))
        images: list[Image] = []
        lines = [*self.lines, *self.picture_lines]
        for png, label in self.pictures:
            image = _encode(png, label, per_image)
            digest = hashlib.sha256(image.data).hexdigest()
            earlier = self.shown.get(digest)
            if earlier is not None:
                lines.append(f"- {label}: identical to the picture already shown as '{earlier}' (not sent again)")
                continue
            self.shown[digest] = label
            scaled = " (downscaled)" if self.full_page and image.width < self.width else ""
            lines.append(f"- {label}: {image.width}x{image.height}{scaled}")
            images.append(image)
        if self.full_page and self.page_height > self.height * 4:
            lines.append("The page is tall, so detail is lost: use scroll_frames to see it at full size.")
        return ToolResult(text="\n".join(lines), images=images)
