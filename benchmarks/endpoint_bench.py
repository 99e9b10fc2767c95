"""What the endpoint profile costs, and how long verify-endpoint takes against the scripted server.

    python benchmarks/endpoint_bench.py [--runs 5]

Prints medians: building and serialising one request with the endpoint profile's field choices against a
body built with every field unconditionally (the way requests were built before profiles), for short and
long histories, the profile's share of that; the one-time GET /models probe a run against an unknown
endpoint makes; and `kimicode verify-endpoint` wall time against the scripted server.
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


def build_cost(runs: int) -> None:
    print("request building, median µs (build + json.dumps)")
    for base_url in ("https://api.moonshot.ai/v1", "http://127.0.0.1:8080/v1"):
        config = Config(base_url=base_url, model="kimi-k2.5")
        client = ChatClient(config, profile_for("kimi-k2.5"), EndpointProfile(base_url))
        for steps in (1, 200):
            messages = history(steps)
            ours = median_us(
                lambda: json.dumps(client.build_body(messages, [], thinking=True, max_tokens=4096, session_id="s")),
                runs * 40,
            )
            plain = median_us(lambda: json.dumps(unconditional_body("kimi-k2.5", messages, True)), runs * 40)
            from kimicode.llm.client import _optional_fields

            body = client.build_body(messages, [], thinking=True, max_tokens=4096, session_id="s")
            scan = median_us(lambda: _optional_fields(body), runs * 40)
            print(f"  {base_url:<28} {2 * steps + 1:>4} messages: profile {ours:8.1f}  unconditional {plain:8.1f}"
                  f"  ratio {ours / plain:4.2f}  (field scan {scan:.1f})")


def probe_cost(runs: int) -> None:
    with FakeLLM(models_style="llama.cpp") as server:
        samples = []
        for _ in range(runs * 4):
            started = time.perf_counter()
            fetch_models(server.base_url)
            samples.append((time.perf_counter() - started) * 1000)
    print(f"GET /models probe (once per run, loopback): median {statistics.median(samples):.2f} ms")


def verify_time(runs: int) -> None:
    walls, battery = [], []
    with FakeLLM(context_window=16384) as server:
        server.responder = CompetentModel()
        for _ in range(runs):
            home = Path(tempfile.mkdtemp()) / "home"
            started = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, "-m", "kimicode", "verify-endpoint"], env=cli_env(home, server.base_url),
                capture_output=True, text=True, cwd=REPO,
            )
            walls.append(time.perf_counter() - started)
            if proc.returncode != 0:
                raise SystemExit(proc.stdout + proc.stderr)
            battery.append(float(proc.stdout.strip().splitlines()[-1].rsplit("(", 1)[1].split(" s")[0]))
    print(f"verify-endpoint against the scripted server: wall median {statistics.median(walls):.2f} s "
          f"(the 15 checks themselves {statistics.median(battery):.2f} s)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    build_cost(args.runs)
    probe_cost(args.runs)
    verify_time(args.runs)


if __name__ == "__main__":
    main()
