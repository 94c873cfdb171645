"""`send --sticker-link`: fetch the link's headers and first bytes before the campaign is
stored, and refuse a link WhatsApp would refuse (unreachable, not https, not image/webp, too
big, not 512 x 512).

The fetch never reaches an internal address (SSRF): each hop is checked and pinned to its
checked address by `stickerq/outside_address.py` (webhook URLs pass the same check).
Redirects are followed by hand, each hop checked the same way, at most MAX_REDIRECTS. No
proxy from the environment is used. A short timeout per operation, an overall deadline and a
byte cap bound what a hostile server can cost.

Hosts named in `allow_hosts` (STICKERQ_STICKER_CHECK_ALLOW_HOSTS, empty by default: tests
and local demos with the sandbox set it) skip the address rule and may be plain http.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Collection
from typing import Any

import httpx

from stickerq.outside_address import (
    AddressRefused,
    Resolver,
    allowed_hosts,
    pin,
    shown,
)
from stickerq.producer.stickers import (
    ANIMATED_MAX_BYTES,
    WEBP_HEADER_BYTES,
    WEBP_TYPE,
    StickerRejected,
    WebpInfo,
    read_webp_header,
    rule_problems,
)

MAX_REDIRECTS = 3
CONNECT_SECONDS = 3.0
READ_SECONDS = 5.0
DEADLINE_SECONDS = 10.0  # the whole check, every hop included
BYTE_CAP = ANIMATED_MAX_BYTES + 1  # read at most this much (to size a link without a length)
REDIRECTS = frozenset({301, 302, 303, 307, 308})
# what to do about a link `pin` refuses: not https, and internal
ADVICE = (
    "serve the sticker over https",
    "stickerq never fetches internal addresses; link a public https URL",
)
__all__ = ["MAX_REDIRECTS", "allowed_hosts", "check_sticker_link"]


class _Refused(Exception):
    """The reasons (its args) the link cannot be used; becomes a StickerRejected."""


def check_sticker_link(
    link: str,
    *,
    allow_hosts: Collection[str] = frozenset(),
    resolve: Resolver = socket.getaddrinfo,
    verify: Any = True,
) -> WebpInfo:
    """Fetch the link's headers and first bytes; raises StickerRejected with every problem.

    `resolve` and `verify` (an ssl.SSLContext) let tests point names at a local server.
    """
    deadline = time.monotonic() + DEADLINE_SECONDS
    url = httpx.URL(link)
    link_shown = shown(url)
    try:
        with httpx.Client(trust_env=False, follow_redirects=False, verify=verify) as client:
            for _ in range(MAX_REDIRECTS + 1):
                found = _fetch(client, url, allow_hosts, resolve, deadline)
                if isinstance(found, WebpInfo):
                    return found
                url = found  # a redirect: the next hop is checked like the first
    except _Refused as exc:
        raise StickerRejected(link_shown, [str(reason) for reason in exc.args]) from None
    too_many = f"more than {MAX_REDIRECTS} redirects: link the file itself"
    raise StickerRejected(link_shown, [too_many])


def _pinned(
    url: httpx.URL, allow_hosts: Collection[str], resolve: Resolver
) -> tuple[httpx.URL, str]:
    """The URL aimed at the checked address of its host, and that host; raises _Refused."""
    try:
        return pin(url, allow_hosts, resolve, advice=ADVICE)
    except AddressRefused as exc:
        raise _Refused(*exc.args) from None


def _fetch(
    client: httpx.Client,
    url: httpx.URL,
    allow_hosts: Collection[str],
    resolve: Resolver,
    deadline: float,
) -> WebpInfo | httpx.URL:
    """One hop: the sticker's header and size, or the URL a redirect points to."""
    target, host = _pinned(url, allow_hosts, resolve)
    left = deadline - time.monotonic()
    if left <= 0:
        raise _Refused(f"not reachable: no answer within {DEADLINE_SECONDS:g} s")
    timeout = httpx.Timeout(min(READ_SECONDS, left), connect=min(CONNECT_SECONDS, left))
    extensions = {"sni_hostname": host} if url.scheme == "https" else {}
    headers = {"Host": url.netloc.decode("ascii"), "Accept-Encoding": "identity"}
    request = client.build_request(
        "GET", target, headers=headers, timeout=timeout, extensions=extensions
    )
    try:
        response = client.send(request, stream=True)
    except httpx.TimeoutException:
        raise _Refused("not reachable: the server did not answer in time") from None
    except httpx.HTTPError as exc:
        raise _Refused(f"not reachable: {type(exc).__name__}: {exc}") from None
    try:
        if response.status_code in REDIRECTS and "location" in response.headers:
            return url.join(response.headers["location"])
        if response.status_code not in (200, 206):
            raise _Refused(f"not reachable: the server answered HTTP {response.status_code}")
        head, size = _read(response, deadline)
    finally:
        response.close()
    problems = []
    kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != WEBP_TYPE:
        problems.append(f"served as {kind or 'no content type'!r}, not {WEBP_TYPE}")
    info = read_webp_header(head)
    problems += rule_problems(info, size)
    if problems:
        raise _Refused(*problems)
    assert info is not None  # rule_problems refuses a missing header
    return info


def _read(response: httpx.Response, deadline: float) -> tuple[bytes, int | None]:
    """The first bytes, and the size: Content-Length, or counted up to the byte cap."""
    length = response.headers.get("content-length")
    size = int(length) if length and length.isdigit() else None
    head = b""
    counted = 0
    try:
        for chunk in response.iter_raw():
            if len(head) < WEBP_HEADER_BYTES:
                head += chunk[: WEBP_HEADER_BYTES - len(head)]
            counted += len(chunk)
            if time.monotonic() > deadline:
                raise _Refused(f"not reachable: too slow (over {DEADLINE_SECONDS:g} s)")
            if counted >= BYTE_CAP or (size is not None and len(head) >= WEBP_HEADER_BYTES):
                break
    except httpx.HTTPError as exc:
        raise _Refused(f"not reachable: {type(exc).__name__}: {exc}") from None
    return head, size if size is not None else counted
