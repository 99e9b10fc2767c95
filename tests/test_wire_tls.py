"""kimicode's transport (llm/wire.py) over TLS (the process's shared context: the host as SNI, ALPN http/1.1, the
certificate checked), and out of the way when a proxy is to be used: httpx's own transport then sends the
request through the proxy, as it always did."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kimicode.llm import wire
from kimicode.llm.client import ChatClient
from kimicode.llm.profiles import profile_for
from kimicode.llm.reply import Reply
from tests.wireserver import WireServer, answer_chunked, ask, client_config


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A throwaway certificate for localhost and 127.0.0.1, and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def tls_server(certificate: tuple[Path, Path]) -> Iterator[WireServer]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    context.set_alpn_protocols(["http/1.1", "h2"])

    def note_name(sock: Any, name: str | None, _: ssl.SSLContext) -> None:
        sock.sni = name

    context.sni_callback = note_name
    server = WireServer(tls=context)
    yield server
    server.close()


def replies(base_url: str, count: int) -> list[Any]:
    config = client_config(base_url)

    async def run() -> list[Any]:
        client = ChatClient(config, profile_for(config.model))
        try:
            return [await ask(client) for _ in range(count)]
        finally:
            await client.aclose()

    return [r.content if isinstance(r, Reply) else str(r) for r in asyncio.run(run())]


def test_https_requests_share_one_connection_with_sni_and_alpn(
    tls_server: WireServer, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))  # the store the shared context trusts
    tls_server.answers[:] = [answer_chunked("one"), answer_chunked("two")]
    assert replies(tls_server.base_url, 2) == ["one", "two"]
    assert tls_server.connections == 1
    assert tls_server.names[-1] == ("localhost", "http/1.1")


def test_a_certificate_not_trusted_is_the_same_error_as_through_httpx(
    tls_server: WireServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other, _ = self_signed(tmp_path)  # a store that trusts another certificate only
    monkeypatch.setenv("SSL_CERT_FILE", str(other))
    (ours,) = replies(tls_server.base_url, 1)
    monkeypatch.setenv(wire.ENV, "httpx")
    assert replies(tls_server.base_url, 1) == [ours]
    assert "TLS certificate not accepted" in ours and tls_server.posts == []


@pytest.fixture
def proxy() -> Iterator[WireServer]:
    server = WireServer()
    yield server
    server.close()


def test_a_proxy_in_the_environment_carries_the_request_as_before(
    proxy: WireServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint = "http://127.0.0.1:9/v1"  # (never contacted: the proxy answers)
    monkeypatch.setenv("HTTP_PROXY", proxy.base_url.removesuffix("/v1"))
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    proxy.answers[:] = [answer_chunked("via the proxy")]
    assert replies(endpoint, 1) == ["via the proxy"]
    (posted,) = proxy.posts
    assert posted.head.startswith(b"POST http://127.0.0.1:9/v1/chat/completions HTTP/1.1")


def test_an_endpoint_named_in_no_proxy_is_reached_directly(
    proxy: WireServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    direct = WireServer()
    try:
        monkeypatch.setenv("HTTP_PROXY", proxy.base_url.removesuffix("/v1"))
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        direct.answers[:] = [answer_chunked("direct")]
        config = client_config(direct.base_url)
        client = ChatClient(config, profile_for(config.model))
        assert type(client._client()._client._transport).__module__ == wire.__name__
        assert replies(direct.base_url, 1) == ["direct"] and proxy.posts == []
    finally:
        direct.close()
