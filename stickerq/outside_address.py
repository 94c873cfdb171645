"""Where stickerq may connect on a user's word (a sticker link, a webhook URL): https to a
public address only, never an internal one (SSRF).

A host is resolved once and every address it resolves to must be public (no loopback,
private, link-local, multicast, reserved, unspecified or cloud metadata address); the caller
then connects to the checked address itself (`pin`), TLS still verified against the host
name, so a second DNS answer cannot switch it (DNS rebinding).

Hosts named in an allow-list (`host` or `host:port`: STICKERQ_STICKER_CHECK_ALLOW_HOSTS,
STICKERQ_WEBHOOK_ALLOW_HOSTS; empty by default, set by tests and local demos) skip the
address rule and may be plain http.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Collection
from typing import Any

import httpx

# Cloud instance metadata (AWS, GCP, Azure, OpenStack; ECS tasks; Alibaba; AWS over IPv6).
METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "100.100.100.200", "fd00:ec2::254")
)

Resolver = Callable[..., list[Any]]  # socket.getaddrinfo's signature


class AddressRefused(Exception):
    """Why the URL may not be reached (its args: one sentence each, the fix included)."""


def allowed_hosts(setting: str | None) -> frozenset[str]:
    """`127.0.0.1, localhost` -> the hosts that may be reached anyway (lower case)."""
    return frozenset(h.strip().lower() for h in (setting or "").split(",") if h.strip())


def address_refusal(address: str) -> str | None:
    """Why stickerq never connects to this IP address; None for a public address."""
    ip = ipaddress.ip_address(address.split("%")[0])  # an IPv6 zone (`%eth0`) is no part of it
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None and (reason := address_refusal(str(embedded))):
            return reason
    if ip in METADATA:
        return "a cloud metadata address"
    for kind in ("loopback", "link_local", "multicast", "private", "reserved", "unspecified"):
        if getattr(ip, f"is_{kind}"):
            return f"a {kind.replace('_', '-')} address"
    if not ip.is_global:
        return "not a public address"
    return None


def shown(url: httpx.URL) -> str:
    """The URL without its query (a signed URL's signature stays out of messages)."""
    return str(url.copy_with(query=None, fragment=None))


def pin(
    url: httpx.URL,
    allow_hosts: Collection[str],
    resolve: Resolver = socket.getaddrinfo,
    *,
    advice: tuple[str, str],
) -> tuple[httpx.URL, str]:
    """The URL aimed at the checked address of its host, and that host; raises AddressRefused.

    `advice` says what to do about a URL refused as not https, then as internal."""
    host = (url.host or "").lower()
    if not host:
        raise AddressRefused(f"{shown(url)} has no host")
    port = url.port or (443 if url.scheme == "https" else 80)
    allowed = host in allow_hosts or f"{host}:{port}" in allow_hosts
    if url.scheme != "https" and not (url.scheme == "http" and allowed):
        raise AddressRefused(f"{shown(url)} is not https: {advice[0]}")
    try:
        found = resolve(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise AddressRefused(f"not reachable: {host} cannot be resolved ({exc})") from None
    addresses = [str(entry[4][0]) for entry in found]
    if not addresses:
        raise AddressRefused(f"not reachable: {host} resolves to no address")
    if not allowed:
        for address in addresses:
            reason = address_refusal(address)
            if reason is not None:  # the address itself stays out: it is an internal DNS answer
                raise AddressRefused(
                    f"{host} resolves to an internal address ({reason}): {advice[1]}"
                )
    return url.copy_with(host=addresses[0].split("%")[0]), host
