"""The browser behind `screenshot` stays inside the boundary: a workspace page cannot pull files from outside
the workspace, nor reach cloud metadata or the private network, directly or through a redirect.

Each page here tells on itself: whatever it loads makes a synchronous request to a listener the test owns
(finished before the page's load event, so before the picture), and the secret page is solid red, so
the picture the model gets shows it if it was loaded. Private and metadata addresses live on the loopback
of a network namespace the test makes (tests/security/netns.py): no packet leaves the machine.
"""

from __future__ import annotations

import base64
import io
import shutil
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.clirun import run_cli, write_home_config
from tests.fake_llm import FakeLLM, Reply, ToolCall
from tests.security.netns import NETNS_AVAILABLE, run_in_netns

pytestmark = pytest.mark.skipif(shutil.which("chromium") is None, reason="no Chromium on this machine")

SECRET_RED = (255, 0, 0)


class Listener:
    """Counts requests by path on 127.0.0.1."""

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        hits = self.hits

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server naming
                hits[self.path] += 1
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Access-Control-Allow-Origin", "*")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def listener() -> Iterator[Listener]:
    found = Listener()
    yield found
    found.server.shutdown()


def ping_script(port: int) -> str:
    return (
        "<script>function ping(p){var x=new XMLHttpRequest();"
        f"x.open('GET','http://127.0.0.1:{port}/'+p,false);try{{x.send()}}catch(e){{}}}}</script>"
    )


def red_pixels(png_base64: str) -> int:
    import numpy
    from PIL import Image

    image = Image.open(io.BytesIO(base64.b64decode(png_base64))).convert("RGB")
    return int((numpy.asarray(image) == SECRET_RED).all(axis=2).sum())


def images_sent(fake_llm: FakeLLM) -> list[str]:
    found = []
    for request in fake_llm.chat_requests:
        for message in request.messages:
            content = message.get("content")
            if isinstance(content, list):
                found += [p["image_url"]["url"].split(",", 1)[1] for p in content if p.get("type") == "image_url"]
    return found


def test_a_workspace_page_cannot_show_files_from_outside_the_workspace(
    fake_llm: FakeLLM, listener: Listener, tmp_path: Path
) -> None:
    home = tmp_path / "kimihome"
    write_home_config(home, "retry_base_delay = 0.01\n")
    userhome = tmp_path / "userhome"  # the HOME the CLI runs with (tests/clirun.py)
    (userhome / ".ssh").mkdir(parents=True)
    ping = ping_script(listener.port)
    secret = userhome / ".ssh" / "id_rsa.html"
    secret.write_text(f"<html><body style='margin:0;background:rgb(255,0,0)'>{ping}<script>ping('secret')</script>"
                      "SECRET-KEY-MARKER</body></html>")
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copy(_png(tmp_path), outside / "x.png")
    workspace = tmp_path / "ws"
    (workspace / "docs").mkdir(parents=True)
    shutil.copy(_png(tmp_path), workspace / "docs" / "pic.png")
    (workspace / "docs" / "inner.html").write_text(f"<html><body>{ping}<script>ping('inner')</script></body></html>")
    (workspace / "docs" / "link.html").symlink_to(secret)  # inside by name, outside in fact
    (workspace / "docs" / "preview.html").write_text(
        f"<html><body style='margin:0;background:#fff'>{ping}"
        f"<iframe src='{secret.as_uri()}' style='width:600px;height:300px;border:0'></iframe>"
        "<iframe src='link.html' style='width:600px;height:300px;border:0'></iframe>"
        "<iframe src='inner.html'></iframe>"
        f"<img src='{(outside / 'x.png').as_uri()}' onload=\"ping('outside-image')\">"
        "<img src='pic.png' onload=\"ping('inside-image')\">"
        "</body></html>"
    )
    fake_llm.script(
        Reply(tool_calls=[ToolCall("screenshot", {"target": "docs/preview.html"})]),
        Reply(content="done"),
    )
    proc = run_cli(["-p", "look at the preview"], home=home, cwd=workspace, base_url=fake_llm.base_url, timeout=120)
    assert proc.returncode == 0, proc.stderr
    # The workspace's own frame and image loaded (the page was rendered and can tell)...
    assert listener.hits["/inner"] == 1 and listener.hits["/inside-image"] == 1, listener.hits
    # ...the file outside it, directly or through a link, did not.
    assert listener.hits["/secret"] == 0 and listener.hits["/outside-image"] == 0, listener.hits
    images = images_sent(fake_llm)
    assert len(images) == 1 and red_pixels(images[0]) == 0


def _png(folder: Path) -> Path:
    """A small green PNG."""
    from PIL import Image

    path = folder / "green.png"
    if not path.exists():
        Image.new("RGB", (8, 8), (0, 160, 0)).save(path)
    return path


