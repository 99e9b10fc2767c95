"""The bytes of each request, reusing the JSON of what the previous request of the same conversation sent.

A step's request is the previous one with a few messages more (tests/test_llm_request_cache.py and the
foundation benchmark count 99 of 100): encoding all of it again is most of the CPU of building it on a long
session. But a message is a plain dict that nothing stops from being changed in place, and one built again
with the same text is a different object: neither an object's identity nor a look at its top level proves
that its JSON is unchanged. What proves it is a pickle: the pickle of the history is a C-speed walk (about a
quarter of the cost of encoding it as JSON) that records every value with its type, every key in its order
and every object shared between messages, so two histories whose pickles agree encode to the same JSON.
And a pickle (protocol 2, no framing) is written item by item: when the pickle of this history starts with
the pickle of an earlier one's items, these first items are those items, and their JSON is the JSON kept.

Invariants:
- The bytes are those of ``request.encode`` for the same body, whatever was encoded before (the tests compare
  them across folding, compaction, endpoint refusals and images); anything the cache cannot vouch for (a value
  pickle refuses, a key that is not a string) is encoded whole.
- Kept per client: the last few conversations' messages (a swarm's sub-agents share a client) and the fields
  before them, each as its pickle and its JSON, within ``KEPT_BYTES``; the oldest is dropped first.
"""

from __future__ import annotations

from typing import Any

from kimicode.llm.request import to_json

# Conversations remembered per client (a swarm's sub-agents take turns on one client; more than this many at
# once only costs their requests the pickle, ~25% of encoding them).
KEPT_CONVERSATIONS = 16
# What they may hold in all (pickles and JSON): a history of many pictures is encoded whole rather than kept twice.
KEPT_BYTES = 32 << 20
KEPT_HEADS = 4  # (model, options and tools: a swarm's agents may be offered different tools)
_PROTOCOL = 2  # (protocol 4 and up frame the stream with lengths: a history's pickle would not start with an earlier one's)
_END = b"e."  # (pickle's APPENDS and STOP)


class RequestEncoder:
    """The JSON bytes of request bodies (``encode``), one encoder per client."""

    def __init__(self) -> None:
        # (pickle of a message list without its last two bytes (the list's last appends and the stop), the
        # list's JSON without its closing bracket, how many messages): most recently used last
        self._conversations: list[tuple[bytes, bytes, int]] = []
        # (pickle of the fields before the messages (model, options, tools), their JSON): most recent last
        self._heads: list[tuple[bytes, bytes]] = []
        # A client's first request is encoded as it is: a run of one request (kimicode -p) then never loads pickle.
        self._first = True

    def encode(self, body: dict[str, Any]) -> bytes:
        keys = list(body)
        messages = body.get("messages")
        if self._first or type(messages) is not list or any(type(key) is not str for key in keys):
            self._first = False
            return to_json(body).encode("utf-8")
        split = keys.index("messages")
        parts = [b'"messages":' + self._messages(messages)]
        if split:
            parts.insert(0, self._head({key: body[key] for key in keys[:split]}))
        parts.extend(f"{to_json(key)}:{to_json(body[key])}".encode() for key in keys[split + 1 :])
        return b"{" + b",".join(parts) + b"}"

    def _messages(self, messages: list[Any]) -> bytes:
        fingerprint = _pickled(messages)
        if fingerprint is None:
            return to_json(messages).encode("utf-8")
        kept = self._conversations
        found = -1
        for index in range(len(kept) - 1, -1, -1):
            prefix, _, count = kept[index]
            if count <= len(messages) and fingerprint.startswith(prefix) and (found < 0 or count > kept[found][2]):
                found = index
        if found >= 0:
            _, start, count = kept.pop(found)
            added = messages[count:]
            text = (start + b"," + ",".join(map(to_json, added)).encode("utf-8") if added else start) + b"]"
        else:
            text = to_json(messages).encode("utf-8")
            if len(kept) >= KEPT_CONVERSATIONS:
                del kept[0]
        # Kept only where the pickle ends with the last batch's appends and the stop, so that what is kept ends
        # where a message ends (a list of one, or a last batch of one, is pickled otherwise: never a prefix).
        if fingerprint.endswith(_END) and len(fingerprint) + len(text) <= KEPT_BYTES:
            kept.append((fingerprint[:-2], text[:-1], len(messages)))
            while sum(len(prefix) + len(start) for prefix, start, _ in kept) > KEPT_BYTES:
                del kept[0]
        return text

    def _head(self, head: dict[str, Any]) -> bytes:
        """The fields before the messages, as they appear inside the body's braces."""
        fingerprint = _pickled(head)
        kept = self._heads
        for index, (seen, text) in enumerate(kept):
            if seen == fingerprint:
                kept.append(kept.pop(index))
                return text
        text = to_json(head)[1:-1].encode("utf-8")
        if fingerprint is not None:
            if len(kept) >= KEPT_HEADS:
                del kept[0]
            kept.append((fingerprint, text))
        return text


def _pickled(value: Any) -> bytes | None:
    # Loaded only once a client makes its second request; the C pickler alone (the ``pickle`` module around
    # it, ~1.5 ms to load, adds the pure-Python one this never uses), the module where it is missing.
    try:
        from _pickle import dumps
    except ImportError:  # (a Python without the accelerator)
        from pickle import dumps

    try:
        return dumps(value, _PROTOCOL)
    except Exception:  # noqa: BLE001 - any value pickle cannot take is simply encoded whole
        return None
