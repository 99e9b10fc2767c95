"""What counts as a secret: known values and credential shapes are hidden, ordinary text is left alone."""

from __future__ import annotations

import json
import uuid

import pytest

from kimicode.security import redact as r
from kimicode.session.store import SessionInUse, SessionStore


@pytest.mark.parametrize(
    "text, expected",
    [
        ("key=sk-abcdefghijklmnop1234 x", "key=[redacted] x"),
        ("line\nsk-abcdefghijklmnop1234", "line\n[redacted]"),
        ("Authorization: Bearer tok1234567890abc", "Authorization: Bearer [redacted]"),
        ('{"Authorization": "Bearer abcdefgh1234"}', '{"Authorization": "Bearer [redacted]"}'),
        ("curl -H 'authorization: token ghp_0123456789abcdef'", "curl -H 'authorization: token [redacted]'"),
        ("got Bearer eyJhbGciOiJIUzI1NiJ9.e30.abc from it", "got Bearer [redacted] from it"),
    ],
)
def test_key_shapes_are_redacted(text: str, expected: str) -> None:
    assert r.redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "task-description-of-the-desk-reservation",
        "the bearer of bad news brought instructions",
        'headers = {"Authorization": f"Bearer {api_key}"}',
        "authorization = config.api_key",
        "sk-short",
        "",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert r.redact(text) == text


def test_registered_values_are_redacted_and_short_ones_ignored() -> None:
    secret = "reg_" + uuid.uuid4().hex
    r.register(secret)
    r.register("password")  # too short to be a key; redacting it would eat ordinary words
    assert r.redact(f"a {secret}, b") == "a [redacted], b"
    assert r.redact("the password field") == "the password field"
    nested = r.redact_obj({"messages": [{"content": f"x {secret}"}], "api_key": "anything", "n": 1})
    assert json.dumps(nested) == '{"messages": [{"content": "x [redacted]"}], "api_key": "[redacted]", "n": 1}'


def test_mcp_values_by_name_or_shape() -> None:
    token, path = "t" + uuid.uuid4().hex, "/usr/local/share/some/long/path/here"
    plain = "x" + uuid.uuid4().hex
    env = {"SERVICE_TOKEN": token, "DATA_DIR": path, "OPAQUE": plain}
    r.register_mcp_values(env, {"Authorization": "Bearer hdr0123456789"})
    out = r.redact(f"{token} {path} {plain} hdr0123456789")
    assert out == f"[redacted] {path} [redacted] [redacted]"


def test_lock_is_released_on_close_and_names_the_holder(tmp_path) -> None:
    store = SessionStore(tmp_path / "home")
    first = store.create(tmp_path, "m", "agent")
    first.append_message({"role": "user", "content": "hi"})
    first.lock()
    other = store.open(first.id, tmp_path)
    with pytest.raises(SessionInUse) as busy:
        other.lock()
    assert busy.value.pid is not None and str(busy.value.pid) in str(busy.value)
    first.close()
    assert not first.lock_path.exists()
    other.lock()  # free again once the holder lets go
    other.close()


def test_without_fcntl_sessions_are_used_unlocked(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    import kimicode.session.lock as lock_module

    monkeypatch.setattr(lock_module, "fcntl", None)
    store = SessionStore(tmp_path / "home")
    one = store.create(tmp_path, "m", "agent")
    one.append_message({"role": "user", "content": "hi"})
    one.lock()
    two = store.open(one.id, tmp_path)
    two.lock()
    assert not one.lock_path.exists()


def test_text_shorter_than_any_secret_is_returned_as_is_and_longer_text_is_checked() -> None:
    """redact() returns text under MIN_SECRET_LENGTH untouched: sound only while no key shape and no form of a
    registered secret can be that short."""
    import re._parser as sre_parse

    assert sre_parse.parse("|".join(r._SHAPES)).getwidth()[0] >= r.MIN_SECRET_LENGTH
    secret = uuid.uuid4().hex[: r.MIN_SECRET_LENGTH]  # as short as a secret can be
    r.register(secret)
    assert r._needles and min(map(len, r._needles)) >= r.MIN_SECRET_LENGTH
    assert r.redact(secret) == "[redacted]"
    assert r.redact(secret[:-1]) == secret[:-1]
    assert r.redact_obj({"role": "tool", "content": secret}) == {"role": "tool", "content": "[redacted]"}
