"""fetch: pages as Markdown and PDFs as text from a real local HTTP server, and the attacks on it.

The server runs on 127.0.0.1 (the policy lets fetch read this machine, as screenshot does); names that
resolve here, redirects that leave the origin, endless and compressed bodies are what an attacker would try.
"""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import socket
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from kimicode.security.policy import Policy
from kimicode.tools.base import FETCH_MAX_DOWNLOAD_BYTES, ToolContext, ToolResult
from kimicode.tools.fetch import FetchTool
from tests.clirun import run_cli
from tests.fake_llm import FakeLLM, Reply, ToolCall

ARTICLE = """<!doctype html><html><head><meta charset="utf-8"><title>Deterministic clocks | Dev Notes</title>
<script>window.track = function () { fetch('/beacon') }</script></head><body>
<nav><a href="/">Home</a> <a href="/archive">Archive</a> <a href="/about">About us</a></nav>
<div class="cookie-banner">We use cookies to improve your experience. Accept all</div>
<aside><h3>Popular posts</h3><ul><li><a href="/p/1">Ten Vim tricks</a></li></ul></aside>
<main><article><h1>Fixing flaky tests with deterministic clocks</h1>
<p>Our suite failed <strong>one run in ten</strong>. The culprit was <code>datetime.now()</code> in the cache.</p>
<h2>The fix</h2><ol><li>Introduce a <code>Clock</code> protocol.</li><li>Pass a <code>FakeClock</code> in tests.</li></ol>
<pre><code>def test_expiry(clock):
    clock.advance(2)
    assert cache.get("k") is None
</code></pre>
<table><tr><th>Metric</th><th>Before</th><th>After</th></tr><tr><td>Flaky runs</td><td>10%</td><td>0%</td></tr></table>
<p>See the <a href="https://docs.python.org/3/library/time.html">time docs</a>.</p>
<p>Deterministic tests are reproducible tests, and reproducible tests can be bisected, reviewed and trusted.</p>
</article></main><footer>© 2026 Dev Notes · Privacy · Terms</footer></body></html>"""


def _pdf(text: str) -> bytes:
    from reportlab.pdfgen import canvas

    out = io.BytesIO()
    page = canvas.Canvas(out)
    page.drawString(72, 720, text)
    page.showPage()
    page.drawString(72, 720, "Second page: release notes")
    page.save()
    return out.getvalue()


