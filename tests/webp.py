"""Sticker files made with Pillow for the tests: good ones and ones that break each rule."""

from __future__ import annotations

import io
import random

from PIL import Image


def webp(
    size: tuple[int, int] = (512, 512),
    *,
    frames: int = 1,
    noise: bool = False,
    lossless: bool = False,
    image_format: str = "WEBP",
) -> bytes:
    """An image as bytes: a flat colour (small), or random noise (large when lossless)."""
    rng = random.Random(7)
    images = []
    for frame in range(frames):
        if noise:
            image = Image.frombytes("RGB", size, rng.randbytes(size[0] * size[1] * 3))
        else:
            image = Image.new("RGBA", size, (200, 40 * frame % 255, 90, 255))
        images.append(image)
    out = io.BytesIO()
    extra: dict[str, object] = {"lossless": lossless} if image_format == "WEBP" else {}
    if frames > 1:
        extra.update(save_all=True, append_images=images[1:], duration=100, loop=0)
    images[0].save(out, format=image_format, **extra)
    return out.getvalue()
