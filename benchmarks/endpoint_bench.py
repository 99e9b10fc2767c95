"""What the endpoint profile costs, and how long verify-endpoint takes against the scripted server.

    python benchmarks/endpoint_bench.py [--runs 3]

Prints medians with min–max: building and serialising one request with the endpoint profile's field
choices against a body built with every field unconditionally (the way requests were built before
profiles), for short and long histories, interleaved in rounds after a warm-up round (a round's sample is
the median of a batch of builds); the one-time GET /models probe a run against an unknown endpoint makes;
and `kimicode verify-endpoint --json` wall time against the scripted server, with the number of checks it
ran (counted from its output) and their summed time. No target is set for these.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.harness import check_runs, interleaved, machine_line, stats  # noqa: E402
from kimicode.config import Config  # noqa: E402
from kimicode.llm.client import ChatClient  # noqa: E402
from kimicode.llm.endpoint import EndpointProfile  # noqa: E402
from kimicode.llm.models import fetch_models  # noqa: E402
from kimicode.llm.profiles import profile_for  # noqa: E402
from tests.clirun import cli_env  # noqa: E402
from tests.fake_llm import CompetentModel, FakeLLM  # noqa: E402


def history(steps: int) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = [{"role": "system", "content": "You are kimicode. " * 200}]
    for n in range(steps):
        call = {"id": f"bash:{n}", "type": "function", "function": {"name": "bash", "arguments": '{"command": "ls"}'}}
        messages.append({"role": "assistant", "content": "", "tool_calls": [call], "reasoning_content": "look " * 40})
        messages.append({"role": "tool", "tool_call_id": f"bash:{n}", "content": "file.py\n" * 50})
    return messages


def unconditional_body(model: str, messages: list[dict[str, Any]], thinking: bool) -> dict[str, Any]:
    """Every optional field, no questions asked (the shape of a request before endpoint profiles)."""
    return {
        "model": model, "messages": messages, "stream": True, "stream_options": {"include_usage": True},
        "max_completion_tokens": 4096, "temperature": 1.0, "top_p": 0.95, "prompt_cache_key": "s",
        "thinking": {"type": "enabled" if thinking else "disabled"},
    }


def median_us(fn: Any, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1e6)
    return statistics.median(samples)


def measures(client: ChatClient, messages: list[dict[str, Any]]) -> dict[str, Any]:
    """One sample each: the median of 200 builds with the profile, 200 unconditional ones, 200 field scans."""
    from kimicode.llm.request import optional_fields

    body = client.build_body(messages, [], thinking=True, max_tokens=4096, session_id="s")
    return {
        "profile": lambda: median_us(
            lambda: json.dumps(client.build_body(messages, [], thinking=True, max_tokens=4096, session_id="s")), 200
        ),
        "plain": lambda: median_us(lambda: json.dumps(unconditional_body("kimi-k2.5", messages, True)), 200),
        "scan": lambda: median_us(lambda: optional_fields(body), 200),
    }


def build_cost(runs: int) -> None:
    print("request building, µs (build + json.dumps), median of the rounds (min–max)")
    for base_url in ("https://api.moonshot.ai/v1", "http://127.0.0.1:8080/v1"):
        config = Config(base_url=base_url, model="kimi-k2.5")
        client = ChatClient(config, profile_for("kimi-k2.5"), EndpointProfile(base_url))
        for steps in (1, 200):
            messages = history(steps)
            got = interleaved(measures(client, messages), runs)
            ratio = got["profile"].median / got["plain"].median
            print(f"  {base_url:<28} {2 * steps + 1:>4} messages: profile {got['profile'].show()}"
                  f"  unconditional {got['plain'].show()}  ratio {ratio:4.2f}  (field scan {got['scan'].show()})")


def probe_cost(runs: int) -> None:
    with FakeLLM(models_style="llama.cpp") as server:
        samples = []
        for n in range(runs * 4 + 1):
            started = time.perf_counter()
            fetch_models(server.base_url)
            if n:  # the first opens the connection pool's imports: a warm-up
                samples.append((time.perf_counter() - started) * 1000)
    print(f"GET /models probe (once per run, loopback): {stats(samples).show(1.0, 2, 'ms')}")


def verify_time(runs: int) -> None:
    walls, battery, counts = [], [], set()
    with FakeLLM(context_window=16384) as server:
        server.responder = CompetentModel()
        for n in range(runs + 1):
            home = Path(tempfile.mkdtemp()) / "home"
            started = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, "-m", "kimicode", "verify-endpoint", "--json"], env=cli_env(home, server.base_url),
                capture_output=True, text=True, cwd=REPO,
            )
            wall = time.perf_counter() - started
            if proc.returncode != 0:
                raise SystemExit(proc.stdout + proc.stderr)
            checks = json.loads(proc.stdout)["checks"]
            counts.add(len(checks))
            if n:  # run 0 warms the file cache and .pyc files
                walls.append(wall)
                battery.append(sum(float(check["ms"]) for check in checks) / 1000)
    count = "/".join(str(c) for c in sorted(counts))
    print(f"verify-endpoint against the scripted server: wall {stats(walls).show(1.0, 2, 's')}")
    print(f"  its {count} checks themselves (sum of their times): {stats(battery).show(1.0, 2, 's')}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3, help="kept rounds (after one warm-up round)")
    args = parser.parse_args()
    check_runs(args.runs)
    build_cost(args.runs)
    probe_cost(args.runs)
    verify_time(args.runs)
    print(machine_line())


if __name__ == "__main__":
    main()
