"""Where an address points: this machine, a private network, cloud metadata, or the internet.

URLs are read, resolved and judged in one place (``kimicode/security/urls.py``) on top of these kinds.
"""

from __future__ import annotations

import ipaddress
from typing import Literal

HostKind = Literal[
    "loopback", "private", "link-local", "metadata", "unspecified", "multicast", "reserved", "public", "name"
]
# Kinds an SSRF aims at: the private network, cloud metadata (169.254.169.254 is link-local), and addresses
# that mean "any" or "everyone". Loopback is this machine, which the dev-server loop needs.
NON_PUBLIC: frozenset[str] = frozenset({"private", "link-local", "metadata", "unspecified", "multicast", "reserved"})
# This machine as dev servers are reached: other loopback spellings (127.0.0.2, ::ffff:127.0.0.1) are
# treated like private addresses, asked every time.
LOCAL_ADDRESSES: frozenset[str] = frozenset({"127.0.0.1", "::1"})
# Cloud instance metadata services hand out credentials to whoever asks from the machine: AWS, GCP, Azure,
# OpenStack (169.254.169.254), AWS over IPv6 (fd00:ec2::254), Alibaba (100.100.100.200). Never reachable,
# whatever the rules or -y say.
METADATA_ADDRESSES: frozenset[str] = frozenset({"169.254.169.254", "fd00:ec2::254", "100.100.100.200"})
METADATA_NAMES: frozenset[str] = frozenset({"metadata.google.internal", "metadata", "instance-data"})
KIND_TEXT = {
    "loopback": "this machine",
    "private": "a private network",
    "link-local": "the link-local network (cloud metadata services live there)",
    "metadata": "a cloud metadata service (it hands out the machine's credentials)",
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
    if str(address) in METADATA_ADDRESSES:
        return "metadata"
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