# -- addresses off this machine, in a network namespace ----------------------------------------------------

needs_netns = pytest.mark.skipif(not NETNS_AVAILABLE, reason="cannot make a network namespace here (needs root)")


@needs_netns
@pytest.mark.parametrize("yolo", [False, True], ids=["ask", "yolo"])
def test_metadata_and_private_addresses_stay_unreached_directly_and_by_redirect(yolo: bool) -> None:
    facts = run_in_netns("browser_addresses", {"yolo": yolo})
    assert facts["returncode"] == 0, facts["stderr"]
    hits = facts["hits"]
    # The local server answered (so every redirect and frame below was really attempted)...
    assert hits.get("127.0.0.1:/to-metadata") == 1 and hits.get("127.0.0.1:/to-private") == 1, hits
    assert hits.get("127.0.0.1:/frames.html") == 1 and hits.get("127.0.0.1:/control") == 1, hits
    assert "127.0.0.1:/sneaky" not in hits  # a name resolving to this machine, refused like fetch refuses it
    # ...and nothing reached the metadata address or the private one, with or without -y.
    assert not [key for key in hits if not key.startswith("127.0.0.1:")], hits
    results = facts["results"]
    assert "169.254.169.254" in results[0] and "refused" in results[0]  # the direct screenshot


# -- the policy's side: the screenshot target is read as the browser will read it -------------------------


@pytest.mark.parametrize("target", [
    "http://169.254.169.254/latest/meta-data/", "169.254.169.254:80/latest/meta-data/", "http://[fd00:ec2::254]/",
    "http://0xa9fea9fe/", "http://127.0.0.1%25.example.com/", "http://user@127.0.0.1/",
])
def test_screenshot_targets_off_limits_are_refused_even_with_yolo(target: str, tmp_path: Path) -> None:
    from kimicode.security.policy import Policy
    from kimicode.tools.base import ToolContext
    from kimicode.tools.screenshot import ScreenshotTool

    policy = Policy(workspace=tmp_path, headless=True, yolo=True)
    decision = policy.decide(ScreenshotTool(), {"target": target}, ToolContext(workspace=tmp_path))
    assert decision.action == "deny" and not decision.rememberable, decision


def test_a_private_address_written_as_host_and_port_is_asked_like_fetch(tmp_path: Path) -> None:
    from kimicode.security.policy import Policy
    from kimicode.tools.base import ToolContext
    from kimicode.tools.screenshot import ScreenshotTool

    def decide(**stance: object) -> str:
        policy = Policy(workspace=tmp_path, **stance)  # type: ignore[arg-type]
        return policy.decide(ScreenshotTool(), {"target": "10.0.0.5:8080"}, ToolContext(workspace=tmp_path)).action

    assert decide(yolo=True) == "ask" and decide(headless=True, yolo=True) == "deny"
    assert decide(headless=True, rules=[("allow", "screenshot(http://10.0.0.5:8080/*)", "user config")]) == "allow"
    assert decide(headless=True) == "deny"
    assert decide(headless=True, yolo=True, rules=[]) == "deny"


def test_the_gate_carries_one_request_per_connection_to_a_server_that_keeps_it_open() -> None:
    # A server that ignores "Connection: close" must not receive the browser's next request on a reused
    # proxy connection: that request was judged for another host, and carries its cookies.
    import asyncio
    import socket

    from kimicode.vision.boundary import Boundary
    from kimicode.vision.gate import Gate

    received = bytearray()
    ended = threading.Event()
    server = socket.create_server(("127.0.0.1", 0))

    def keep_open() -> None:
        try:
            connection, _ = server.accept()
            with connection:
                connection.settimeout(30)
                while b"\r\n\r\n" not in received:
                    received.extend(connection.recv(65536))
                connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok")
                while chunk := connection.recv(65536):  # until the gate closes its side
                    received.extend(chunk)
        finally:
            ended.set()

    threading.Thread(target=keep_open, daemon=True).start()
    port = server.getsockname()[1]

    async def two_requests() -> bytes:
        gate = Gate(Boundary().network_problem)
        await gate.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", gate.port)
        writer.write(f"GET http://127.0.0.1:{port}/first HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        writer.write(b"GET http://example.com/second HTTP/1.1\r\nHost: example.com\r\nCookie: other=1\r\n\r\n")
        await writer.drain()
        answer = await reader.read()  # to the end: the gate closes after the first answer
        writer.close()
        await gate.close()
        return answer

    answer = asyncio.run(two_requests())
    assert ended.wait(30)
    server.close()
    assert answer.startswith(b"HTTP/1.1 200 OK") and b"Connection: close" in answer and answer.endswith(b"ok")
    assert b"/first" in received and b"/second" not in received and b"other=1" not in received
