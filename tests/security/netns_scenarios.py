"""Scenarios run inside the network namespace tests/security/netns.py makes (never call these directly:
outside it, the addresses they listen on would be the machine's real network)."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import tempfile
import threading
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.security.netns import NETNS_ADDRESSES, NETNS_V6_ADDRESSES

Route = Callable[[BaseHTTPRequestHandler], None]


class _V6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6


def listen(address: str, port: int, hits: Counter[str], routes: dict[str, Route] | None = None) -> int:
    """An HTTP server on address:port counting requests as "address:path"; returns the port."""
    routes = routes or {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server naming
            hits[f"{address}:{self.path}"] += 1
            route = routes.get(self.path)
            if route is not None:
                route(self)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"reached")

        def log_message(self, *args: object) -> None:
            pass

    server = (_V6Server if ":" in address else ThreadingHTTPServer)((address, port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return int(server.server_address[1])


def listen_everywhere(hits: Counter[str]) -> None:
    for address in (*NETNS_ADDRESSES, *NETNS_V6_ADDRESSES):
        listen(address, 80, hits)


def redirect(location: str) -> Route:
    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(302)
        handler.send_header("Location", location)
        handler.end_headers()

    return answer


def page(html: str) -> Route:
    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/html")
        handler.end_headers()
        handler.wfile.write(html.encode())

    return answer


def browser_addresses(args: dict[str, Any]) -> dict[str, Any]:
    """screenshot: the metadata address directly, local pages redirecting to it and to a private address,
    and a local page whose frames and images name them (also by a name and a spelling that resolve there)."""
    from tests.clirun import run_cli, write_home_config
    from tests.fake_llm import FakeLLM, Reply, ToolCall

    hits: Counter[str] = Counter()
    listen_everywhere(hits)
    port_box: list[int] = []
    frames = lambda: (  # noqa: E731 - needs the port, known once the server listens
        "<html><body>"
        "<iframe src='http://169.254.169.254/latest/meta-data/frame'></iframe>"
        "<iframe src='http://meta.example.com/named'></iframe>"
        "<iframe src='http://0xa9fea9fe/hex'></iframe>"
        "<img src='http://10.0.0.5/img'><img src='http://[fd00:ec2::254]/v6'>"
        "<img src='http://100.100.100.200/alibaba'><img src='http://intranet.example.com/named'>"
        # A name this namespace resolves to this machine: Chromium must not look it up itself.
        f"<img src='http://sneaky.example.com:{port_box[0]}/sneaky'>"
        "<img src='/control'></body></html>"
    )
    routes = {
        "/to-metadata": redirect("http://169.254.169.254/latest/meta-data/"),
        "/to-private": redirect("http://10.0.0.5/admin"),
        "/frames.html": lambda handler: page(frames())(handler),
    }
    port = listen("127.0.0.1", 0, hits, routes)
    port_box.append(port)
    local = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as scratch, FakeLLM() as fake_llm:
        home = Path(scratch) / "kimihome"
        write_home_config(home, "retry_base_delay = 0.01\n")
        workspace = Path(scratch) / "ws"
        workspace.mkdir()
        fake_llm.script(
            Reply(tool_calls=[ToolCall("screenshot", {"target": "http://169.254.169.254/latest/meta-data/"})]),
            Reply(tool_calls=[ToolCall("screenshot", {"target": f"{local}/to-metadata"})]),
            Reply(tool_calls=[ToolCall("screenshot", {"target": f"{local}/to-private"})]),
            Reply(tool_calls=[ToolCall("screenshot", {"target": f"{local}/frames.html"})]),
            Reply(content="done"),
        )
        flags = ["-y"] if args.get("yolo") else []
        proc = run_cli(["-p", *flags, "look"], home=home, cwd=workspace, base_url=fake_llm.base_url, timeout=240)
        results = [str(m.get("content")) for m in fake_llm.chat_requests[-1].messages if m.get("role") == "tool"]
    return {"returncode": proc.returncode, "stderr": proc.stderr[-3000:], "hits": dict(hits), "results": results}


def fetch_spellings(args: dict[str, Any]) -> dict[str, Any]:
    """Each URL through Policy.decide (headless with -y, and with a rule naming its host) and through the
    real fetch tool."""
    from kimicode.security.policy import Policy
    from kimicode.tools.base import ToolContext
    from kimicode.tools.fetch import FetchTool

    hits: Counter[str] = Counter()
    listen_everywhere(hits)
    listen("127.0.0.1", 80, hits)
    workspace = Path(tempfile.mkdtemp())
    ctx = ToolContext(workspace=workspace)
    tool = FetchTool()
    outcome: dict[str, Any] = {}
    for url in args["urls"]:
        yolo = Policy(workspace=workspace, headless=True, yolo=True).decide(tool, {"url": url}, ctx)
        rule = f"fetch({url.split('/')[0]}//{url.split('/')[2]}/*)"  # names the host as the URL writes it
        named = Policy(workspace=workspace, headless=True, yolo=True, rules=[("allow", rule, "user config")])
        ruled = named.decide(tool, {"url": url}, ctx)
        try:
            result = asyncio.run(tool.run({"url": url}, ctx))
            told = [result.is_error, result.text[:300]]
        except Exception as exc:  # noqa: BLE001 - reported, so one URL does not hide the others
            told = [True, f"crashed: {exc!r}"]
        outcome[url] = {"yolo": [yolo.action, yolo.reason], "ruled": [ruled.action, ruled.reason], "tool": told}
    try:
        socket.getaddrinfo("nowhere.example.com", 80)
        lookup = "resolved"
    except socket.gaierror as exc:
        lookup = f"failed: {exc}"
    return {"outcome": outcome, "hits": dict(hits), "lookup": lookup}


if __name__ == "__main__":
    scenario = {"browser_addresses": browser_addresses, "fetch_spellings": fetch_spellings}[sys.argv[1]]
    print(json.dumps(scenario(json.loads(sys.argv[2]))))
