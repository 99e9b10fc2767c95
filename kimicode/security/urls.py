"""The one reading of a network URL: parsed once, resolved once, judged on the address that is connected.

The permission policy (``fetch`` and ``screenshot`` calls), the fetch tool and the browser's network gate
all go through here, so they cannot disagree about where a URL points:

- ``parse`` reads the URL strictly and refuses every form two parsers could read differently: a ``%`` in
  the host (``127.0.0.1%25.example.com``, IPv6 zones), user info (``a@b``, ``127.0.0.1:80@evil``),
  backslashes, spaces and control characters, and IPv4 written any way but four decimal numbers
  (``0x7f.1``, ``2130706433``, ``127.1``, ``0177.0.0.1``, ``127.0.0.1.``), which browsers and C resolvers
  read as addresses while Python reads them as names.
- ``resolve`` looks a name up once and pins the answer for a short while: the policy's lookup is the
  one the tool connects to (a name cannot be re-pointed between the check and the connection).
- ``connect_problem`` decides on the resolved addresses. Cloud metadata is refused always; a name must
  point at the internet (``localhost`` names at this machine); an address written in the URL is as the
  policy judged it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass

from kimicode.security.network import (
    KIND_TEXT,
    LOCAL_ADDRESSES,
    METADATA_NAMES,
    HostKind,
    address_kind,
    is_local_name,
)

# How long a lookup stays pinned: long enough for one policy decision and the call it allowed.
PIN_SECONDS = 60.0
_PINS: dict[tuple[str, int], tuple[float, tuple[str, ...]]] = {}
_AUTHORITY = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<authority>[^/?#]*)(?P<rest>.*)$", re.DOTALL)
_NUMBER_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")
_CANONICAL_IPV4 = re.compile(r"^(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])){3}$")
_NAME = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*\.?$")
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


class UrlError(ValueError):
    """A URL that is refused before anything is looked up; the message is one line."""


@dataclass(frozen=True)
class Target:
    scheme: str  # lower case
    host: str  # lower case, IDNA-encoded; an IPv6 address without brackets, in its compressed form
    port: int
    rest: str  # path, query and fragment as written
    literal: bool  # the URL names an IP address, not a name

    @property
    def kind(self) -> HostKind:
        """Where the host points by its text alone: an address's kind, loopback for localhost names, else a name."""
        if self.literal:
            return address_kind(self.host) or "reserved"
        if is_local_name(self.host):
            return "loopback"
        if self.host.rstrip(".") in METADATA_NAMES:
            return "metadata"
        return "name"

    @property
    def netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if DEFAULT_PORTS.get(self.scheme) == self.port else f"{host}:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.netloc}{self.rest or '/'}"


def parse(text: str, schemes: tuple[str, ...] = ("http", "https")) -> Target:
    """``text`` read as a URL with one of ``schemes``; UrlError for anything ambiguous."""
    if any(ord(c) < 0x21 or c in "\\\x7f" for c in text):
        raise UrlError("the URL holds a space, a backslash or a control character")
    match = _AUTHORITY.match(text)
    if not match:
        raise UrlError("not a URL with a scheme and a host (scheme://host/…)")
    scheme = match["scheme"].lower()
    if scheme not in schemes:
        raise UrlError(f"only {' and '.join(schemes)} URLs are read here, not {scheme}:")
    authority = match["authority"]
    if "@" in authority:
        raise UrlError("a user name or password in the URL (user@host) is refused: it hides the real host")
    if "%" in authority:
        raise UrlError("a percent-encoded host (%) is refused: it reads differently to different parsers")
    host, port = _split_port(authority, scheme)
    return _target(scheme, host, port, match["rest"])


def parse_authority(authority: str, scheme: str = "https") -> Target:
    """``host:port`` as a proxy's CONNECT names it, read by the same rules as a URL."""
    return parse(f"{scheme}://{authority}/", (scheme,))


def _target(scheme: str, host: str, port: int, rest: str) -> Target:
    name, literal = _host(host)
    return Target(scheme, name, port, rest, literal)


def _split_port(authority: str, scheme: str) -> tuple[str, int]:
    if authority.startswith("["):
        end = authority.find("]")
        if end < 0:
            raise UrlError("an IPv6 address without its closing ]")
        host, after = authority[: end + 1], authority[end + 1 :]
        if after and not after.startswith(":"):
            raise UrlError("text after an IPv6 address that is not a port")
        port_text = after[1:] if after else ""
    else:
        host, _, port_text = authority.partition(":")
        if ":" in port_text:
            raise UrlError("more than one : in the host (IPv6 addresses go in [ ])")
    if not host:
        raise UrlError("the URL names no host")
    if port_text:
        if not port_text.isascii() or not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise UrlError(f"port {port_text!r} is not a number from 1 to 65535")
        return host, int(port_text)
    return host, DEFAULT_PORTS[scheme]


