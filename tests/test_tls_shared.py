"""Model clients share one TLS context per process (loading the certificate store once, not per client or
per batch task), and a different certificate store named in the environment gets its own."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from kimicode.config import Config
from kimicode.llm.client import ChatClient
from kimicode.llm.profiles import profile_for
from kimicode.llm.tls import shared_tls_context


def sdk_tls_context(client: ChatClient) -> ssl.SSLContext:
    """The context the SDK's HTTP transport will use for this client's connections."""
    client.prepare()
    return client._sdk._client._transport._pool._ssl_context


def test_clients_share_the_process_context_unless_the_store_differs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    config = Config(api_key="k", base_url="https://api.example.invalid/v1")
    first, second = ChatClient(config, profile_for(config.model)), ChatClient(config, profile_for(config.model))
    shared = sdk_tls_context(first)
    assert shared is sdk_tls_context(second) is shared_tls_context()
    assert shared.verify_mode == ssl.CERT_REQUIRED and shared.check_hostname  # verification as the SDK does it

    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path))  # another (empty) store: a context of its own
    other = ChatClient(config, profile_for(config.model))
    assert sdk_tls_context(other) is not shared
