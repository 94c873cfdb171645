"""The JSON of `media upload`."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from stickerq.producer.views.base import View


class MediaUploadView(View):
    """A sticker file that passed WhatsApp's rules and was uploaded: its media id."""

    media_id: Annotated[
        str, Field(description="Kaleyra's media id: give it to `send --sticker-id`")
    ]
    file: Annotated[str, Field(description="the file uploaded, as given")]
    bytes: Annotated[int, Field(description="its size in bytes")]
    width: Annotated[int, Field(description="pixels (always 512: the check refuses others)")]
    height: Annotated[int, Field(description="pixels (always 512)")]
    animated: Annotated[bool, Field(description="an animated WebP (limit 500 KB; static: 100 KB)")]
    sender: Annotated[str, Field(description="the business number it was uploaded for, E.164")]
