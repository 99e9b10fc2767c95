"""The `screenshot` tool: render a URL or local HTML file in headless Chromium and show it to the model."""

from __future__ import annotations

from typing import Any, ClassVar

from kimicode.llm.messages import Image
from kimicode.tools.base import Tool, ToolContext, ToolResult

# All frames of one call together; one frame alone is still capped by the per-image budget (4096).
SCREENSHOT_TOKEN_BUDGET = 24_000
PER_IMAGE_TOKENS = 4096


class ScreenshotTool(Tool):
    name: ClassVar[str] = "screenshot"
    description: ClassVar[str] = (
        "Render a URL or local HTML file in headless Chromium and look at it: check what a page really looks "
        "like after changing it. full_page: the whole page, downscaled; scroll_frames=N: N viewport frames "
        "while scrolling top to bottom (scroll-triggered animations)."
    )
    parameters: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "target": {"type": "string", "description": "URL or local HTML file path"},
            "width": {"type": "integer", "default": 1280},
            "height": {"type": "integer", "default": 800},
            "full_page": {"type": "boolean", "default": False},
            "scroll_frames": {
                "type": "integer",
                "default": 0,
            },
        },
        "required": ["target"],
    }
    read_only: ClassVar[bool] = True

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        from kimicode.vision.browser import session_browser
        from kimicode.vision.errors import VisionError
        from kimicode.vision.images import image_from_png_bytes

        try:
            target = str(args.get("target") or "")
            width = _int_arg(args, "width", 1280)
            height = _int_arg(args, "height", 800)
            full_page = bool(args.get("full_page", False))
            scroll_frames = _int_arg(args, "scroll_frames", 0)
            if full_page and scroll_frames:
                full_page = False  # scrolling frames are viewport-sized by definition
            frames = await session_browser().screenshot(
                target,
                width=width,
                height=height,
                full_page=full_page,
                scroll_frames=scroll_frames,
                workspace=ctx.workspace,
            )
            per_image = min(PER_IMAGE_TOKENS, SCREENSHOT_TOKEN_BUDGET // max(1, len(frames)))
            images: list[Image] = []
            for i, frame in enumerate(frames, start=1):
                if scroll_frames:
                    label = f"frame {i}/{len(frames)} at scrollY={frame.scroll_y}"
                elif full_page:
                    label = f"full page of {target}"
                else:
                    label = f"{target} at {width}x{height}"
                images.append(image_from_png_bytes(bytes(frame), max_tokens=per_image, label=label))
        except VisionError as exc:
            return ToolResult(text=str(exc), is_error=True)
        return ToolResult(text=_describe(target, width, height, full_page, frames, images), images=images)


def _int_arg(args: dict[str, Any], key: str, default: int) -> int:
    from kimicode.vision.errors import VisionError

    value = args.get(key, default)
    if value is None:
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise VisionError(f"{key} must be an integer, got {value!r}") from None


def _describe(target: str, width: int, height: int, full_page: bool, frames: list[Any], images: list[Image]) -> str:
    page_height = max((getattr(f, "page_height", 0) for f in frames), default=0)
    lines = [f"Screenshot of {target} (viewport {width}x{height}, page height {page_height}px)."]
    notes = [f.note for f in frames if getattr(f, "note", "")]
    lines.extend(f"Note: {note}." for note in notes)
    page_errors = [e for f in frames for e in getattr(f, "page_errors", [])]
    if page_errors:
        lines.append("Problems reported by the page:")
        lines.extend(f"- {error}" for error in page_errors)
    if len(images) > 1:
        lines.append(f"{len(images)} frames while scrolling from top to bottom:")
    for image in images:
        scaled = " (downscaled)" if full_page and image.width < width else ""
        lines.append(f"- {image.label}: {image.width}x{image.height}{scaled}")
    if full_page and page_height > height * 4:
        lines.append("The page is tall, so detail is lost: use scroll_frames to see it at full size.")
    return "\n".join(lines)
