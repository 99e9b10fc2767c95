"""Where a URL points: this machine, a private network, or the internet.

The permission policy classifies the host a call names (``host_kind``); the fetch tool checks each address
a name resolves to just before it connects (``resolved_problem``), and connects to that very address, so a
name cannot be re-pointed at this machine or the private network between the check and the connection.
"""

from __future__ import annotations

import ipaddress
from typing import Literal

HostKind = Literal["loopback", "private", "link-local", "unspecified", "multicast", "reserved", "public", "name"]
# Kinds an SSRF aims at: the private network, cloud metadata (169.254.169.254 is link-local), and addresses
# that mean "any" or "everyone". Loopback is this machine, which the dev-server loop needs.
NON_PUBLIC: frozenset[str] = frozenset({"private", "link-local", "unspecified", "multicast", "reserved"})
KIND_TEXT = {
    "loopback": "this machine",
    "private": "a private network",
    "link-local": "the link-local network (cloud metadata services live there)",
    "unspecified": "an unspecified address",
    "multicast": "a multicast address",
    "reserved": "a reserved address",
    "public": "the internet",
}


def is_local_name(host: str) -> bool:
    host = host.lower().rstrip(".")
    return host == "localhost" or host.endswith(".localhost")


def address_kind(text: str) -> HostKind | None:
    """The kind of an IP address written as text, or None when ``text`` is not an IP address."""
    try:
        address = ipaddress.ip_address(text.strip("[]").split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    if address.is_loopback:
        return "loopback"
    if address.is_unspecified:
        return "unspecified"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if address.is_private or (isinstance(address, ipaddress.IPv4Address) and address in _SHARED):
        return "private"
    if address.is_reserved or not address.is_global:
        return "reserved"
    return "public"


_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT: a provider's private network


def host_kind(host: str) -> HostKind:
    """What the host part of a URL names, by its text alone (no DNS lookup)."""
    host = (host or "").lower()
    if is_local_name(host):
        return "loopback"
    return address_kind(host) or "name"


def resolved_problem(host: str, addresses: list[str]) -> str:
    """Why connecting to ``host`` at these addresses is refused, or "" when it may go ahead.

    An address written in the URL was judged by the policy already. A name must resolve to public
    addresses only; ``localhost`` names to loopback only.
    """
    if address_kind(host) is not None:
        return ""
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
