"""Run the scripted server by hand: python -m tests.fake_llm --port 8765 --script replies.json

The script is a JSON list of replies with the Reply field names, e.g.
[{"reasoning": "look first", "tool_calls": [{"name": "bash", "arguments": {"command": "ls"}}]},
 {"content": "done", "fault": {"kind": "rate_limit", "retry_after": 2}}]
"""

from __future__ import annotations

import argparse
import json
import sys
import threading

from tests.fake_llm.script import replies_from_json
from tests.fake_llm.server import FakeLLM


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fake_llm", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0 = any free port)")
    parser.add_argument("--script", help="JSON file: a list of replies")
    parser.add_argument("--model", default="kimi-k2.5")
    parser.add_argument("--usage-style", choices=["moonshot", "openai"], default="moonshot")
    parser.add_argument("--api-key", default=None, help="only this key is accepted (default: any)")
    parser.add_argument("--quiet", action="store_true", help="do not log requests")
    parser.add_argument("--models-style", default="moonshot", help="list models as this server does (wire.MODELS_STYLES)")
    parser.add_argument("--context-window", type=int, default=None, help="refuse requests over this many tokens")
    parser.add_argument("--competent", action="store_true", help="answer like a capable model instead of a script")
    parser.add_argument(
        "--renames-tool-call-ids", action="store_true", help="act as a proxy that gives tool calls ids of its own"
    )
    args = parser.parse_args(argv)

    replies = []
    if args.script:
        try:
            with open(args.script, encoding="utf-8") as handle:
                replies = replies_from_json(json.load(handle))
        except (OSError, ValueError, TypeError) as error:
            print(f"fake_llm: cannot load script {args.script}: {error}", file=sys.stderr)
            return 2
    server = FakeLLM(
        model=args.model,
        usage_style=args.usage_style,
        api_key=args.api_key,
        port=args.port,
        verbose=not args.quiet,
        models_style=args.models_style,
        context_window=args.context_window,
        renames_tool_call_ids=args.renames_tool_call_ids,
    )
    server.script(*replies)
    if args.competent:
        from tests.fake_llm.competent import CompetentModel

        server.responder = CompetentModel()
    print(server.base_url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
