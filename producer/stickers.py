"""WhatsApp's rules for a sticker file, checked before a campaign relies on it.

A sticker is a WebP of exactly 512 x 512 pixels, at most 100 KB when static and 500 KB when
animated (Meta's media limits; we read KB as 1,000 bytes, the stricter reading). The rules
are checked on what we can see: a file on disk (`check_sticker_file`, with Pillow) or the
first bytes and the size of a link (`read_webp_header`, by producer.sticker_links). Every
broken rule is reported at once.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from stickerq.errors import StickerqError

STICKER_PIXELS = 512
STATIC_MAX_BYTES = 100_000
ANIMATED_MAX_BYTES = 500_000
WEBP_HEADER_BYTES = 30  # RIFF header (12) + first chunk header (8) + its first 10 bytes
WEBP_TYPE = "image/webp"


class StickerRejected(StickerqError):
    """The sticker breaks WhatsApp's rules; `problems` lists every rule it breaks."""

    def __init__(self, where: str, problems: list[str]) -> None:
        self.where = where
        self.problems = problems
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        lines = [f"the sticker {where} cannot be sent ({count}):"]
        lines += [f"  - {problem}" for problem in problems]
        super().__init__("\n".join(lines))


@dataclass(frozen=True, slots=True)
class WebpInfo:
    """What a WebP header says: its canvas and whether it is animated."""

    width: int
    height: int
    animated: bool


def read_webp_header(head: bytes) -> WebpInfo | None:
    """Width, height and the animation flag from a WebP's first bytes; None if not a WebP.

    The first chunk is VP8X (extended: flags, canvas), VP8 (lossy: the key frame's size
    after its start code) or VP8L (lossless: 14-bit sizes after a signature byte).
    """
    if len(head) < WEBP_HEADER_BYTES or head[:4] != b"RIFF" or head[8:12] != b"WEBP":
        return None
    chunk, data = head[12:16], head[20:30]
    if chunk == b"VP8X":
        animated = bool(data[0] & 0x02)
        width = 1 + int.from_bytes(data[4:7], "little")
        height = 1 + int.from_bytes(data[7:10], "little")
        return WebpInfo(width, height, animated)
    if chunk == b"VP8 " and data[3:6] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", data[6:10])
        return WebpInfo(width & 0x3FFF, height & 0x3FFF, False)
    if chunk == b"VP8L" and data[0] == 0x2F:
        bits = int.from_bytes(data[1:5], "little")
        return WebpInfo((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, False)
    return None


def _kb(size: int) -> str:
    return f"{size / 1000:,.1f} KB"


def rule_problems(info: WebpInfo | None, size: int | None) -> list[str]:
    """The rules a sticker of this header and byte size breaks (empty: none)."""
    if info is None:
        return [
            "not a WebP image: convert it to WebP (e.g. `cwebp -resize 512 512 in.png -o s.webp`)"
        ]
    problems = []
    if (info.width, info.height) != (STICKER_PIXELS, STICKER_PIXELS):
        problems.append(
            f"{info.width} x {info.height} pixels: a sticker is exactly "
            f"{STICKER_PIXELS} x {STICKER_PIXELS}; resize it (pad with transparency)"
        )
    limit = ANIMATED_MAX_BYTES if info.animated else STATIC_MAX_BYTES
    if size is not None and size > limit:
        kind = "an animated" if info.animated else "a static"
        problems.append(
            f"{_kb(size)}: {kind} sticker is at most {_kb(limit)}; compress it "
            "(e.g. `cwebp -q 60`) or drop frames"
        )
    return problems


def check_sticker_file(path: Path) -> WebpInfo:
    """Check a file against every rule with Pillow; raises StickerRejected listing each one."""
    from PIL import Image, UnidentifiedImageError

    where = str(path)
    try:
        size = path.stat().st_size
        with Image.open(path) as image:
            image_format = image.format
            width, height = image.size
            animated = bool(getattr(image, "is_animated", False))
    except FileNotFoundError:
        raise StickerRejected(where, ["no such file: check the path"]) from None
    except IsADirectoryError:
        raise StickerRejected(where, ["a directory, not a file"]) from None
    except Image.DecompressionBombError:  # a header claiming a giant image: never decoded
        pixels = 2 * (Image.MAX_IMAGE_PIXELS or 0)  # where Pillow raises rather than warns
        raise StickerRejected(
            where,
            [
                f"its header claims more than {pixels:,} pixels, where a "
                f"sticker is {STICKER_PIXELS} x {STICKER_PIXELS}: not a sticker (a decompression "
                "bomb?)"
            ],
        ) from None
    except (UnidentifiedImageError, OSError, ValueError):
        raise StickerRejected(where, rule_problems(None, None)) from None
    if image_format != "WEBP":
        problems = [f"a {image_format} image, not WebP: convert it to WebP"]
        if (width, height) != (STICKER_PIXELS, STICKER_PIXELS):
            problems += rule_problems(WebpInfo(width, height, animated), None)
        raise StickerRejected(where, problems)
    info = WebpInfo(width, height, animated)
    problems = rule_problems(info, size)
    if problems:
        raise StickerRejected(where, problems)
    return info
