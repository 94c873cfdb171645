"""`send --sticker-link` checks: a tiny HTTP server on loopback serves WebPs made with Pillow;
host names point at it through the check's resolver, and loopback is allowed only where a
test says so. Internal addresses are refused before any request, redirects included."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import trustme

from stickerq.producer.sticker_links import MAX_REDIRECTS, allowed_hosts, check_sticker_link
from stickerq.producer.stickers import StickerRejected, WebpInfo
from tests.webp import webp

GOOD = webp()
ANIMATED = webp(frames=2)


@dataclass
class Route:
    body: bytes = GOOD
    status: int = 200
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "image/webp"})
    sized: bool = True  # False: no Content-Length, the body ends when the connection closes


@dataclass
class StickerServer:
    """A loopback HTTP server answering each path with its Route; it records every request."""

    port: int = 0
    routes: dict[str, Route] = field(default_factory=dict)
    seen: list[tuple[str, str]] = field(default_factory=list)  # (path, Host header)

    def url(self, path: str, host: str = "sticker.test") -> str:
        return f"http://{host}:{self.port}{path}"


@pytest.fixture
def server() -> Iterator[StickerServer]:
    yield from _serve()


def _serve(tls: ssl.SSLContext | None = None) -> Iterator[StickerServer]:
    state = StickerServer()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.seen.append((self.path, self.headers.get("Host", "")))
            path = self.path.split("?")[0]
            route = state.routes.get(path, Route(b"not found", 404, {}))
            self.send_response(route.status)
            for name, value in route.headers.items():
                self.send_header(name, value)
            if route.sized:
                self.send_header("Content-Length", str(len(route.body)))
            self.end_headers()
            self.wfile.write(route.body)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if tls is not None:
        httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()


class Resolver:
    """getaddrinfo for made-up names (each to one address); counts the lookups."""

    def __init__(self, names: dict[str, str]) -> None:
        self.names = names
        self.lookups: list[str] = []

    def __call__(self, host: str, port: int, **_: Any) -> list[Any]:
        self.lookups.append(host)
        address = self.names.get(host)
        if address is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (address, port))]


LOCAL = Resolver({"sticker.test": "127.0.0.1"})
# An address literal resolves to itself (getaddrinfo does the same, without DNS).
LITERALS = Resolver({a: a for a in ("127.0.0.1", "::1", "169.254.169.254")})
ALLOWED = allowed_hosts("sticker.test")


def check(link: str, resolver: Resolver | None = None, allow: frozenset[str] = ALLOWED) -> Any:
    return check_sticker_link(link, allow_hosts=allow, resolve=resolver or LOCAL)


def problems(link: str, resolver: Resolver | None = None, **kw: Any) -> list[str]:
    with pytest.raises(StickerRejected) as caught:
        check(link, resolver, **kw)
    assert "?" not in str(caught.value)  # the query (a signature) stays out of messages
    return caught.value.problems


def test_a_good_sticker_passes_over_the_checked_address(server: StickerServer) -> None:
    server.routes["/s.webp"] = Route(ANIMATED)
    resolver = Resolver({"sticker.test": "127.0.0.1"})
    assert check(server.url("/s.webp"), resolver) == WebpInfo(512, 512, True)
    # One lookup, and the connection went to its answer with the name as Host: a second
    # DNS answer (rebinding) has nothing to switch.
    assert resolver.lookups == ["sticker.test"]
    assert server.seen == [("/s.webp", f"sticker.test:{server.port}")]


@pytest.mark.parametrize(
    ("route", "problem"),
    [
        (Route(headers={"Content-Type": "image/png"}), "served as 'image/png', not image/webp"),
        (Route(headers={}), "served as 'no content type', not image/webp"),
        (Route(webp((256, 256))), "256 x 256 pixels: a sticker is exactly 512 x 512"),
        (Route(webp(noise=True)), "180.2 KB: a static sticker is at most 100.0 KB"),
        (Route(b"<html>" * 10), "not a WebP image"),
        (Route(b"gone", 404, {}), "not reachable: the server answered HTTP 404"),
    ],
    ids=["png type", "no type", "256px", "too big", "html", "404"],
)
def test_a_bad_sticker_link_is_refused_with_the_reason(
    server: StickerServer, route: Route, problem: str
) -> None:
    server.routes["/s.webp"] = route
    [found] = problems(server.url("/s.webp?sig=secret"))
    assert problem in found


def test_a_link_without_content_length_is_sized_by_reading_up_to_the_cap(
    server: StickerServer,
) -> None:
    big = webp(noise=True, lossless=True)
    server.routes["/s.webp"] = Route(big, sized=False)
    assert "a static sticker is at most 100.0 KB" in problems(server.url("/s.webp"))[0]


def test_http_is_refused_unless_the_host_is_allowed(server: StickerServer) -> None:
    server.routes["/s.webp"] = Route()
    [problem] = problems(server.url("/s.webp"), allow=frozenset())
    assert problem.endswith("is not https: serve the sticker over https")
    assert server.seen == []


@pytest.mark.parametrize(
    ("link", "names", "reason"),
    [
        ("https://127.0.0.1:{port}/s.webp", {}, "a loopback address"),
        ("https://localhost:{port}/s.webp", {"localhost": "127.0.0.1"}, "a loopback address"),
        ("https://[::1]:{port}/s.webp", {}, "a loopback address"),
        ("https://cdn.test/s.webp", {"cdn.test": "10.0.0.7"}, "a private address"),
        ("https://cdn.test/s.webp", {"cdn.test": "192.168.1.20"}, "a private address"),
        ("https://cdn.test/s.webp", {"cdn.test": "fe80::1"}, "a link-local address"),
        ("https://cdn.test/s.webp", {"cdn.test": "::ffff:10.0.0.1"}, "a private address"),
        ("https://169.254.169.254/latest/meta-data/", {}, "a cloud metadata address"),
        ("https://meta.test/s.webp", {"meta.test": "fd00:ec2::254"}, "a cloud metadata address"),
        ("https://cdn.test/s.webp", {"cdn.test": "224.0.0.251"}, "a multicast address"),
        ("https://cdn.test/s.webp", {"cdn.test": "100.64.0.1"}, "not a public address"),
        ("https://cdn.test/s.webp", {"cdn.test": "0.0.0.0"}, "address"),
    ],
)
def test_internal_addresses_are_refused_by_default_before_any_request(
    server: StickerServer, link: str, names: dict[str, str], reason: str
) -> None:
    server.routes["/s.webp"] = Route()
    resolver = Resolver(names) if names else LITERALS
    link = link.format(port=server.port)
    [problem] = problems(link, resolver, allow=frozenset())
    assert reason in problem and "stickerq never fetches internal addresses" in problem
    assert server.seen == []


@pytest.mark.parametrize(
    "addresses", [["10.20.30.40"], ["fd12:3456::7"], ["93.184.216.34", "172.16.5.9"]]
)
def test_a_refused_host_says_why_without_the_address_it_resolved_to(
    addresses: list[str],
) -> None:
    def resolve(host: str, port: int, **_: Any) -> list[Any]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses]

    [problem] = problems("https://intranet.test/s.webp", resolve, allow=frozenset())

    assert problem.startswith("intranet.test resolves to an internal address (a private")
    assert not [address for address in addresses if address in problem], problem


def test_a_redirect_to_an_internal_address_is_refused_without_following_it(
    server: StickerServer,
) -> None:
    names = {"sticker.test": "127.0.0.1", "inside.test": "10.1.2.3"}
    for path, target in [("/to-metadata", "https://169.254.169.254/latest/meta-data/"),
                         ("/to-private", "https://inside.test/s.webp"),
                         ("/to-loopback", f"https://127.0.0.1:{server.port}/s.webp")]:  # fmt: skip
        server.routes[path] = Route(b"", 302, {"Location": target})
        names.setdefault("169.254.169.254", "169.254.169.254")
        names.setdefault("127.0.0.1", "127.0.0.1")
        [problem] = problems(server.url(path), Resolver(names))
        assert "stickerq never fetches internal addresses" in problem
    assert [path for path, _ in server.seen] == ["/to-metadata", "/to-private", "/to-loopback"]


def test_redirects_are_followed_to_a_bound(server: StickerServer) -> None:
    server.routes["/hop"] = Route(b"", 301, {"Location": "/s.webp"})
    server.routes["/s.webp"] = Route()
    assert check(server.url("/hop")) == WebpInfo(512, 512, False)
    server.routes["/loop"] = Route(b"", 302, {"Location": "/loop"})
    [problem] = problems(server.url("/loop"))
    assert problem == f"more than {MAX_REDIRECTS} redirects: link the file itself"
    assert [path for path, _ in server.seen].count("/loop") == MAX_REDIRECTS + 1


def test_an_unreachable_or_unknown_host_is_refused() -> None:
    [unknown] = problems("https://nowhere.test/s.webp", Resolver({}), allow=frozenset())
    assert unknown.startswith("not reachable: nowhere.test cannot be resolved")
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    [closed] = problems(f"http://sticker.test:{port}/s.webp")
    assert closed.startswith("not reachable: ConnectError")


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_server(ca: trustme.CA) -> Iterator[StickerServer]:
    """The server over https, with a certificate for sticker.test from a test CA."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("sticker.test").configure_cert(context)
    yield from _serve(context)


def test_https_goes_to_the_checked_address_and_verifies_the_name(
    tls_server: StickerServer, ca: trustme.CA
) -> None:
    tls_server.routes["/s.webp"] = Route()
    trusted = ssl.create_default_context()
    ca.configure_trust(trusted)
    link = f"https://sticker.test:{tls_server.port}/s.webp"
    info = check_sticker_link(link, allow_hosts=ALLOWED, resolve=LOCAL, verify=trusted)
    assert info == WebpInfo(512, 512, False)
    # The same address under a name the certificate does not hold: refused, not trusted.
    other = Resolver({"other.test": "127.0.0.1"})
    with pytest.raises(StickerRejected, match="CERTIFICATE_VERIFY_FAILED"):
        check_sticker_link(
            f"https://other.test:{tls_server.port}/s.webp",
            allow_hosts=frozenset({"other.test"}), resolve=other, verify=trusted,
        )  # fmt: skip
    assert [path for path, _ in tls_server.seen] == ["/s.webp"]
