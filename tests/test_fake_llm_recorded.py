"""What the scripted server records of a request: the parsed body as tests read it, and not kept unread."""

from __future__ import annotations

import gc
import http.client
import json
from typing import Any

from tests.fake_llm import FakeLLM, RecordedRequest, Reply


def post_all(fake: FakeLLM, bodies: list[bytes]) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=10)
    try:
        for body in bodies:
            connection.request("POST", "/v1/chat/completions", body=body, headers={"Authorization": "Bearer k"})
            connection.getresponse().read()
    finally:
        connection.close()


def conversation(turns: int, stream: bool = False) -> bytes:
    messages = [{"role": "user", "content": f"message {n}", "meta": {"n": n}} for n in range(turns)]
    return json.dumps({"model": "m", "messages": messages, "stream": stream}).encode()


def test_a_body_read_after_the_answer_is_the_json_of_the_request() -> None:
    with FakeLLM(require_key=False) as fake:
        fake.script(Reply(content="a"), Reply(content="b"))
        post_all(fake, [conversation(3, stream=True), b"{not json", conversation(1)])
        first, broken, last = fake.requests
        assert first.body == json.loads(first.raw) and first.body["stream"] is True
        assert broken.body is None and broken.status == 400
        assert last.body is last.body  # parsed once, then the same object
        last.body["messages"].append({"role": "tool"})  # a test may change what it reads ...
        assert last.messages[-1] == {"role": "tool"}  # ... and reads its change back


def test_a_responder_and_a_later_reader_hold_the_same_body() -> None:
    seen: list[Any] = []

    def responder(request: RecordedRequest) -> Reply:
        seen.append(request.body)
        request.body["seen by the responder"] = True
        return Reply(content="ok")

    with FakeLLM(require_key=False) as fake:
        fake.responder = responder
        post_all(fake, [conversation(2)])
        (request,) = fake.requests
        assert request.body is seen[0] and request.body["seen by the responder"] is True


def test_bodies_nobody_read_are_not_kept_parsed() -> None:
    """Held as parsed JSON, 30 requests of 2,000 messages would be 60,000 objects the collector walks."""
    bodies = [conversation(2000) for _ in range(30)]
    with FakeLLM(require_key=False) as fake:
        fake.script(*[Reply(content="ok") for _ in bodies])
        post_all(fake, bodies[:1])  # the server's own first-use objects exist before counting
        gc.collect()
        before = len(gc.get_objects())
        post_all(fake, bodies[1:])
        assert fake.wait_for_answers(len(bodies))
        gc.collect()
        unread = len(gc.get_objects()) - before
        assert all(r.body["messages"][-1]["meta"] == {"n": 1999} for r in fake.requests)
        gc.collect()
        read = len(gc.get_objects()) - before
    assert unread < 5_000 < 50_000 < read
