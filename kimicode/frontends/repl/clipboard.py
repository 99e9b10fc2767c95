"""Ctrl-V: the image on the clipboard, saved as a PNG so it can be attached like ``/image``.

Pillow reads the clipboard (``wl-paste`` on Wayland, ``xclip`` on X11, the system API on macOS and
Windows); it is imported only when Ctrl-V is pressed.
"""

from __future__ import annotations

import time
from pathlib import Path

from kimicode.frontends.common.media import is_image_path

PASTE_FOLDER = "pastes"


class ClipboardError(Exception):
    """No image could be taken from the clipboard; the message is one line saying what to do."""


def clipboard_images(home: Path) -> list[Path]:
    """Image files for what the clipboard holds: a copied picture (saved under KIMICODE_HOME/pastes) or
    copied image files."""
    try:
        from PIL import Image, ImageGrab
    except ImportError as exc:  # pillow is a dependency; a broken install still gets one line
        raise ClipboardError(f"cannot read images from the clipboard: {exc}") from None
    try:
        grabbed = ImageGrab.grabclipboard()
    except NotImplementedError:
        raise ClipboardError(
            "pasting an image needs wl-paste (Wayland: wl-clipboard) or xclip (X11); install one, "
            "or attach the file with /image PATH"
        ) from None
    except (ChildProcessError, OSError) as exc:
        raise ClipboardError(f"could not read the clipboard ({exc}); attach the file with /image PATH") from None
    if grabbed is None:
        raise ClipboardError("no image in the clipboard; copy one, or attach a file with /image PATH")
    if isinstance(grabbed, list):  # files copied in a file manager
        files = [Path(name) for name in grabbed if is_image_path(Path(name))]
        if not files:
            raise ClipboardError("the clipboard holds files but no images")
        return files
    if not isinstance(grabbed, Image.Image):
        raise ClipboardError("the clipboard holds no image")
    folder = home / PASTE_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / time.strftime("clipboard-%Y%m%d-%H%M%S.png")
    counter = 1
    while path.exists():
        counter += 1
        path = folder / time.strftime(f"clipboard-%Y%m%d-%H%M%S-{counter}.png")
    grabbed.save(path, format="PNG")
    return [path]