class Site:
    """A small web site on 127.0.0.1 that counts what was asked of it."""

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self.routes: dict[str, Callable[[BaseHTTPRequestHandler], None]] = {}
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                site.hits[self.path] += 1
                site.hits["host:" + self.headers.get("Host", "")] += 1
                route = site.routes.get(self.path)
                if route is None:
                    send(self, 404, b"<html><title>Not found</title><body><h1>Nothing here</h1></body></html>", "text/html")
                else:
                    route(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def send(handler: BaseHTTPRequestHandler, status: int, body: bytes, content_type: str, **headers: str) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    for name, value in headers.items():
        handler.send_header(name.replace("_", "-"), value)
    handler.end_headers()
    handler.wfile.write(body)


def redirect(location: str) -> Callable[[BaseHTTPRequestHandler], None]:
    return lambda h: send(h, 302, b"", "text/plain", Location=location)


def endless(handler: BaseHTTPRequestHandler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "text/plain")
    handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()
    chunk = b"A" * 65536
    try:
        for _ in range(10_000):  # 640 MB if nobody stops reading
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    except (BrokenPipeError, ConnectionResetError):
        pass


@pytest.fixture
def site() -> Iterator[Site]:
    s = Site()
    s.routes["/article.html"] = lambda h: send(h, 200, ARTICLE.encode(), "text/html; charset=utf-8")
    s.routes["/notes.pdf"] = lambda h: send(h, 200, _pdf("Quarterly report: revenue grew 12 percent"), "application/pdf")
    s.routes["/plain.txt"] = lambda h: send(h, 200, "naïve café\n".encode("latin-1"), "text/plain; charset=latin-1")
    s.routes["/logo.png"] = lambda h: send(h, 200, b"\x89PNG\r\n\x1a\n" + b"\0" * 100, "image/png")
    s.routes["/moved"] = redirect("/article.html")
    s.routes["/loop"] = redirect("/loop")
    s.routes["/endless"] = endless
    bomb = gzip.compress(b"<html><body><p>" + b"0" * (64 * 1024 * 1024) + b"</p></body></html>")
    s.routes["/bomb.html"] = lambda h: send(h, 200, bomb, "text/html", Content_Encoding="gzip")
    yield s
    s.close()


def fetch(url: str, **args: Any) -> ToolResult:
    return asyncio.run(FetchTool().run({"url": url, **args}, ToolContext(workspace=Path.cwd())))


# -- what a user gets -----------------------------------------------------------------------------------


def test_a_page_is_its_main_content_as_markdown(site: Site) -> None:
    result = fetch(f"{site.url}/article.html")
    assert not result.is_error, result.text
    text = result.text
    assert "HTTP 200 · text/html" in text and "title: Deterministic clocks | Dev Notes" in text
    assert "# Fixing flaky tests with deterministic clocks" in text
    assert "## The fix" in text and "`datetime.now()`" in text and "**one run in ten**" in text
    assert "```\ndef test_expiry(clock):\n    clock.advance(2)" in text  # code stays a fenced block
    assert "| Flaky runs | 10% | 0% |" in text.replace("| \n", "|\n")
    assert "[time docs](https://docs.python.org/3/library/time.html)" in text
    for boilerplate in ("cookies", "Popular posts", "Archive", "Privacy", "window.track"):
        assert boilerplate not in text


def test_a_pdf_is_its_text_page_by_page(site: Site) -> None:
    result = fetch(f"{site.url}/notes.pdf")
    assert not result.is_error, result.text
    assert "application/pdf" in result.text
    assert "## Page 1\n\nQuarterly report: revenue grew 12 percent" in result.text
    assert "## Page 2\n\nSecond page: release notes" in result.text


def test_text_keeps_its_charset_and_binary_is_refused(site: Site) -> None:
    assert "naïve café" in fetch(f"{site.url}/plain.txt").text
    png = fetch(f"{site.url}/logo.png")
    assert png.is_error and "image/png" in png.text and "no text to show" in png.text


def test_output_is_cut_at_max_chars_with_a_note(site: Site) -> None:
    result = fetch(f"{site.url}/article.html", max_chars=500)
    body = result.text.split("\n\n", 1)[1]
    assert "[cut at 500 of " in body and "larger max_chars" in body
    assert len(body) < 500 + 200


def test_an_error_status_is_an_error_with_the_page(site: Site) -> None:
    result = fetch(f"{site.url}/missing")
    assert result.is_error and "HTTP 404" in result.text and "Nothing here" in result.text


def test_a_redirect_within_the_site_is_followed(site: Site) -> None:
    result = fetch(f"{site.url}/moved")
    assert not result.is_error
    assert f"(redirected to {site.url}/article.html)" in result.text and "## The fix" in result.text


# -- attacks ----------------------------------------------------------------------------------------------


def test_a_redirect_to_another_origin_is_reported_not_followed(site: Site) -> None:
    other = Site()
    try:
        other.routes["/secret"] = lambda h: send(h, 200, b"internal admin page", "text/plain")
        for target in (f"{other.url}/secret", "http://169.254.169.254/latest/meta-data/", "file:///etc/passwd"):
            site.routes["/hop"] = redirect(target)
            result = fetch(f"{site.url}/hop")
            assert not result.is_error and f"redirects (302) to {target}" in result.text and "not followed" in result.text
            assert "internal admin page" not in result.text
        assert other.hits["/secret"] == 0
    finally:
        other.close()


def test_a_redirect_loop_ends(site: Site) -> None:
    result = fetch(f"{site.url}/loop")
    assert result.is_error and "more than 5 redirects" in result.text


def test_a_name_that_resolves_to_this_machine_is_refused(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    # DNS rebinding: a public-looking name (that a rule or -y allowed) answering with a loopback, private or
    # link-local address must not reach what lives there.
    real = asyncio.base_events.BaseEventLoop.getaddrinfo

    async def rebinding(self: Any, host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        table = {"docs.example.com": "127.0.0.1", "intranet.example.com": "10.1.2.3", "meta.example.com": "169.254.169.254"}
        if host in table:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (table[host], port))]
        return await real(self, host, port, *args, **kwargs)

    monkeypatch.setattr(asyncio.base_events.BaseEventLoop, "getaddrinfo", rebinding)
    for name, why in (("docs.example.com", "this machine"), ("intranet.example.com", "a private network"),
                      ("meta.example.com", "metadata")):
        result = fetch(f"http://{name}:{site.port}/article.html")
        assert result.is_error and f"{name} resolves to" in result.text and why in result.text, result.text
    assert site.hits["/article.html"] == 0


def test_the_machines_own_name_is_refused_but_localhost_works(site: Site) -> None:
    hostname = socket.gethostname()
    addresses = {info[4][0] for info in socket.getaddrinfo(hostname, None)}
    from kimicode.security.network import address_kind

    if all(address_kind(a) == "public" for a in addresses):
        pytest.skip(f"{hostname} resolves to a public address here")
    assert fetch(f"http://{hostname}:{site.port}/article.html").is_error
    assert site.hits["/article.html"] == 0
    local = fetch(f"http://localhost:{site.port}/article.html")
    assert not local.is_error and site.hits[f"host:localhost:{site.port}"] == 1  # the Host header names it


def test_an_endless_body_stops_at_the_download_limit(site: Site) -> None:
    result = fetch(f"{site.url}/endless")
    assert not result.is_error
    assert f"{FETCH_MAX_DOWNLOAD_BYTES:,} bytes" in result.text and "download stopped at 10 MB" in result.text
    assert "[cut at 20,000 of " in result.text


def test_a_compression_bomb_stops_at_the_download_limit(site: Site) -> None:
    result = fetch(f"{site.url}/bomb.html", max_chars=1000)
    assert "download stopped at 10 MB" in result.text and len(result.text) < 2000


def test_a_stalled_server_ends_at_the_time_limit(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    import kimicode.tools.fetch as module

    release = threading.Event()

    def stall(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "text/plain")
        handler.send_header("Content-Length", "100")
        handler.end_headers()
        handler.wfile.write(b"only a little")
        handler.wfile.flush()
        release.wait(10)

    site.routes["/slow"] = stall
    monkeypatch.setattr(module, "TOTAL_TIMEOUT_S", 1.0)
    try:
        result = fetch(f"{site.url}/slow")
    finally:
        release.set()
    assert result.is_error and "gave up after 1 s" in result.text


# -- the policy -------------------------------------------------------------------------------------------


def _decide(url: str, **stance: Any) -> tuple[str, str, bool]:
    policy = Policy(workspace=Path.cwd(), rules=stance.pop("rules", ()), **stance)
    decision = policy.decide(FetchTool(), {"url": url}, ToolContext(workspace=Path.cwd()))
    return decision.action, decision.reason, decision.rememberable


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000/", "http://localhost:3000/docs", "http://[::1]/", "http://app.localhost/"])
def test_pages_on_this_machine_are_read_unasked(url: str) -> None:
    assert _decide(url, headless=True)[0] == "allow"


def test_pages_off_this_machine_ask_and_are_refused_headless() -> None:
    assert _decide("https://docs.python.org/3/")[0] == "ask"
    action, reason, _ = _decide("https://docs.python.org/3/", headless=True)
    assert action == "deny" and "docs.python.org" in reason and "-y" in reason
    assert _decide("https://docs.python.org/3/", headless=True, yolo=True)[0] == "allow"
    rule = [("allow", "fetch(https://docs.python.org/*)", "user config")]
    assert _decide("https://docs.python.org/3/", headless=True, rules=rule)[0] == "allow"
    # The host glob stays in the host: the rule does not cover a look-alike.
    assert _decide("https://docs.python.org.evil.example/3/", headless=True, rules=rule)[0] == "deny"
    assert _decide("https://docs.python.org/3/", yolo=True, rules=[("deny", "fetch(https://docs.python.org/*)", "")])[0] == "deny"


@pytest.mark.parametrize("url", ["http://169.254.1.1/", "http://10.0.0.5/", "http://192.168.1.1/admin",
                                 "http://[fe80::1]/", "http://0.0.0.0:8080/", "http://[::ffff:10.0.0.1]/", "http://100.64.0.1/"])
def test_private_and_link_local_addresses_need_a_rule_even_with_yolo(url: str) -> None:
    action, reason, rememberable = _decide(url, headless=True, yolo=True)
    assert action == "deny" and "only a rule such as fetch(" in reason and not rememberable
    action, _, rememberable = _decide(url, yolo=True)
    assert action == "ask" and not rememberable  # asked every time, never "for the session"
    host = url.split("/")[2]
    assert _decide(url, headless=True, rules=[("allow", f"fetch(http://{host}/*)", "user config")])[0] == "allow"
    assert _decide(url, headless=True, yolo=True, rules=[("allow", "fetch", "user config")])[0] == "deny"


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/x", "gopher://127.0.0.1:6379/_FLUSHALL", "data:text/plain,hi"])
def test_other_schemes_are_refused_even_with_yolo(url: str) -> None:
    action, reason, _ = _decide(url, yolo=True, trusted=True)
    assert action == "deny" and "http and https" in reason


# -- through the real CLI ---------------------------------------------------------------------------------


def test_the_model_reads_a_page_through_the_cli(site: Site, fake_llm: FakeLLM, tmp_path: Path) -> None:
    fake_llm.script(
        Reply(tool_calls=[ToolCall("fetch", {"url": f"{site.url}/article.html"})]),
        Reply(tool_calls=[ToolCall("fetch", {"url": "https://docs.python.org/3/library/time.html"})]),
        Reply(tool_calls=[ToolCall("fetch", {"url": "http://169.254.169.254/latest/meta-data/"})]),
        Reply(content="Read it.", tool_calls=[ToolCall("submit", {"summary": "done"})]),
    )
    workspace = tmp_path / "ws"
    workspace.mkdir()
    proc = run_cli(["-p", "fix the flaky test"], home=tmp_path / "home", cwd=workspace, base_url=fake_llm.base_url)
    assert proc.returncode == 0, proc.stderr
    tools = [t["function"]["name"] for t in fake_llm.requests[0].body["tools"]]
    assert "fetch" in tools and "$web_search" not in tools  # not a Moonshot endpoint
    results = [m for m in fake_llm.requests[3].body["messages"] if m["role"] == "tool"]
    assert "## The fix" in results[0]["content"] and "Popular posts" not in results[0]["content"]
    assert "refused" in results[1]["content"] and "docs.python.org" in results[1]["content"]
    assert "refused" in results[2]["content"] and "169.254.169.254" in results[2]["content"]
    assert "kimicode: refused fetch https://docs.python.org/3/library/time.html" in proc.stderr
    assert site.hits["/article.html"] == 1


@pytest.mark.parametrize("mode", ["instant", "thinking"])
def test_instant_and_thinking_keep_the_swe_toolset(mode: str, fake_llm: FakeLLM, tmp_path: Path) -> None:
    fake_llm.script(Reply(content="ok", tool_calls=[ToolCall("submit", {"summary": "ok"})]))
    workspace = tmp_path / "ws"
    workspace.mkdir()
    proc = run_cli(["-p", "--mode", mode, "hi"], home=tmp_path / "home", cwd=workspace, base_url=fake_llm.base_url)
    assert proc.returncode == 0, proc.stderr
    names = [t["function"]["name"] for t in fake_llm.requests[0].body["tools"]]
    assert names == ["bash", "view", "createfile", "strreplace", "insert", "submit"], json.dumps(names)
