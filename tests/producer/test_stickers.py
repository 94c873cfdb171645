"""WhatsApp's sticker rules on files made with Pillow: WebP, 512 x 512, 100 KB static or
500 KB animated, every broken rule reported at once; the WebP header read from first bytes."""

from __future__ import annotations

from pathlib import Path

import pytest

from stickerq.producer.stickers import (
    STATIC_MAX_BYTES,
    WEBP_HEADER_BYTES,
    StickerRejected,
    WebpInfo,
    check_sticker_file,
    read_webp_header,
)
from tests.webp import webp


def saved(tmp_path: Path, data: bytes, name: str = "s.webp") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("options", "animated"),
    [({}, False), ({"lossless": True}, False), ({"frames": 2}, True)],
    ids=["lossy VP8", "lossless VP8L", "animated VP8X"],
)
def test_a_512_webp_passes_and_its_first_bytes_say_the_same(
    tmp_path: Path, options: dict, animated: bool
) -> None:
    data = webp(**options)
    assert check_sticker_file(saved(tmp_path, data)) == WebpInfo(512, 512, animated)
    assert read_webp_header(data[:WEBP_HEADER_BYTES]) == WebpInfo(512, 512, animated)


def test_an_animated_sticker_may_be_bigger_than_a_static_one(tmp_path: Path) -> None:
    animated = webp(frames=2, noise=True)
    assert STATIC_MAX_BYTES < len(animated) <= 500_000
    assert check_sticker_file(saved(tmp_path, animated)).animated


def rejected(path: Path) -> list[str]:
    with pytest.raises(StickerRejected) as caught:
        check_sticker_file(path)
    assert str(path) in str(caught.value)
    return caught.value.problems


def test_every_broken_rule_is_reported_at_once(tmp_path: Path) -> None:
    big_and_small = saved(tmp_path, webp((400, 300), noise=True, lossless=True))
    problems = rejected(big_and_small)
    assert len(problems) == 2
    assert problems[0].startswith("400 x 300 pixels: a sticker is exactly 512 x 512")
    assert "a static sticker is at most 100.0 KB" in problems[1]


def test_a_png_is_refused_as_not_webp_and_for_its_size(tmp_path: Path) -> None:
    problems = rejected(saved(tmp_path, webp((64, 64), image_format="PNG"), "s.png"))
    assert problems[0] == "a PNG image, not WebP: convert it to WebP"
    assert problems[1].startswith("64 x 64 pixels")


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (webp(noise=True, lossless=True), "786.5 KB: a static sticker is at most 100.0 KB"),
        (webp(frames=3, noise=True, lossless=True), "an animated sticker is at most 500.0 KB"),
        (b"RIFF\x00\x00\x00\x00WEBPjunk", "not a WebP image"),
        (b"", "not a WebP image"),
    ],
    ids=["static too big", "animated too big", "broken webp", "empty"],
)
def test_one_broken_rule_is_named_with_its_fix(tmp_path: Path, data: bytes, problem: str) -> None:
    [found] = rejected(saved(tmp_path, data))
    assert problem in found


def test_a_missing_file_is_a_clear_refusal(tmp_path: Path) -> None:
    assert rejected(tmp_path / "nope.webp") == ["no such file: check the path"]


@pytest.mark.parametrize(
    "head",
    [b"", b"RIFF" + b"\x00" * 40, b"RIFF\x00\x00\x00\x00WEBPVP8 " + b"\x00" * 20],
    ids=["empty", "not webp", "VP8 without its start code"],
)
def test_first_bytes_that_are_no_webp_header_read_as_none(head: bytes) -> None:
    assert read_webp_header(head) is None


def test_a_header_claiming_a_giant_image_is_refused_unread(tmp_path: Path) -> None:
    """Pillow's DecompressionBombError was a traceback from `stickerq media upload`."""
    canvas = (16383).to_bytes(3, "little") * 2  # VP8X: a 16384 x 16384 canvas
    chunk = b"VP8X" + (10).to_bytes(4, "little") + bytes(4) + canvas
    bomb = saved(tmp_path, b"RIFF" + (4 + len(chunk)).to_bytes(4, "little") + b"WEBP" + chunk)

    [problem] = rejected(bomb)

    assert problem.startswith("its header claims more than 178,956,970 pixels")
