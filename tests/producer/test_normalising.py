"""Normalising in chunks over several processes: the same answers, in the same order."""

from __future__ import annotations

import sys

import pytest

from stickerq.producer import normalising
from stickerq.producer.phones import InvalidPhone

ROWS = [
    (raw, line)
    for line in range(1, 2_001)
    for raw in [
        f"+9198{line:08d}"
        if line % 7
        else ("+91 12" if line % 2 else f"{line}abc")  # too short / letters
    ]
]


def answers(processes: int) -> list[tuple[str, int, str]]:
    return [
        (raw, line, phone.reason if isinstance(phone, InvalidPhone) else phone)
        for raw, line, phone in normalising.normalised(ROWS, None, processes=processes)
    ]


def test_many_processes_give_the_answers_of_one_in_file_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(normalising, "CHUNK_ROWS", 150)  # 14 chunks
    serial, parallel = answers(1), answers(2)
    assert parallel == serial
    assert [line for _, line, _ in parallel] == list(range(1, 2_001))
    assert serial[0] == ("+919800000001", 1, "+919800000001")
    invalid = [(line, answer) for _, line, answer in serial if not answer.startswith("+")]
    assert len(invalid) == 2_000 // 7
    assert {answer for _, answer in invalid} == {
        "too short for a +91 number",
        "only digits, a leading +, spaces, dashes, dots and parentheses are allowed",
    }


def test_no_rows_and_one_short_chunk() -> None:
    assert list(normalising.normalised([], None)) == []
    assert [phone for _, _, phone in normalising.normalised([("+447911123456", 1)], None)] == [
        "+447911123456"
    ]


def test_helpers_that_cannot_run_leave_the_work_to_this_process(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(normalising, "CHUNK_ROWS", 150)
    serial = answers(1)
    monkeypatch.setattr(sys, "executable", "/bin/false")  # every helper exits at once
    assert answers(2) == serial
    assert "normalising its chunks here" in caplog.text
