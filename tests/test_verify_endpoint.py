"""`kimicode verify-endpoint`: green against a scripted server that behaves, red, with the failing check
named, against one that drops reasoning_content or system messages, re-labels tool-call ids, refuses images,
or truncates silently."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.clirun import run_cli
from tests.fake_llm import CompetentModel, FakeLLM, Reply

REQUIRED_FOR_KIMI = {
    "streaming", "system_prompt", "max_tokens", "sampling", "tool_call", "tool_call_ids", "parallel_tool_calls", "tool_call_json",
    "reasoning_round_trip", "thinking_off", "image_input", "context_overflow",
}


def verify(server: FakeLLM, home: Path, workspace: Path, *args: str) -> tuple[int, dict]:
    proc = run_cli(["verify-endpoint", "--base-url", server.base_url, "--json", *args], home=home, cwd=workspace,
                   timeout=120)
    assert proc.stdout.strip(), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def failing(report: dict) -> set[str]:
    return {check["name"] for check in report["checks"] if check["required"] and not check["ok"]}


def test_green_against_a_server_that_behaves(home: Path, workspace: Path) -> None:
    with FakeLLM(context_window=16384) as server:
        server.responder = CompetentModel()
        code, report = verify(server, home, workspace)
    assert code == 0 and report["ok"] is True
    for check in report["checks"]:
        assert set(check) == {"name", "ok", "required", "ms", "detail"}
        assert isinstance(check["ms"], int) and check["ms"] >= 0 and check["detail"]
    assert {c["name"] for c in report["checks"] if c["required"]} == REQUIRED_FOR_KIMI
    assert all(check["ok"] for check in report["checks"])
    details = {c["name"]: c["detail"] for c in report["checks"]}
    assert "window of 16,384" in details["context_overflow"] and "found" in details["long_context"]


def test_the_table_names_the_failing_check_and_exits_1(home: Path, workspace: Path) -> None:
    with FakeLLM(context_window=16384) as server:
        server.responder = CompetentModel(drop_reasoning=True)
        proc = run_cli(["verify-endpoint", "--base-url", server.base_url], home=home, cwd=workspace, timeout=120)
    assert proc.returncode == 1
    row = next(line for line in proc.stdout.splitlines() if "reasoning_round_trip" in line)
    assert "FAIL" in row and "no reasoning_content" in row
    assert proc.stdout.strip().splitlines()[-1].startswith("15/16 checks passed; required checks failed: reasoning_round_trip")


def test_red_when_the_server_drops_reasoning_content(home: Path, workspace: Path) -> None:
    with FakeLLM(context_window=16384) as server:
        server.responder = CompetentModel(drop_reasoning=True)
        code, report = verify(server, home, workspace)
    assert code == 1 and report["ok"] is False
    assert failing(report) == {"reasoning_round_trip"}


@pytest.mark.parametrize(
    ("fault", "check", "says"),
    [
        # As llama-cpp-python's gemma format does: kimicode's whole prompt (tools, rules) would never arrive.
        ({"drop_system": True}, "system_prompt", "does not reach it"),
        ({"rewrite_tool_call_ids": True}, "tool_call_ids", "changed mid-stream"),
    ],
    ids=["drops-system-messages", "rewrites-tool-call-ids"],
)
def test_red_with_the_failing_check_named_and_why(
    home: Path, workspace: Path, fault: dict[str, bool], check: str, says: str
) -> None:
    with FakeLLM(context_window=16384) as server:
        server.responder = CompetentModel(**fault)
        code, report = verify(server, home, workspace)
    assert code == 1 and failing(report) == {check}
    detail = next(c["detail"] for c in report["checks"] if c["name"] == check)
    assert says in detail


@pytest.mark.parametrize(
    ("model", "server_args", "says"),
    [
        # A Kimi model is trained on ids of the form functions.NAME:IDX: a renamed one is caught by its form
        # and by the answer, which cannot use a result it cannot match to its call.
        ("kimi-k2.5", {}, ["not of the form functions.get_weather:IDX", "does not use the tool result"]),
        # Any other model: by the answer alone.
        ("gemma-3-270m", {"models_style": "llama-cpp-python"}, ["does not use the tool result",
                                                                "I cannot find the result of my tool call"]),
    ],
    ids=["kimi", "other-model"],
)
def test_red_behind_a_proxy_that_renames_tool_call_ids(
    home: Path, workspace: Path, model: str, server_args: dict[str, str], says: list[str]
) -> None:
    # The ids are stable within each stream and the model answers something: only the answer's content,
    # and the ids' form, show that the tool result never reached the model as the result of its call.
    with FakeLLM(model=model, context_window=16384, renames_tool_call_ids=True, **server_args) as server:
        server.responder = CompetentModel(drop_reasoning=model != "kimi-k2.5")
        code, report = verify(server, home, workspace, "--model", model)
    assert code == 1 and failing(report) == {"tool_call_ids"}, report
    detail = next(c["detail"] for c in report["checks"] if c["name"] == "tool_call_ids")
    for words in says:
        assert words in detail


def test_green_tool_call_ids_name_the_value_the_answer_used(home: Path, workspace: Path) -> None:
    with FakeLLM(context_window=16384) as server:
        server.responder = CompetentModel()
        code, report = verify(server, home, workspace)
    assert code == 0
    detail = next(c["detail"] for c in report["checks"] if c["name"] == "tool_call_ids")
    assert "'functions.get_weather:0'" in detail and "the answer used the result" in detail


def test_red_when_the_server_truncates_silently(home: Path, workspace: Path) -> None:
    """No window, no error: a prompt far over the reported window is answered (as Ollama does)."""
    with FakeLLM(models_style="vllm", context_window=None) as server:
        server.responder = CompetentModel()
        code, report = verify(server, home, workspace, "--skip", "long_context")
    assert code == 1 and failing(report) == {"context_overflow"}
    skipped = next(c for c in report["checks"] if c["name"] == "long_context")
    assert skipped["ok"] and not skipped["required"] and "skipped" in skipped["detail"]


def test_an_ignored_max_completion_tokens_is_found_and_kept_for_later_runs(home: Path, workspace: Path) -> None:
    with FakeLLM(model="local-model", models_style="openai", context_window=16384) as server:
        server.responder = CompetentModel(ignore_max_completion_tokens=True)
        # an endpoint first met as OpenAI-like: kimicode starts with max_completion_tokens there
        home.mkdir(parents=True)
        (home / "endpoints.json").write_text(json.dumps(
            {"version": 1, "endpoints": {server.base_url: {"max_tokens_field": "max_completion_tokens"}}}
        ))
        code, report = verify(server, home, workspace, "--model", "local-model")
        assert code == 0, report
        detail = next(c["detail"] for c in report["checks"] if c["name"] == "max_tokens")
        assert "max_completion_tokens ignored" in detail
        server.responder = None
        server.script(Reply(content="bounded"))
        proc = run_cli(["-p", "-m", "local-model", "hi"], home=home, cwd=workspace, base_url=server.base_url)
        assert proc.returncode == 0, proc.stderr
        body = server.chat_requests[-1].body
    assert "max_tokens" in body and "max_completion_tokens" not in body


def test_an_unknown_model_is_not_held_to_kimi_features(home: Path, workspace: Path) -> None:
    with FakeLLM(model="gemma-3-270m", models_style="llama-cpp-python", context_window=8192) as server:
        server.responder = CompetentModel(drop_reasoning=True)
        code, report = verify(server, home, workspace, "--model", "gemma-3-270m")
    required = {c["name"] for c in report["checks"] if c["required"]}
    assert required == {
        "streaming", "system_prompt", "max_tokens", "tool_call", "tool_call_ids", "tool_call_json", "context_overflow"
    }
    assert code == 0, report


def test_an_unknown_check_name_is_a_usage_error(home: Path, workspace: Path, fake_llm: FakeLLM) -> None:
    proc = run_cli(["verify-endpoint", "--skip", "nonsense"], home=home, cwd=workspace, base_url=fake_llm.base_url)
    assert proc.returncode == 2 and "no check named nonsense" in proc.stderr
    assert fake_llm.requests == []


def test_red_when_the_model_refuses_images_and_green_again_once_it_takes_them(home: Path, workspace: Path) -> None:
    # llama.cpp without its projector: the image check fails with the reason and runs stop sending images.
    # Restarted with it (the same base URL), verify-endpoint sends an image again and forgets the refusal.
    with FakeLLM(context_window=16384, text_only="llama.cpp") as server:
        server.responder = CompetentModel()
        code, report = verify(server, home, workspace)
        assert code == 1 and failing(report) == {"image_input"}
        detail = next(c["detail"] for c in report["checks"] if c["name"] == "image_input")
        assert "refused the image" in detail
        saved = json.loads((home / "endpoints.json").read_text())["endpoints"][server.base_url]
        assert saved["no_images"] == ["kimi-k2.5"]

        server.text_only = None  # the server now has its projector
        code, report = verify(server, home, workspace)
        assert code == 0, failing(report)
    saved = json.loads((home / "endpoints.json").read_text())["endpoints"][server.base_url]
    assert saved["no_images"] == []


def test_a_base_url_that_is_not_one_is_a_usage_error_with_one_line(home: Path, workspace: Path) -> None:
    proc = run_cli(["verify-endpoint", "--base-url", "localhost:8000/v1"], home=home, cwd=workspace)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "is not usable" in proc.stderr and "http://" in proc.stderr


def test_error_shapes_ask_with_a_wrong_key_and_an_unknown_model(home: Path, workspace: Path) -> None:
    # The server checks the key the CLI runs with (clirun's), so only the deliberately wrong one is refused.
    with FakeLLM(context_window=16384, api_key="test-key") as server:
        server.responder = CompetentModel()
        code, report = verify(server, home, workspace, "--skip", "long_context")
        sent = [(r.headers.get("authorization"), r.body.get("model")) for r in server.chat_requests[-2:]]
    assert code == 0, failing(report)
    detail = next(c["detail"] for c in report["checks"] if c["name"] == "error_shapes")
    assert detail.startswith("a wrong key: 401; "), detail
    assert sent == [("Bearer kimicode-verify-invalid-key", "kimi-k2.5"), ("Bearer test-key", "kimicode-verify-no-such-model")]
