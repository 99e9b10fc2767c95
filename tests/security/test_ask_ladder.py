"""What is neither inside the workspace nor refused outright: an allow rule or -y allows it, a headless run
refuses it naming the way out, an interactive one asks. The reasons are what the user reads, word for word."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from kimicode.security.judge import WITH_Y
from kimicode.security.policy import Policy
from kimicode.tools.base import Tool, ToolContext
from kimicode.tools.fetch import FetchTool
from kimicode.tools.screenshot import ScreenshotTool
from kimicode.tools.view import ViewTool
from tests.security.offline import no_name_lookup

HOST = "collect.invalid"


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path / "userhome"))
    monkeypatch.setattr(socket, "getaddrinfo", no_name_lookup)  # no name is looked up: nothing leaves the machine
    (tmp_path / "kimihome").mkdir()
    (tmp_path / "proj").mkdir()
    (tmp_path / "elsewhere.txt").write_text("x")
    return tmp_path / "proj"


def decide(ws: Path, tool: Tool, args: dict[str, Any], **kw: Any) -> tuple[str, str]:
    decision = Policy(workspace=ws, home=ws.parent / "kimihome", **kw).decide(tool, args, ToolContext(workspace=ws))
    return str(decision.action), decision.reason


CASES = [
    (ViewTool(), "path", "{outside}", "view({outside})", "reads outside the workspace", WITH_Y),
    (
        ScreenshotTool(),
        "target",
        "ftp://files.invalid/x",
        "screenshot(ftp://files.invalid/*)",
        "opens a ftp: page",
        f"{WITH_Y} or a screenshot(URL) rule",
    ),
    (
        FetchTool(),
        "url",
        f"https://{HOST}/page",
        f"fetch(https://{HOST}/*)",
        f"reads a page on {HOST}, off this machine",
        f"{WITH_Y} or a fetch(URL) rule",
    ),
    (
        ScreenshotTool(),
        "target",
        f"https://{HOST}/page",
        f"screenshot(https://{HOST}/*)",
        f"opens a page on {HOST}, off this machine",
        f"{WITH_Y} or a screenshot(URL) rule",
    ),
]


@pytest.mark.parametrize(("tool", "key", "value", "rule", "why", "way_out"), CASES)
def test_rule_then_yolo_then_headless_refusal_then_a_question(
    ws: Path, tool: Tool, key: str, value: str, rule: str, why: str, way_out: str
) -> None:
    outside = str(ws.parent / "elsewhere.txt")
    args = {key: value.format(outside=outside)}
    rule = rule.format(outside=outside)
    ruled = decide(ws, tool, args, headless=True, rules=[("allow", rule, "user config")])
    assert ruled == ("allow", f"allowed by allow {rule} (user config)")
    assert decide(ws, tool, args, headless=True, yolo=True) == ("allow", "yolo")
    assert decide(ws, tool, args, headless=True) == ("deny", f"{why}; {way_out}")
    assert decide(ws, tool, args) == ("ask", why)
