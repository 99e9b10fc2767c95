"""`kimicode serve`: time from `POST /sessions/{id}/messages` to the first `text_delta` on the session's SSE
stream, against the model's own first token (target: at most 20 ms more, as for ACP); then 20 sessions
streaming at once: events per second, p95 of request → first event and request → result, RSS per session.

The server is a real `kimicode serve` subprocess on a loopback port, the model the scripted server (every
request answered after the same delay). The model's first token is measured with a plain streaming
request (benchmarks/acp_latency.py's), interleaved with the turns so both see the same load; the first
turn is the warm-up, printed apart. RSS is the server process's VmRSS after the 20 sessions ran, minus
before they were created, divided by 20.

    python benchmarks/serve_latency.py [TURNS=20] [DELAY_MS=100] [SESSIONS=20]
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import httpx2  # noqa: E402

from benchmarks.acp_latency import model_first_token  # noqa: E402
from benchmarks.harness import check_runs, machine_line, stats, target_line  # noqa: E402
from tests.clirun import write_home_config  # noqa: E402
from tests.fake_llm import FakeLLM, Reply  # noqa: E402
from tests.webserver import Server, start_server  # noqa: E402

TARGET_MS = 20.0
REPLY = "Hello from the model, streamed in small pieces so that a client sees it arrive. " * 2


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def follow(server: Server, sid: str, arrivals: queue.Queue[tuple[float, dict[str, object]]]) -> None:
    """Every event of the session, with the time it arrived, until the stream closes."""
    try:
        with server.client() as client, client.stream("GET", f"/sessions/{sid}/events") as response:
            for line in response.iter_lines():
                if line.startswith("data: "):
                    arrivals.put((time.perf_counter(), json.loads(line[6:])))
    except httpx2.HTTPError:
        return  # the server stopped at the end of the run


def first_event_latency(server: Server, base_url: str, turns: int) -> tuple[list[float], list[float]]:
    arrivals: queue.Queue[tuple[float, dict[str, object]]] = queue.Queue()
    direct: list[float] = []
    firsts: list[float] = []
    with server.client() as api:
        sid = api.post("/sessions", json={"workspace": str(Path.cwd())}).json()["id"]
        threading.Thread(target=follow, args=(server, sid, arrivals), daemon=True).start()
        time.sleep(0.3)  # the user typing the first message
        for turn in range(turns):
            direct.append(model_first_token(base_url))
            started = time.perf_counter()
            api.post(f"/sessions/{sid}/messages", json={"text": f"turn {turn}"})
            first = None
            while True:
                at, event = arrivals.get(timeout=60)
                if event["type"] == "text_delta" and first is None:
                    first = at - started
                if event["type"] == "result":
                    break
            assert first is not None
            firsts.append(first)
    return direct, firsts


async def concurrent(server: Server, sessions: int) -> tuple[float, int, list[float], list[float], int]:
    """All sessions send at once; returns wall seconds, events received, per-session seconds to the first
    event and to the result, and the server's RSS growth in KB."""
    limits = httpx2.Limits(max_connections=sessions * 2 + 4, max_keepalive_connections=sessions * 2 + 4)
    headers = {"authorization": f"Bearer {server.token}"}
    async with httpx2.AsyncClient(base_url=server.url, headers=headers, timeout=120, limits=limits) as client:
        before = rss_kb(server.proc.pid)
        ids = [(await client.post("/sessions", json={"workspace": str(Path.cwd())})).json()["id"] for _ in range(sessions)]
        counts = [0] * sessions
        first: list[float] = [0.0] * sessions
        done: list[float] = [0.0] * sessions
        go = asyncio.Event()
        started = 0.0

        async def one(index: int) -> None:
            async with client.stream("GET", f"/sessions/{ids[index]}/events") as response:
                ready.release()
                async for line in response.aiter_lines():
                    if not line.startswith("data: "):
                        continue
                    event = json.loads(line[6:])
                    if not go.is_set():
                        continue  # the session's start-up events
                    counts[index] += 1
                    if not first[index]:
                        first[index] = time.perf_counter() - started
                    if event["type"] == "result":
                        done[index] = time.perf_counter() - started
                        return

        ready = asyncio.Semaphore(0)
        readers = [asyncio.create_task(one(i)) for i in range(sessions)]
        for _ in range(sessions):
            await ready.acquire()
        started = time.perf_counter()
        go.set()
        await asyncio.gather(*(client.post(f"/sessions/{sid}/messages", json={"text": "go"}) for sid in ids))
        await asyncio.gather(*readers)
        wall = max(done)
        return wall, sum(counts), first, done, rss_kb(server.proc.pid) - before


def p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20)[-1] if len(samples) > 1 else samples[0]


def main() -> None:
    turns = check_runs(int(sys.argv[1]) if len(sys.argv) > 1 else 20)
    delay = (float(sys.argv[2]) if len(sys.argv) > 2 else 100.0) / 1000
    sessions = int(sys.argv[3]) if len(sys.argv) > 3 else 20
    with tempfile.TemporaryDirectory() as tmp, FakeLLM() as fake:
        home, ws = Path(tmp) / "home", Path(tmp) / "ws"
        ws.mkdir()
        write_home_config(home, "")
        fake.responder = lambda request: Reply(content=REPLY, delay=delay)
        server = start_server(home, [ws], fake.base_url)
        try:
            os.chdir(ws)
            direct, agent = first_event_latency(server, fake.base_url, turns + 1)
            wall, events, firsts, results, grown = asyncio.run(concurrent(server, sessions))
        finally:
            server.stop()
    model, warm = stats(direct[1:]), stats(agent[1:])
    difference = (warm.median - model.median) * 1000
    print(f"model first token (direct HTTP, server delay {delay * 1000:.0f} ms): {model.show(1000, 1, 'ms')}")
    print(f"POST /messages -> first text_delta on SSE:             {warm.show(1000, 1, 'ms')}")
    print(target_line("server over the model (difference of the medians)", difference, TARGET_MS, "ms"))
    print(f"first turn of the session (warm-up, not in the medians): {agent[0] * 1000:.1f} ms")
    print(f"{sessions} sessions at once: {events} events in {wall:.2f} s = {events / wall:.0f} events/s; "
          f"first event p95 {p95(firsts) * 1000:.0f} ms, result p95 {p95(results) * 1000:.0f} ms "
          f"(median {statistics.median(results) * 1000:.0f} ms); RSS {grown / sessions / 1024:.1f} MB per session")
    print(machine_line())


if __name__ == "__main__":
    main()
