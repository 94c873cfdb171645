"""The batches a worker process runs at once: per-campaign share, total, hand-over, halt."""

from __future__ import annotations

import threading
import time

import pytest

from stickerq.worker.batch_room import BatchRoom


def test_a_campaign_with_its_share_running_gives_the_batch_back_after_patience() -> None:
    room = BatchRoom(total=4, per_campaign=2)
    with room.place(1, 0.1) as first, room.place(1, 0.1) as second:
        assert first is not None and second is not None
        started = time.monotonic()
        with room.place(1, 0.1) as third:
            assert third is None
        assert time.monotonic() - started >= 0.1
        with room.place(2, 0.1) as other_campaign:  # another campaign still has room
            assert other_campaign is not None
            assert room.running() == {1: 2, 2: 1}
    assert room.running() == {}


def test_a_full_process_takes_a_place_that_frees_within_patience_else_gives_back() -> None:
    room = BatchRoom(total=2, per_campaign=1)
    release = threading.Event()
    entered = threading.Event()

    def holder() -> None:
        with room.place(1, 0.0), room.place(2, 0.0):
            entered.set()
            release.wait()

    thread = threading.Thread(target=holder)
    thread.start()
    entered.wait()
    with room.place(3, 0.1) as refused:
        assert refused is None  # full for longer than the patience
    threading.Timer(0.1, release.set).start()
    with room.place(3, 2.0) as taken:
        assert taken is not None  # a place came free in time
    thread.join(2)


def test_a_handed_over_place_is_freed_when_finish_returns_and_halt_stops_it() -> None:
    room = BatchRoom(total=1, per_campaign=1)
    halted = threading.Event()
    with room.place(7, 0.0) as finish_later:
        assert finish_later is not None
        finish_later(lambda: halted.wait(5), halted.set)
    assert room.running() == {7: 1}  # the block ended, the batch runs on
    room.halt_and_wait(lambda halt: halt(), timeout=5)
    assert halted.is_set()
    assert room.running() == {}


def test_a_failing_finish_still_frees_its_place() -> None:
    room = BatchRoom(total=1, per_campaign=1)

    def broken() -> None:
        raise RuntimeError("boom")

    with room.place(1, 0.0) as finish_later:
        assert finish_later is not None
        finish_later(broken, lambda: None)
    with room.place(1, 2.0) as again:
        assert again is not None


def test_shares_must_fit_the_total() -> None:
    with pytest.raises(ValueError):
        BatchRoom(total=2, per_campaign=3)
