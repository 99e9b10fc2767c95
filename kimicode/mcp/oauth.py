"""OAuth for remote MCP servers (MCP authorization, 2025-11-25), on top of the ``mcp`` SDK's client.

The SDK's ``OAuthClientProvider`` does the protocol: protected-resource metadata (from the 401's
``WWW-Authenticate`` and the well-known paths), authorization-server metadata, dynamic client registration,
PKCE, the token exchange and refreshing a token it knows has expired. kimicode adds:
- storage in ``KIMICODE_HOME/mcp-tokens/`` with the expiry time, so a token is refreshed *before* it
  expires in a later run too (the SDK forgets expiry times across processes);
- a refresh when a token the server no longer accepts (401) still has a refresh token (the SDK goes
  straight to a new sign-in);
- outside ``kimicode mcp login`` no sign-in is ever started: the connection stops with ``SignInRequired``
  before any registration or browser step, and the server is reported as needing a sign-in.

The SDK is imported only when a remote server is contacted.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable
from pathlib import Path
from typing import Any

from kimicode.mcp.server_config import McpServerConfig
from kimicode.mcp.token_store import FileTokenStorage, token_path

__all__ = ["SignInRequired", "connection_auth", "make_provider", "uses_oauth", "preregistered_client"]

# A token that expires within this many seconds is refreshed before it is used (clock skew, a slow request).
REFRESH_MARGIN = 60.0
# Where a connection that never signs in says the browser would go back to (it never gets that far).
_UNUSED_REDIRECT = "http://127.0.0.1/callback"


class SignInRequired(Exception):
    """The server wants a sign-in that only ``kimicode mcp login`` may start."""


def uses_oauth(config: McpServerConfig) -> bool:
    """A remote server without an Authorization header of its own signs in with OAuth when it asks to."""
    return config.transport in ("http", "sse") and not any(k.lower() == "authorization" for k in config.headers)


def sign_in_label(home: Path, config: McpServerConfig) -> str:
    """How a remote server that signs in with OAuth stands ("signed in", "not signed in"...); "" for others."""
    from kimicode.mcp.token_store import sign_in_state

    if not uses_oauth(config):
        return ""
    expanded = config.expanded()
    return sign_in_state(home, expanded.name, expanded.url) or "not signed in"


def preregistered_client(config: McpServerConfig, redirect_uri: str) -> dict[str, Any] | None:
    """The client registered by hand for this server (``oauth.client_id`` in mcp.json), if any."""
    client_id = config.oauth.get("client_id", "")
    if not client_id:
        return None
    secret = config.oauth.get("client_secret", "")
    client: dict[str, Any] = {
        "client_id": client_id,
        "redirect_uris": [redirect_uri],
        "token_endpoint_auth_method": "client_secret_basic" if secret else "none",
        "grant_types": ["authorization_code", "refresh_token"],
    }
    if secret:
        client["client_secret"] = secret
    return client


def make_provider(
    config: McpServerConfig,
    home: Path,
    redirect_uri: str,
    redirect_handler: Callable[[str], Awaitable[None]] | None = None,
    callback_handler: Callable[[], Awaitable[Any]] | None = None,
) -> Any:
    """An ``httpx2.Auth`` for ``config`` (already expanded); interactive when both handlers are given."""
    from mcp.client.auth import OAuthClientProvider
    from mcp.shared.auth import OAuthClientMetadata

    import kimicode

    storage = FileTokenStorage(token_path(home, config.name, config.url), preregistered_client(config, redirect_uri))
    metadata = OAuthClientMetadata(
        client_name="kimicode",
        client_uri=None,
        software_id="kimicode",
        software_version=kimicode.__version__,
        redirect_uris=[redirect_uri],  # type: ignore[list-item]
        grant_types=["authorization_code", "refresh_token"],
        response_types=["code"],
        token_endpoint_auth_method="none",  # a CLI cannot keep a secret from its user
        scope=config.oauth.get("scope") or None,
    )
    interactive = redirect_handler is not None and callback_handler is not None

    async def refuse_sign_in(url: str) -> None:
        raise SignInRequired(config.name)

    class Provider(OAuthClientProvider):
        sign_in_needed = False
        failure: BaseException | None = None  # why the flow stopped (transports report only "error")

        async def _initialize(self) -> None:
            await super()._initialize()
            expires_at = storage.expires_at()
            if expires_at is not None and self.context.current_tokens is not None:
                self.context.token_expiry_time = expires_at - REFRESH_MARGIN
            _restore_discovery(self.context, storage.record())

        async def _handle_token_response(self, response: Any) -> None:
            await super()._handle_token_response(response)
            storage.set_discovery(self.context.oauth_metadata, self.context.protected_resource_metadata)

        async def _auth_flow(self, request: Any) -> AsyncGenerator[Any, Any]:
            # Runs the SDK's flow, stepping in once: when the server refuses the token it was sent, try the
            # refresh token first, and outside a login stop rather than start a new sign-in.
            inner = super()._auth_flow(request)
            stepped_in = False
            try:
                outgoing = await inner.__anext__()
                while True:
                    response = yield outgoing
                    if outgoing is request and response.status_code == 401 and not stepped_in:
                        stepped_in = True
                        if self.context.can_refresh_token():
                            refreshed = yield await self._refresh_token()
                            if await self._handle_refresh_response(refreshed):
                                self._add_auth_header(request)
                                response = yield request
                        if response.status_code == 401 and not interactive:
                            self.sign_in_needed = True
                            raise SignInRequired(config.name)
                    outgoing = await inner.asend(response)
            except StopAsyncIteration:
                return
            except Exception as exc:
                self.failure = exc
                raise
            finally:
                await inner.aclose()

    return Provider(
        server_url=config.url,
        client_metadata=metadata,
        storage=storage,
        redirect_handler=redirect_handler if interactive else refuse_sign_in,
        callback_handler=callback_handler,
    )


def _restore_discovery(context: Any, record: dict[str, Any]) -> None:
    """Give the SDK's context the metadata an earlier run discovered (the SDK keeps it in memory only)."""
    from mcp.shared.auth import OAuthMetadata, ProtectedResourceMetadata
    from pydantic import ValidationError

    try:
        if context.oauth_metadata is None and record.get("authorization_server"):
            context.oauth_metadata = OAuthMetadata.model_validate(record["authorization_server"])
        if context.protected_resource_metadata is None and record.get("protected_resource"):
            resource = ProtectedResourceMetadata.model_validate(record["protected_resource"])
            context.protected_resource_metadata = resource
            if resource.authorization_servers:
                context.auth_server_url = str(resource.authorization_servers[0])
    except ValidationError:
        pass  # discovered again on the next 401


def connection_auth(config: McpServerConfig, home: Path | None) -> Any:
    """The auth of an ordinary connection (never signs in), or None when the server does not use OAuth."""
    if home is None or not uses_oauth(config):
        return None
    stored = FileTokenStorage(token_path(home, config.name, config.url)).record().get("client") or {}
    uris = stored.get("redirect_uris") or [_UNUSED_REDIRECT]
    return make_provider(config, home, str(uris[0]))