def _host(host: str) -> tuple[str, bool]:
    """(canonical host, is an IP address)."""
    if host.startswith("["):
        try:
            address = ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise UrlError(f"{host} is not an IPv6 address") from None
        return str(address), True
    try:
        name = host.encode("idna").decode("ascii").lower() if not host.isascii() else host.lower()
    except UnicodeError:
        raise UrlError(f"{host!r} is not a valid host name") from None
    labels = name.rstrip(".").split(".")
    # A host whose last label is a number is an IPv4 address to a browser and to inet_aton, whatever its
    # spelling; only the one spelling every reader agrees on is taken.
    if _NUMBER_LABEL.match(labels[-1]):
        if not _CANONICAL_IPV4.match(name):
            raise UrlError(
                f"{host} is an IPv4 address in a form other than four decimal numbers (a.b.c.d): refused, "
                "since programs read it differently"
            )
        return name, True
    if not _NAME.match(name):
        raise UrlError(f"{host!r} is not a valid host name")
    return name, False


# -- resolving -------------------------------------------------------------------------------------------


def pinned(target: Target) -> tuple[str, ...] | None:
    """The addresses a recent lookup gave for the target's host, or None."""
    found = _PINS.get((target.host, target.port))
    if found is None or time.monotonic() - found[0] > PIN_SECONDS:
        return None
    return found[1]


def resolve_now(target: Target) -> tuple[str, ...]:
    """The target's addresses (looked up once, then pinned); () when the name does not resolve."""
    if target.literal:
        return (target.host,)
    known = pinned(target)
    if known is not None:
        return known
    try:
        infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError):
        return ()
    return _pin(target, infos)


async def resolve(target: Target) -> tuple[str, ...]:
    """As ``resolve_now``, without blocking the event loop."""
    if target.literal:
        return (target.host,)
    known = pinned(target)
    if known is not None:
        return known
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError):
        return ()
    return _pin(target, infos)


# One answer of getaddrinfo: family, type, protocol, canonical name, socket address (its first item the address).
_AddressInfo = tuple[
    socket.AddressFamily,
    socket.SocketKind,
    int,
    str,
    "tuple[str, int] | tuple[str, int, int, int] | tuple[int, bytes]",
]


def _pin(target: Target, infos: Sequence[_AddressInfo]) -> tuple[str, ...]:
    addresses: list[str] = []
    for info in infos:
        address = str(info[4][0])
        if address not in addresses:
            addresses.append(address)
    if addresses:
        now = time.monotonic()
        if len(_PINS) > 512:  # a long session's old lookups
            for key in [k for k, (when, _) in _PINS.items() if now - when > PIN_SECONDS]:
                del _PINS[key]
        _PINS[(target.host, target.port)] = (now, tuple(addresses))
    return tuple(addresses)


# -- the decision ----------------------------------------------------------------------------------------


def connect_problem(target: Target, addresses: tuple[str, ...], approved: frozenset[str] | None = None) -> str:
    """Why connecting to ``target`` at ``addresses`` is refused, or "" when it may go ahead.

    ``approved``: the addresses written in a URL that the policy allowed for this call; None when the
    caller's URL was judged by the policy as a whole (the fetch tool), so an address it names is allowed.
    """
    host = target.host
    if target.kind == "metadata":
        return f"{host} is {KIND_TEXT['metadata']}: always refused"
    for address in addresses:
        if address_kind(address) == "metadata":
            return f"{host} resolves to {address}, {KIND_TEXT['metadata']}: always refused"
    if target.literal:
        kind = address_kind(host) or "reserved"
        if kind == "public" or host in LOCAL_ADDRESSES or approved is None or host in approved:
            return ""
        return f"{host} is an address on {KIND_TEXT[kind]}; only a URL the user allowed may open it"
    if not addresses:
        return f"{host} did not resolve to any address"
    local = is_local_name(host)
    for address in addresses:
        kind = address_kind(address) or "reserved"
        if local and kind != "loopback":
            return f"{host} resolves to {address}, which is not this machine"
        if not local and kind == "loopback":
            return (
                f"{host} resolves to {address}, this machine; a name that points here is refused (write "
                "localhost or 127.0.0.1 in the URL if a server on this machine is meant)"
            )
        if not local and kind != "public":
            return (
                f"{host} resolves to {address}, an address on {KIND_TEXT[kind]}; a name that points there is "
                "refused (write the address itself in the URL if it is really meant: that is asked every time)"
            )
    return ""
