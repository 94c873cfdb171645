"""The sandbox's 24-hour customer service windows, over real HTTP on loopback: who is in by the
share, 131047 for the others, customer messages that open a window and are posted onwards in
Kaleyra's incoming-message shape, and the announce of a list's in-window recipients."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from stickerq.sandbox import SandboxConfig, SandboxConfigError, SandboxControlError, SandboxServer
from stickerq.sandbox.config import changed_config
from stickerq.sandbox.windows import ANNOUNCE_SPREAD_SECONDS, announce_age, in_share
from tests.conftest import wait_until
from tests.sandbox.test_sandbox import KEY, SENDER, SID, to

NUMBERS = [f"+9198{n:08d}" for n in range(10_000)]
INCOMING_FIELDS = {
    "from", "wanumber", "created_at", "type", "body", "name", "mime_type", "media_url", "mobile",
}  # fmt: skip


class Receiver:
    """A webhook on loopback: records each JSON body and how many posts it held at once."""

    def __init__(self, hold_seconds: float = 0.0) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.in_flight = self.most_in_flight = 0
        lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                with lock:
                    receiver.in_flight += 1
                    receiver.most_in_flight = max(receiver.most_in_flight, receiver.in_flight)
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                time.sleep(hold_seconds)
                with lock:
                    receiver.bodies.append(body)
                    receiver.in_flight -= 1
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            request_queue_size = 256  # the sandbox opens up to 64 connections at once
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        serve = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        serve.start()

    def statuses(self) -> dict[str, list[tuple[str, int | None]]]:
        """Status callbacks by message_id: (status, Meta's error code or None), in order."""
        found: defaultdict[str, list[tuple[str, int | None]]] = defaultdict(list)
        for body in self.bodies:
            [meta] = body["meta_object"]["value"]["statuses"]
            code = meta["errors"][0]["code"] if "errors" in meta else None
            found[body["message_id"]].append((body["status"], code))
        return dict(found)


@pytest.fixture
def status_hook() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.server.shutdown()


@pytest.fixture
def incoming_hook() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.server.shutdown()


def send(sandbox: SandboxServer, recipient: str) -> str:
    answer = httpx.post(
        f"{sandbox.url}/v2/{SID}/whatsapp/{SENDER}/messages",
        json=to(recipient),
        headers={"api-key": KEY},
    )
    assert answer.status_code == 202  # accepted either way: the window shows in the callbacks
    return answer.json()["data"]["message_id"]


def split(seed: int, share: float) -> tuple[list[str], list[str]]:
    """NUMBERS[:200] in the window and out of it, by the share."""
    inside = [n for n in NUMBERS[:200] if in_share(seed, share, SENDER, n)]
    return inside, [n for n in NUMBERS[:200] if n not in inside]


# --- who is in the window ---------------------------------------------------------------


def test_the_share_is_about_right_and_the_same_every_time() -> None:
    picked = [in_share(11, 0.97, SENDER, number) for number in NUMBERS]
    assert 0.95 <= sum(picked) / len(picked) <= 0.99
    assert picked == [in_share(11, 0.97, SENDER, number) for number in NUMBERS]
    assert picked != [in_share(12, 0.97, SENDER, number) for number in NUMBERS]
    # the same pair, whether its numbers carry a + or not (the API's form, the callbacks')
    assert picked[:50] == [in_share(11, 0.97, "919000000001", n[1:]) for n in NUMBERS[:50]]
    assert all(in_share(11, 1.0, SENDER, n) for n in NUMBERS[:50])
    assert not any(in_share(11, 0.0, SENDER, n) for n in NUMBERS[:50])


def test_the_share_picks_the_same_numbers_in_another_process() -> None:
    """No per-process hash randomisation: a demo's process and the sandbox's agree."""
    code = (
        "from stickerq.sandbox.windows import in_share\n"
        f"print(''.join('1' if in_share(5, 0.5, {SENDER!r}, f'+9198{{n:08d}}') else '0' "
        "for n in range(300)))"
    )
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    here = "".join("1" if in_share(5, 0.5, SENDER, n) else "0" for n in NUMBERS[:300])
    assert other.stdout.strip() == here


# --- sends outside the window ----------------------------------------------------------


def test_send_outside_the_window_fails_131047_and_inside_goes_on_to_read(
    status_hook: Receiver,
) -> None:
    inside, outside = split(seed=7, share=0.5)
    config = SandboxConfig(callback_url=status_hook.url, in_window_share=0.5, seed=7)
    with SandboxServer(config) as sandbox:
        delivered, failed = send(sandbox, inside[0]), send(sandbox, outside[0])
        wait_until(lambda: len(status_hook.bodies) == 5, timeout=10)
        windows = sandbox.windows()
        assert sandbox.stats()["accepted_total"] == 2
    statuses = status_hook.statuses()
    assert statuses[delivered] == [("sent", None), ("delivered", None), ("read", None)]
    assert statuses[failed] == [("sent", None), ("failed", 131047)]
    assert windows["outside_window"] == 1


def test_the_default_config_keeps_every_recipient_in_the_window(status_hook: Receiver) -> None:
    with SandboxServer(SandboxConfig(callback_url=status_hook.url)) as sandbox:
        for number in NUMBERS[:10]:
            send(sandbox, number)
        wait_until(lambda: len(status_hook.bodies) == 30, timeout=10)
        assert sandbox.windows()["outside_window"] == 0
    assert all(len(s) == 3 for s in status_hook.statuses().values())


# --- customer messages: POST /_inbound -------------------------------------------------


def test_an_inbound_message_opens_the_window_and_is_posted_in_kaleyras_shape(
    status_hook: Receiver, incoming_hook: Receiver
) -> None:
    customer, other = NUMBERS[0], NUMBERS[1]
    config = SandboxConfig(
        callback_url=status_hook.url, inbound_url=incoming_hook.url, in_window_share=0.0
    )
    with SandboxServer(config) as sandbox:
        before = send(sandbox, customer)
        answer = httpx.post(
            f"{sandbox.url}/_inbound", json={"from": customer, "wanumber": SENDER}, timeout=30
        )
        assert answer.json() == {"opened": 1, "posted": 1, "refused": 0, "gave_up": 0}
        after, still_out = send(sandbox, customer), send(sandbox, other)
        wait_until(lambda: len(status_hook.bodies) == 7, timeout=10)
        windows = sandbox.windows()
    statuses = status_hook.statuses()
    assert statuses[before] == statuses[still_out] == [("sent", None), ("failed", 131047)]
    assert statuses[after] == [("sent", None), ("delivered", None), ("read", None)]
    assert windows["outside_window"] == 2 and windows["opened"] == 1
    assert windows["inbound"]["posted"] == 1
    [incoming] = incoming_hook.bodies
    assert set(incoming) == INCOMING_FIELDS
    assert (incoming["from"], incoming["mobile"], incoming["wanumber"]) == (
        customer[1:],
        customer[1:],
        SENDER[1:],
    )
    assert incoming["type"] == "text" and incoming["body"] and incoming["name"]
    assert incoming["mime_type"] == incoming["media_url"] == ""
    assert abs(int(incoming["created_at"]) - time.time()) < 60


def test_inbound_takes_a_list_and_numbers_without_a_plus(incoming_hook: Receiver) -> None:
    config = SandboxConfig(inbound_url=incoming_hook.url, in_window_share=0.0)
    customers = [number[1:] for number in NUMBERS[:3]]
    with SandboxServer(config) as sandbox:
        assert sandbox.inbound(SENDER[1:], customers, kind="sticker") == 3
        assert sandbox.windows()["opened"] == 3
    assert sorted(body["from"] for body in incoming_hook.bodies) == customers
    assert {body["type"] for body in incoming_hook.bodies} == {"sticker"}


def test_inbound_without_an_inbound_url_opens_windows_and_posts_nothing(
    status_hook: Receiver,
) -> None:
    config = SandboxConfig(callback_url=status_hook.url, in_window_share=0.0)
    with SandboxServer(config) as sandbox:
        assert sandbox.inbound(SENDER, [NUMBERS[0]]) == 1
        message_id = send(sandbox, NUMBERS[0])
        wait_until(lambda: len(status_hook.bodies) == 3, timeout=10)
        assert sandbox.windows()["inbound"]["posted"] == 0
    assert [status for status, _ in status_hook.statuses()[message_id]] == [
        "sent",
        "delivered",
        "read",
    ]


def test_thousands_of_inbound_posts_go_concurrently_but_at_most_64_at_a_time() -> None:
    hook = Receiver(hold_seconds=0.005)
    try:
        with SandboxServer(SandboxConfig(inbound_url=hook.url)) as sandbox:
            assert sandbox.inbound(SENDER, NUMBERS[:1000]) == 1000
            assert sandbox.windows()["inbound"]["posted"] == 1000
    finally:
        hook.server.shutdown()
    assert len({body["from"] for body in hook.bodies}) == 1000
    assert 1 < hook.most_in_flight <= 64


BAD_INBOUND: dict[str, tuple[Any, str]] = {
    "not-json": ("{", "not JSON"),
    "empty-list": ([], "non-empty list"),
    "not-an-object": (["+919812345678"], "message 0: must be an object"),
    "no-from": ({"wanumber": SENDER}, "message 0: from must be a phone number"),
    "bad-from": ({"from": "call me", "wanumber": SENDER}, "got 'call me'"),
    "unregistered": (
        {"from": NUMBERS[0], "wanumber": "+919999999999"},
        "wanumber must be a registered sender",
    ),
    "bad-type": ({"from": NUMBERS[0], "wanumber": SENDER, "type": 5}, "type must be"),
    "second-bad": (
        [{"from": NUMBERS[0], "wanumber": SENDER}, {"from": "", "wanumber": SENDER}],
        "message 1: from",
    ),
}


@pytest.mark.parametrize("body, why", list(BAD_INBOUND.values()), ids=list(BAD_INBOUND))
def test_bad_inbound_input_is_a_400_that_says_what_is_wrong(
    incoming_hook: Receiver, body: Any, why: str
) -> None:
    config = SandboxConfig(inbound_url=incoming_hook.url, in_window_share=0.0)
    content = body if isinstance(body, str) else json.dumps(body)
    with SandboxServer(config) as sandbox:
        answer = httpx.post(
            f"{sandbox.url}/_inbound",
            content=content,
            headers={"content-type": "application/json"},
        )
        assert sandbox.windows()["opened"] == 0  # all or nothing
    assert answer.status_code == 400
    assert why in answer.json()["error"]
    assert incoming_hook.bodies == []


# --- the announce of a list's in-window recipients -------------------------------------


def test_announce_posts_only_the_in_window_recipients_dated_within_the_hour(
    status_hook: Receiver, incoming_hook: Receiver
) -> None:
    inside, outside = split(seed=3, share=0.5)
    config = SandboxConfig(
        callback_url=status_hook.url, inbound_url=incoming_hook.url, in_window_share=0.5, seed=3
    )
    with SandboxServer(config) as sandbox:
        started = time.time()
        assert sandbox.announce_inbound(SENDER, NUMBERS[:200]) == len(inside)
        assert sandbox.windows()["opened"] == len(inside)
        failed = send(sandbox, outside[0])  # the announce opened nothing outside the share
        wait_until(lambda: len(status_hook.bodies) == 2, timeout=10)
    assert sorted(body["from"] for body in incoming_hook.bodies) == sorted(n[1:] for n in inside)
    dated = [int(body["created_at"]) for body in incoming_hook.bodies]
    assert all(started - ANNOUNCE_SPREAD_SECONDS - 1 <= at <= started + 1 for at in dated)
    assert len(set(dated)) > len(dated) // 2  # spread over the hour, not all at once
    assert status_hook.statuses()[failed] == [("sent", None), ("failed", 131047)]


def test_announce_dates_each_message_by_its_seeded_age(incoming_hook: Receiver) -> None:
    """The same age for a number on every run, so that a demo's ledger looks the same."""
    with SandboxServer(SandboxConfig(inbound_url=incoming_hook.url, seed=9)) as sandbox:
        before = time.time()
        sandbox.announce_inbound(SENDER, NUMBERS[:5])
        after = time.time()
    for body in incoming_hook.bodies:
        age = announce_age(9, SENDER, "+" + body["from"])
        assert before - 1 <= int(body["created_at"]) + age <= after


def test_announce_without_an_inbound_url_is_a_clear_error() -> None:
    with (
        SandboxServer(SandboxConfig()) as sandbox,
        pytest.raises(SandboxControlError, match="inbound_url is not set"),
    ):
        sandbox.announce_inbound(SENDER, NUMBERS[:3])


def test_announce_raises_when_the_receiver_refuses_the_posts() -> None:
    with SandboxServer(SandboxConfig()) as sandbox:
        sandbox.configure(inbound_url=f"{sandbox.url}/no-such-route")  # answered 404
        with pytest.raises(SandboxControlError, match="3 were refused"):
            sandbox.announce_inbound(SENDER, NUMBERS[:3])


@pytest.mark.parametrize(
    "body, why",
    [
        ({"recipients": [NUMBERS[0]]}, "sender must be a registered sender"),
        ({"sender": SENDER, "recipients": [NUMBERS[0], "x"]}, "recipients[1] must be"),
        ({"sender": SENDER, "recipients": NUMBERS[0]}, '"recipients": ['),
    ],
    ids=["no-sender", "bad-recipient", "recipients-not-a-list"],
)
def test_bad_announce_input_is_a_400_that_says_what_is_wrong(
    incoming_hook: Receiver, body: dict[str, Any], why: str
) -> None:
    with SandboxServer(SandboxConfig(inbound_url=incoming_hook.url)) as sandbox:
        answer = httpx.post(f"{sandbox.url}/_sandbox/announce", json=body)
    assert answer.status_code == 400
    assert why in answer.json()["error"]


# --- config ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {"in_window_share": 1.5},
        {"in_window_share": -0.1},
        {"in_window_share": "most"},
        {"inbound_url": "ftp://x"},
        {"inbound_url": ""},
    ],
)
def test_bad_window_config_is_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(SandboxConfigError):
        changed_config(SandboxConfig(), changes)
    with SandboxServer(SandboxConfig()) as sandbox:
        answer = httpx.post(f"{sandbox.url}/_sandbox/config", json=changes)
    assert answer.status_code == 400
    assert next(iter(changes)) in answer.json()["error"]


def test_reset_forgets_opened_windows_and_counts(incoming_hook: Receiver) -> None:
    config = SandboxConfig(inbound_url=incoming_hook.url, in_window_share=0.0)
    with SandboxServer(config) as sandbox:
        sandbox.inbound(SENDER, NUMBERS[:2])
        send(sandbox, NUMBERS[5])
        sandbox.reset()
        assert sandbox.windows() == {
            "outside_window": 0,
            "opened": 0,
            "inbound": {"posted": 0, "refused": 0, "retried": 0, "gave_up": 0, "pending": 0},
        }
