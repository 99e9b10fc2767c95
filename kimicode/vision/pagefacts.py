"""Facts about a rendered page that a picture hides: horizontal overflow and an element's computed style.

Only what is wrong or asked for: overflow is reported when the page really scrolls sideways, naming the
outermost elements that stick out; element facts are given for ``selector`` captures.
"""

from __future__ import annotations

from typing import Any

__all__ = ["MAX_OVERFLOW_ELEMENTS", "overflow_facts", "element_facts"]

MAX_OVERFLOW_ELEMENTS = 5

_OVERFLOW = """
(limit) => {
  const root = document.documentElement;
  const viewport = root.clientWidth;
  const pageWidth = Math.max(root.scrollWidth, document.body ? document.body.scrollWidth : 0);
  if (pageWidth <= viewport + 1) return null;
  const name = (e) => {
    let s = e.tagName.toLowerCase();
    if (e.id) s += '#' + e.id;
    else if (typeof e.className === 'string' && e.className.trim())
      s += '.' + e.className.trim().split(/\\s+/).slice(0, 2).join('.');
    return s;
  };
  const clipped = (e) => {
    for (let p = e.parentElement; p && p !== document.body && p !== root; p = p.parentElement) {
      const st = getComputedStyle(p);
      if (['hidden', 'clip', 'auto', 'scroll'].includes(st.overflowX)) return true;
    }
    return false;
  };
  const found = [];
  const reported = [];
  for (const e of document.body ? document.body.querySelectorAll('*') : []) {
    if (reported.some(r => r.contains(e))) continue;
    const st = getComputedStyle(e);
    if (st.position === 'fixed' || st.display === 'none') continue;
    const r = e.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;
    if ((r.right > viewport + 1 || r.left < -1) && !clipped(e)) {
      reported.push(e);
      found.push([name(e), Math.round(r.left + scrollX), Math.round(r.top + scrollY), Math.round(r.width),
                  st.width]);
      if (found.length >= limit) break;
    }
  }
  return {viewport, pageWidth, found};
}
"""

_ELEMENT = """
(e) => {
  const r = e.getBoundingClientRect();
  const st = getComputedStyle(e);
  const family = st.fontFamily.split(',')[0].trim();
  return {
    box: [Math.round(r.left + scrollX), Math.round(r.top + scrollY), Math.round(r.width), Math.round(r.height)],
    font: `${st.fontSize}/${st.lineHeight} ${family} ${st.fontWeight}`,
    color: st.color, background: st.backgroundColor, display: st.display,
    margin: st.margin, padding: st.padding,
  };
}
"""


async def overflow_facts(page: Any) -> list[str]:
    """One line per element that makes the page scroll sideways (outermost first), or nothing."""
    try:
        result = await page.evaluate(_OVERFLOW, MAX_OVERFLOW_ELEMENTS)
    except Exception:  # noqa: BLE001 - facts are extras; a page that navigated away has none
        return []
    if not result:
        return []
    lines = [
        f"horizontal overflow: the page is {result['pageWidth']}px wide in a {result['viewport']}px viewport"
        + (":" if result["found"] else " (no single element found)")
    ]
    for name, x, y, width, css_width in result["found"]:
        lines.append(f"  {name} at x={x} y={y} is {width}px wide (css width {css_width})")
    return lines


async def element_facts(element: Any, name: str) -> str:
    """One line: the element's box in page coordinates and its computed size, font and colours."""
    try:
        facts = await element.evaluate(_ELEMENT)
    except Exception:  # noqa: BLE001
        return ""
    x, y, width, height = facts["box"]
    parts = [f"element {name}: x={x} y={y} w={width} h={height}", f"font {facts['font']}", f"color {facts['color']}"]
    if facts["background"] not in ("rgba(0, 0, 0, 0)", "transparent"):
        parts.append(f"background {facts['background']}")
    if facts["margin"] != "0px":
        parts.append(f"margin {facts['margin']}")
    if facts["padding"] != "0px":
        parts.append(f"padding {facts['padding']}")
    return "; ".join(parts)
