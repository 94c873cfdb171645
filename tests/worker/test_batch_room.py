"""The batches a worker process runs at once: per-campaign share, total, hand-over, halt."""

from __future__ import annotations

import asyncio
import time

import pytest

from stickerq.worker.batch_room import BatchRoom


def test_a_campaign_with_its_share_running_gives_the_batch_back_after_patience() -> None:
    async def scenario() -> None:
        room = BatchRoom(total=4, per_campaign=2)
        assert await room.enter(1, 0.1) and await room.enter(1, 0.1)
        started = time.monotonic()
        assert not await room.enter(1, 0.1)
        assert time.monotonic() - started >= 0.1
        assert await room.enter(2, 0.1)  # another campaign still has room
        assert room.running() == {1: 2, 2: 1}
        for campaign_id in (1, 1, 2):
            room.leave(campaign_id)
        assert room.running() == {}

    asyncio.run(scenario())


def test_a_full_process_takes_a_place_that_frees_within_patience_else_gives_back() -> None:
    async def scenario() -> None:
        room = BatchRoom(total=2, per_campaign=1)
        assert await room.enter(1, 0.0) and await room.enter(2, 0.0)
        assert not await room.enter(3, 0.1)  # full for longer than the patience
        asyncio.get_running_loop().call_later(0.1, room.leave, 1)
        started = time.monotonic()
        assert await room.enter(3, 2.0)  # a place came free in time
        assert time.monotonic() - started < 1.0  # woken when it was freed, not at patience
        assert room.running() == {2: 1, 3: 1}

    asyncio.run(scenario())


def test_a_handed_over_place_is_freed_when_finish_returns_and_halt_stops_it() -> None:
    async def scenario() -> None:
        room = BatchRoom(total=1, per_campaign=1)
        halted = asyncio.Event()
        assert await room.enter(7, 0.0)
        room.hand_over(7, halted.wait(), halted.set)
        await asyncio.sleep(0)
        assert room.running() == {7: 1}  # the task returned, the batch runs on
        await room.halt_and_wait(timeout=5)
        assert halted.is_set()
        assert room.running() == {}

    asyncio.run(scenario())


def test_a_failing_finish_still_frees_its_place(caplog: pytest.LogCaptureFixture) -> None:
    async def broken() -> None:
        raise RuntimeError("boom")

    async def scenario() -> None:
        room = BatchRoom(total=1, per_campaign=1)
        assert await room.enter(1, 0.0)
        room.hand_over(1, broken(), lambda: None)
        assert await room.enter(1, 2.0)

    asyncio.run(scenario())
    assert "a batch failed while finishing" in caplog.text


def test_shares_must_fit_the_total() -> None:
    with pytest.raises(ValueError):
        BatchRoom(total=2, per_campaign=3)
