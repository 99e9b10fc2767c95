"""A real `kimicode serve` on a loopback port, for the server, SDK and browser tests."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2

from tests.clirun import REPO, cli_env

TIMEOUT = 60.0


@dataclass
class Server:
    proc: subprocess.Popen[str]
    url: str
    token: str
    login_url: str
    lines: list[str] = field(default_factory=list)

    def client(self, **kwargs: Any) -> httpx2.Client:
        headers = {"authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        return httpx2.Client(base_url=self.url, headers=headers, timeout=TIMEOUT, **kwargs)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode


def start_server(home: Path, workspaces: list[Path], base_url: str, *args: str, command: str = "serve") -> Server:
    argv = [sys.executable, "-m", "kimicode", command, "--port", "0", *args]
    for ws in workspaces:
        argv += ["--workspace", str(ws)]
    if command == "web":
        argv.append("--no-browser")
    proc = subprocess.Popen(
        argv, cwd=workspaces[0], env=cli_env(home, base_url), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    lines = [proc.stdout.readline() for _ in range(3)]
    text = "".join(lines)
    if proc.poll() is not None or "login" not in text:
        proc.kill()
        raise AssertionError(f"the server did not start: {text}{proc.stderr.read() if proc.stderr else ''}")
    url = re.search(r"listening on (http://\S+)", text)
    token = re.search(r"token (\S+)", text)
    login = re.search(r"open (http://\S+)", text)
    assert url and token and login, text
    return Server(proc, url.group(1), token.group(1), login.group(1), lines)


def read_events(
    client: httpx2.Client, sid: str, until: Callable[[dict[str, Any]], bool], after: int | None = None,
    last_event_id: int | None = None,
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(id, event) from the session's SSE stream, until an event ``until`` accepts (included) or the turn's
    result (so a test waiting for something that never comes fails instead of hanging)."""
    headers = {"last-event-id": str(last_event_id)} if last_event_id is not None else {}
    params = {"after": str(after)} if after is not None else {}
    with client.stream("GET", f"/sessions/{sid}/events", headers=headers, params=params) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        event_id = 0
        for line in response.iter_lines():
            if line.startswith("id: "):
                event_id = int(line[4:])
            elif line.startswith("data: "):
                event = json.loads(line[6:])
                yield event_id, event
                if until(event) or is_result(event):
                    return


def gone(pid: int) -> bool:
    """The process has ended (exited, or a zombie waiting for its parent)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"


def is_result(event: dict[str, Any]) -> bool:
    return event.get("type") == "result"


__all__ = ["REPO", "Server", "gone", "is_result", "read_events", "start_server"]
