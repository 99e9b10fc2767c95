"""One MCP server's settings in kimicode's normal form, and the ``${VAR}`` expansion rules.

The stored form is the widely used ``mcpServers`` entry: ``command/args/env/cwd`` for stdio servers,
``type/url/headers`` for HTTP and SSE ones, plus ``source`` (where it was found) and ``disabled``.
Environment references are kept as written (``${GITHUB_TOKEN}``) so secrets are never copied into
kimicode's files; they are expanded when the server is launched (``McpServerConfig.expanded``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

Transport = Literal["stdio", "http", "sse"]

# ${VAR}, ${env:VAR}, ${VAR:-default}, ${env:VAR:-default}
_VAR = re.compile(r"\$\{(?:env:)?([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_vars(text: str, env: Mapping[str, str], extra: Mapping[str, str] | None = None) -> str:
    """Expand ``${VAR}``-style references. ``extra`` holds placeholders such as ``workspaceFolder``.

    An unset variable with no default expands to an empty string, as a shell would.
    """

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if extra and name in extra:
            return extra[name]
        value = env.get(name)
        if value:
            return value
        return default if default is not None else ""

    return _VAR.sub(substitute, text)


def expand_placeholders(text: str, extra: Mapping[str, str]) -> str:
    """Expand only the named placeholders (``${workspaceFolder}``), leaving environment references."""

    def substitute(match: re.Match[str]) -> str:
        return extra.get(match.group(1), match.group(0)) if match.group(2) is None else match.group(0)

    return _VAR.sub(substitute, text)


@dataclass
class McpServerConfig:
    name: str
    transport: Transport = "stdio"
    command: str = ""
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    cwd: str = ""
    url: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    source: str = ""
    enabled: bool = True
    # OAuth settings for a remote server (client_id, client_secret, scope, callback_port); none needed when
    # the server's authorization server registers clients itself.
    oauth: dict[str, str] = field(default_factory=dict)

    def same_server(self, other: McpServerConfig) -> bool:
        """True when both launch/contact the same thing (name and source do not matter)."""
        return (
            self.transport == other.transport
            and self.command == other.command
            and self.args == other.args
            and self.env == other.env
            and self.cwd == other.cwd
            and self.url == other.url
            and self.headers == other.headers
        )

    def expanded(self, env: Mapping[str, str] | None = None) -> McpServerConfig:
        """A copy with every ``${VAR}`` expanded from ``env`` (default: the process environment)."""
        if env is None:
            from kimicode.security.childenv import environment

            env = environment()  # a configured "${OPENAI_API_KEY}" still finds the key kimicode withholds
        values = env
        return replace(
            self,
            command=expand_vars(self.command, values),
            args=[expand_vars(a, values) for a in self.args],
            env={k: expand_vars(v, values) for k, v in self.env.items()},
            cwd=expand_vars(self.cwd, values),
            url=expand_vars(self.url, values),
            headers={k: expand_vars(v, values) for k, v in self.headers.items()},
            oauth={k: expand_vars(v, values) for k, v in self.oauth.items()},
        )

    def to_json(self) -> dict[str, Any]:
        """The ``mcpServers`` entry for kimicode's mcp.json."""
        entry: dict[str, Any] = {}
        if self.transport == "stdio":
            entry["command"] = self.command
            if self.args:
                entry["args"] = list(self.args)
            if self.env:
                entry["env"] = dict(self.env)
            if self.cwd:
                entry["cwd"] = self.cwd
        else:
            entry["type"] = self.transport
            entry["url"] = self.url
            if self.headers:
                entry["headers"] = dict(self.headers)
            if self.oauth:
                entry["oauth"] = dict(self.oauth)
        if self.source:
            entry["source"] = self.source
        if not self.enabled:
            entry["disabled"] = True
        return entry

    def describe(self) -> str:
        """One line for listings: what runs or where it connects."""
        if self.transport == "stdio":
            return " ".join([self.command, *self.args]).strip()
        return f"{self.transport} {self.url}"


def _str_map(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(k): "" if v is None else str(v) for k, v in value.items()}


def _str_list(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value]
    if isinstance(value, str) and value:
        return [value]
    return []


_TYPE_ALIASES: dict[str, Transport] = {
    "stdio": "stdio",
    "local": "stdio",
    "http": "http",
    "streamable-http": "http",
    "streamable_http": "http",
    "streamablehttp": "http",
    "remote": "http",
    "sse": "sse",
}


def config_from_entry(name: str, entry: Mapping[str, Any], source: str) -> McpServerConfig | None:
    """Normalise one ``mcpServers``-style entry (Claude, Cursor, Windsurf, Gemini, Kimi, VS Code, Codex).

    Understands ``command``/``args``/``env``/``cwd``, ``url``/``serverUrl``/``httpUrl``, ``type`` or
    ``transport``, ``headers``/``http_headers``, and ``disabled``/``enabled``. Returns None when the entry
    names neither a command nor a URL.
    """
    enabled = not bool(entry.get("disabled", False)) and entry.get("enabled", True) is not False
    declared = str(entry.get("type") or entry.get("transport") or "").strip().lower()
    headers = _str_map(entry.get("headers") or entry.get("http_headers"))
    bearer_env = entry.get("bearer_token_env_var")
    if isinstance(bearer_env, str) and bearer_env and "Authorization" not in headers:
        headers["Authorization"] = f"Bearer ${{{bearer_env}}}"

    command = entry.get("command")
    if isinstance(command, str) and command.strip():
        return McpServerConfig(
            name=name,
            transport="stdio",
            command=command.strip(),
            args=_str_list(entry.get("args")),
            env=_str_map(entry.get("env")),
            cwd=str(entry.get("cwd") or ""),
            source=source,
            enabled=enabled,
        )

    # Gemini CLI: httpUrl is streamable HTTP, url is SSE; elsewhere url's kind comes from `type`.
    if isinstance(entry.get("httpUrl"), str):
        url, transport = entry["httpUrl"], "http"
    else:
        url = entry.get("url") or entry.get("serverUrl") or entry.get("endpoint")
        if not isinstance(url, str) or not url.strip():
            return None
        transport = _TYPE_ALIASES.get(declared.replace(" ", ""), "")
        if transport in ("", "stdio"):
            transport = guess_url_transport(url)
    return McpServerConfig(
        name=name,
        transport=transport,  # type: ignore[arg-type]
        url=url.strip(),
        headers=headers,
        source=source,
        enabled=enabled,
        oauth=_oauth_settings(entry.get("oauth")),
    )


# The OAuth keys understood, in the spellings configurations use (Claude Code writes clientId, callbackPort).
_OAUTH_KEYS = {
    "client_id": "client_id",
    "clientid": "client_id",
    "client_secret": "client_secret",
    "clientsecret": "client_secret",
    "scope": "scope",
    "scopes": "scope",
    "callback_port": "callback_port",
    "callbackport": "callback_port",
}


def _oauth_settings(value: Any) -> dict[str, str]:
    settings: dict[str, str] = {}
    for key, item in _str_map(value).items():
        known = _OAUTH_KEYS.get(key.replace("-", "_").lower()) or _OAUTH_KEYS.get(key.lower().replace("_", ""))
        if known and item:
            settings[known] = item
    return settings


def guess_url_transport(url: str) -> Transport:
    """With no declared type, a URL path ending in /sse is the SSE transport; anything else streamable HTTP."""
    path = url.split("?", 1)[0].rstrip("/")
    return "sse" if path.endswith("/sse") else "http"
