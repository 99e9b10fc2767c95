"""Where a remote MCP server's OAuth sign-in is kept: ``KIMICODE_HOME/mcp-tokens/``, one file per server
and resource, readable by the user only.

Invariants:
- A file is keyed by the server's name and the URL it signs in to, so a server whose URL changes (another
  resource) never receives the tokens issued for the old one.
- Files are written whole (temporary file + rename) with mode 0600 in a 0700 folder: a crash leaves the
  old sign-in or the new one, never half of one, and other users cannot read either.
- Every token and client secret read or written here is registered with the redaction layer at once, so
  it cannot reach a log, the screen or a saved session.
- The SDK's token models are imported only by the methods the OAuth flow calls.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from pathlib import Path
from typing import Any

from kimicode.security.redact import register

__all__ = ["FileTokenStorage", "token_dir", "token_path", "sign_in_state", "forget"]

TOKEN_DIR_NAME = "mcp-tokens"


def token_dir(home: Path) -> Path:
    return home / TOKEN_DIR_NAME


def token_path(home: Path, name: str, url: str) -> Path:
    """The file for server ``name`` signing in to ``url`` (the URL as the server is contacted)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:60] or "server"
    digest = hashlib.sha256(url.strip().encode("utf-8")).hexdigest()[:16]
    return token_dir(home) / f"{safe}-{digest}.json"


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _register_secrets(record: dict[str, Any]) -> None:
    for section, key in (("tokens", "access_token"), ("tokens", "refresh_token"), ("client", "client_secret")):
        value = (record.get(section) or {}).get(key)
        if isinstance(value, str):
            register(value)


def _write(path: Path, record: dict[str, Any]) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(record, handle, indent=1)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o600)  # O_CREAT's mode does not apply to a file left over from a crash
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


class FileTokenStorage:
    """The SDK's ``TokenStorage`` over one sign-in file, plus the expiry time the SDK does not keep."""

    def __init__(self, path: Path, client: dict[str, Any] | None = None) -> None:
        self.path = path
        self._client = client  # a client registered by hand (client_id/client_secret in mcp.json)
        _register_secrets(_read(path))
        if client and isinstance(client.get("client_secret"), str):
            register(client["client_secret"])

    def record(self) -> dict[str, Any]:
        return _read(self.path)

    def expires_at(self) -> float | None:
        value = self.record().get("expires_at")
        return float(value) if isinstance(value, (int, float)) else None

    async def get_tokens(self) -> Any:
        from mcp.shared.auth import OAuthToken
        from pydantic import ValidationError

        tokens = self.record().get("tokens")
        try:
            return OAuthToken.model_validate(tokens) if tokens else None
        except ValidationError:
            return None

    async def set_tokens(self, tokens: Any) -> None:
        record = self.record()
        record["tokens"] = tokens.model_dump(mode="json", exclude_none=True)
        record["expires_at"] = time.time() + int(tokens.expires_in) if tokens.expires_in is not None else None
        record["saved_at"] = time.time()
        _register_secrets(record)
        _write(self.path, record)

    async def get_client_info(self) -> Any:
        from mcp.shared.auth import OAuthClientInformationFull
        from pydantic import ValidationError

        client = self._client or self.record().get("client")
        try:
            return OAuthClientInformationFull.model_validate(client) if client else None
        except ValidationError:
            return None

    async def set_client_info(self, client_info: Any) -> None:
        if self._client:
            return  # a client registered by hand stays in mcp.json; nothing to keep here
        record = self.record()
        record["client"] = client_info.model_dump(mode="json", exclude_none=True)
        _register_secrets(record)
        _write(self.path, record)

    def set_discovery(self, server_metadata: Any, resource_metadata: Any) -> None:
        """Keep what discovery found, so a later run can refresh a token without discovering again (the
        token endpoint is only known from the authorization server's metadata)."""
        record = self.record()
        for key, model in (("authorization_server", server_metadata), ("protected_resource", resource_metadata)):
            if model is not None:
                record[key] = model.model_dump(mode="json", exclude_none=True)
        _write(self.path, record)

    def forget_client(self) -> None:
        """Drop a dynamically registered client (its redirect address no longer matches) but keep nothing
        issued to it either: tokens are bound to the client that asked for them."""
        if self.path.exists():
            self.path.unlink()


def sign_in_state(home: Path, name: str, url: str) -> str:
    """"signed in", "signed in (expired; refreshes on use)", "sign-in expired" or "" (not signed in)."""
    record = _read(token_path(home, name, url))
    tokens = record.get("tokens")
    if not isinstance(tokens, dict) or not tokens.get("access_token"):
        return ""
    expires_at = record.get("expires_at")
    if isinstance(expires_at, (int, float)) and expires_at < time.time():
        return "signed in (expired; refreshes on use)" if tokens.get("refresh_token") else "sign-in expired"
    return "signed in"


def forget(home: Path, name: str, url: str) -> bool:
    """Delete the sign-in for server ``name`` at ``url``; True if there was one."""
    path = token_path(home, name, url)
    if not path.exists():
        return False
    path.unlink()
    return True
