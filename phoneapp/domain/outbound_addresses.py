"""Where outbound webhooks may go (SPEC §10): never into the server's own network unless allowed.

A receiver's address is checked when it is saved and again, on the addresses its name resolves to then,
when each delivery connects: a name that resolved to a public address when saved may point inside later.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

# Cloud metadata services answer on these; they are refused by name too, whatever they resolve to.
METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata", "instance-data", "instance-data.ec2.internal"})
MAX_URL_LENGTH = 500


@dataclass(frozen=True)
class Receiver:
    """A receiver's address taken apart: what a delivery connects to and what it names in Host and TLS."""

    scheme: str
    host: str
    port: int
    target: str  # path and query, as sent in the request line


def parse_receiver(url):
    """(Receiver, None) for a usable webhook URL, or (None, the reason it is not one)."""
    if not isinstance(url, str) or not url.strip():
        return None, "is required"
    url = url.strip()
    if len(url) > MAX_URL_LENGTH:
        return None, f"is longer than {MAX_URL_LENGTH} characters"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return None, f"is not a valid URL ({exc})"
    if parts.scheme not in ("https", "http"):
        return None, "must start with https:// (http:// only for a receiver on this machine)"
    if not parts.hostname:
        return None, "has no host name"
    if parts.username or parts.password:
        return None, "must not carry a user name or password (the signature authenticates each delivery)"
    if parts.fragment:
        return None, "must not have a #fragment"
    host = parts.hostname.rstrip(".").lower()
    if parts.scheme == "http" and not _is_loopback_name(host):
        return None, "must use https:// (http:// is accepted only for a receiver on this machine)"
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Receiver(parts.scheme, host, port or (443 if parts.scheme == "https" else 80), target), None


def refused_host(host, *, allow_private):
    """Why a host name itself is refused before any lookup (a metadata service), or None."""
    if not allow_private and host in METADATA_HOSTS:
        return f"{host} is a cloud metadata service"
    return None


def refused_address(address, *, allow_private):
    """Why a receiver resolving to `address` (an IP as text) may not be reached, or None when it may."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return f"{address} is not an IP address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if allow_private or ip.is_global:
        return None
    return f"resolves to {ip}, {_kind(ip)} (outbound webhooks never reach into the server's own network)"


def _kind(ip):
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address (cloud metadata services live there)"
    if ip.is_private:
        return "a private address"
    if ip.is_multicast:
        return "a multicast address"
    return "an address that is not on the public internet"


def _is_loopback_name(host):
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
