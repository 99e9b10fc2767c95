"""A registered key is hidden also in the forms a tool result can carry it in: base64 (at any alignment,
wrapped or not), percent-encoded (either case of hex, any characters encoded), without its ``sk-`` prefix,
and split by whitespace or newlines. Through the real CLI: the session file and the json output."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from urllib.parse import quote

import pytest

from kimicode.security import redact as r
from tests.clirun import run_cli
from tests.fake_llm import FakeLLM, Reply, ToolCall

KEY = "sk-Zq8Jx2Lm4Np6Rt8Vw0Yb3Dc5Fg7Hk9"


def percent_all(text: str, upper: bool) -> str:
    return "".join(f"%{ord(c):02X}" if upper else f"%{ord(c):02x}" for c in text)


def derived_forms(key: str) -> dict[str, str]:
    raw = key.encode()
    forms = {
        "plain": key,
        "no-prefix": key.removeprefix("sk-"),
        "percent-upper": percent_all(key, True),
        "percent-lower": percent_all(key, False),
        "percent-mixed": key[:10] + percent_all(key[10:20], False) + key[20:],
        "newline-split": key[:9] + "\n" + key[9:21] + "\n  " + key[21:],
        "space-split": " ".join(key[i : i + 4] for i in range(0, len(key), 4)),
        "url-quoted": quote(f"token={key}&x=1", safe=""),
    }
    for pad in range(3):
        blob = base64.b64encode(b"P" * pad + b'{"api_key": "' + raw + b'"}').decode()
        forms[f"base64-{pad}"] = blob
        forms[f"base64-{pad}-wrapped"] = "\n".join(blob[i : i + 20] for i in range(0, len(blob), 20))
        forms[f"base64url-{pad}"] = base64.urlsafe_b64encode(b"Q" * pad + raw + b"\xfb\xff").decode()
    return forms


def secret_parts(key: str) -> list[str]:
    """What must not remain anywhere: the key, its body, and its encodings (long enough to mean the key)."""
    body = key.removeprefix("sk-")
    parts = [body[4:-4]]
    for pad in range(3):
        blob = base64.b64encode(b"P" * pad + key.encode()).decode()
        parts.append(blob[4:-4])
    parts.append(percent_all(body, True)[12:-12])
    parts.append(percent_all(body, False)[12:-12])
    return parts


@pytest.mark.parametrize("name", sorted(derived_forms(KEY)))
def test_each_derived_form_is_redacted(name: str) -> None:
    r.register(KEY)
    text = f"before {derived_forms(KEY)[name]} after"
    out = r.redact(text)
    assert "[redacted]" in out, out
    flat = "".join(out.split())
    for part in secret_parts(KEY):
        assert part not in flat, (name, out)
    assert out.startswith("before ") and out.endswith(" after")


def test_ordinary_text_near_a_key_stays() -> None:
    r.register(KEY)
    text = "base64 of hello: aGVsbG8=\npercent: a%20b\nsk- is a prefix\n"
    assert r.redact(text) == text


def test_derived_forms_never_reach_the_session_file_or_json_output(
    fake_llm: FakeLLM, home: Path, workspace: Path
) -> None:
    forms = derived_forms(KEY)
    (workspace / "leak.txt").write_text("\n".join(f"{name}: {form}" for name, form in forms.items()) + "\n")
    fake_llm.script(Reply(tool_calls=[ToolCall("view", {"path": "leak.txt"})]), Reply(content="seen it"))
    proc = run_cli(
        ["-p", "look", "--output-format", "json"],
        home=home,
        cwd=workspace,
        base_url=fake_llm.base_url,
        env_extra={"KIMI_API_KEY": KEY},
    )
    assert proc.returncode == 0, proc.stderr
    # The model itself is sent the real text (it needs files as they are); what is written down is not.
    sent = fake_llm.chat_requests[1].tool_results()[0]["content"]
    assert forms["base64-1"][:40] in sent
    [session] = list((home / "sessions").rglob("*.jsonl"))
    written = {"session": session.read_text(), "stdout": proc.stdout}
    json.loads(proc.stdout.strip().splitlines()[-1])  # the json output is still json
    for where, text in written.items():
        flat = "".join(json.loads(json.dumps(text)).split()).replace("\\n", "")
        for part in secret_parts(KEY):
            assert part not in flat, (where, part)
    assert "[redacted]" in written["session"]
