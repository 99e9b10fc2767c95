"""The decision for a page reached by a tool: `fetch` of a URL, `screenshot` of a URL or a local file.

Invariants:
- A URL is read by the one parser the tools use (urls.py), and a name is judged on the address it resolves
  to; that lookup is pinned, so the tool connects to the address decided on here.
- Cloud metadata addresses are always refused, whatever the rules or -y say.
- The private network and this machine's other addresses open only to a rule naming the address; -y does
  not reach them. A page on this machine's loopback runs unasked.
- A local file shown in the browser is decided as a `view` of that file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from kimicode.security.decision import Action, Decision, allow
from kimicode.security.judge import WITH_Y, Judge, allowed_by
from kimicode.tools.base import Tool, ToolContext


def decide_screenshot(judge: Judge, tool: Tool, args: dict[str, Any], ctx: ToolContext) -> Decision:
    from kimicode.vision.browser import resolve_target
    from kimicode.vision.errors import VisionError

    target = str(args.get("target") or "").strip()
    if not target:
        return allow("no target to check")
    try:
        url = resolve_target(target, ctx.workspace)  # what the browser will open, read the same way
    except VisionError:
        return allow("no page to open")  # the tool reports the missing file
    parts = urlsplit(url)
    if parts.scheme == "file":
        local = Path(os.path.expanduser(target)) if "://" not in target else Path(parts.path)
        return judge.path(tool.name, local if local.is_absolute() else ctx.workspace / local, ctx.workspace, False)
    if parts.scheme in ("http", "https"):
        return _network(judge, tool, url, "opens a page")
    if parts.scheme in ("data", "about"):
        # A page written inline: the browser's gate and file route judge whatever it loads.
        return allow("a page given inline")
    for kind in (Action.DENY, Action.ASK):
        rule = judge.rules.find(kind, tool.name, url=target)
        if rule is not None:
            return judge.by_rule(rule)
    rule = judge.rules.find(Action.ALLOW, tool.name, url=target)
    return judge.ask_unless(rule, f"opens a {parts.scheme or 'local'}: page", f"{WITH_Y} or a screenshot(URL) rule")


def decide_fetch(judge: Judge, tool: Tool, args: dict[str, Any]) -> Decision:
    url = str(args.get("url") or "").strip()
    if not url:
        return allow("no URL to check")  # the tool itself reports the empty URL
    scheme = urlsplit(url).scheme
    if scheme not in ("http", "https"):
        return Decision(
            Action.DENY,
            f"fetch reads http and https URLs only, not {scheme or 'this'}: (local files: use view)",
            "",
            False,
        )
    return _network(judge, tool, url, "reads a page")


def _network(judge: Judge, tool: Tool, url: str, doing: str) -> Decision:
    """A URL reached over the network (fetch, screenshot)."""
    from kimicode.security import urls
    from kimicode.security.network import KIND_TEXT, LOCAL_ADDRESSES, NON_PUBLIC

    try:
        target = urls.parse(url)
    except urls.UrlError as exc:
        return Decision(Action.DENY, f"{url!r} is refused: {exc}", "", False)
    host = target.host
    kind = target.kind
    if kind == "metadata":
        return Decision(Action.DENY, f"{doing} on {host}, {KIND_TEXT['metadata']}: always refused", "", False)
    for action in (Action.DENY, Action.ASK):
        rule = judge.rules.find_url(action, tool.name, url, target.url)
        if rule is not None:
            return judge.by_rule(rule)
    if kind == "name":
        addresses = urls.resolve_now(target)
        problem = urls.connect_problem(target, addresses) if addresses else ""
        if problem:  # unresolvable names go on: the tool says so when it tries
            return Decision(Action.DENY, f"{doing} on {host}: refused, {problem}", "", False)
    elif kind == "loopback" and (not target.literal or host in LOCAL_ADDRESSES):
        addresses = () if target.literal else urls.resolve_now(target)
        problem = urls.connect_problem(target, addresses) if addresses else ""
        if problem:  # app.localhost answered by something other than this machine
            return Decision(Action.DENY, f"{doing} on {host}: refused, {problem}", "", False)
        return allow("a page on this machine")
    elif kind in NON_PUBLIC or kind == "loopback":
        # -y does not reach here: the private network is what a hostile page or prompt aims at. Only
        # a rule that names the address opens it; otherwise ask every time.
        rule = judge.rules.find_url(Action.ALLOW, tool.name, url, target.url, patterned=True)
        if rule is not None:
            return allowed_by(rule)
        why = f"{doing} on {host}, an address on {KIND_TEXT[kind]}"
        if judge.headless:
            only = f"only a rule such as {tool.name}({target.scheme}://{target.netloc}/*) allows it"
            return Decision(Action.DENY, f"{why}; {only}", "", False)
        return Decision(Action.ASK, why, "", False)
    rule = judge.rules.find_url(Action.ALLOW, tool.name, url, target.url)
    return judge.ask_unless(rule, f"{doing} on {host}, off this machine", f"{WITH_Y} or a {tool.name}(URL) rule")
