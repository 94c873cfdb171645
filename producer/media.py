"""`stickerq media upload FILE`: a sticker file checked against WhatsApp's rules, then
uploaded with Kaleyra's media endpoint for a media id that any number of sends can use.

`POST {base}/v2/{SID}/whatsapp/{sender}/media`, header `api-key`, multipart fields `file`
and `type` (docs/kaleyra-contract.md). The answer's shape is not public: the id is looked
for where Kaleyra and Meta put ids. The api-key goes in that header only, never in an error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from stickerq.accounts import Account, check_sender, default_sender
from stickerq.errors import ConfigurationError, ServiceUnavailable, StickerqError
from stickerq.producer.phones import InvalidPhone, normalise_phone
from stickerq.producer.stickers import WEBP_TYPE, check_sticker_file
from stickerq.settings import Settings

DETAIL_MAX = 200


class MediaUploadFailed(StickerqError):
    """Kaleyra refused the upload, or answered without a media id."""


class KaleyraUnreachable(MediaUploadFailed, ServiceUnavailable):
    """No answer from Kaleyra (the CLI exits 1, as for any service out of reach)."""


@dataclass(frozen=True, slots=True)
class MediaUpload:
    """A sticker uploaded: its media id, and what the check read from the file."""

    media_id: str
    file: str
    bytes: int
    width: int
    height: int
    animated: bool
    sender: str


def media_url(account: Account, sender: str) -> str:
    return f"{account.url}/v2/{account.sid}/whatsapp/{sender}/media"


def upload_media(
    settings: Settings,
    path: Path,
    *,
    sender: str | None = None,
    account: str | None = None,
    transport: httpx.BaseTransport | None = None,
) -> MediaUpload:
    """Check the file (StickerRejected lists every broken rule), upload it to the account
    (None: the only one configured) through `sender`, return its id."""
    info = check_sticker_file(path)
    chosen = settings.account(account)
    number = _sender(sender or default_sender(chosen, settings.sender), settings.default_region)
    check_sender(chosen, number)
    key = chosen.api_key.get_secret_value()
    if not key:
        raise ConfigurationError(
            "no api-key: set STICKERQ_KALEYRA_API_KEY to the key of the Kaleyra account"
            if not settings.lists_accounts
            else f"no api_key for Kaleyra account {chosen.sid} in the list of accounts: give it"
        )
    timeout = httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout)
    url = media_url(chosen, number)
    try:
        with (
            httpx.Client(trust_env=False, timeout=timeout, transport=transport) as client,
            path.open("rb") as file,
        ):
            response = client.post(
                url,
                headers={"api-key": key},
                files={"file": (path.name, file, WEBP_TYPE)},
                data={"type": WEBP_TYPE},
            )
    except httpx.HTTPError as exc:  # str(exc) names the URL at most, never a header
        raise KaleyraUnreachable(
            f"cannot upload to {chosen.url}: {type(exc).__name__}: {exc}; "
            "check STICKERQ_KALEYRA_POD / STICKERQ_KALEYRA_BASE_URL and the network"
        ) from None
    body = _json(response)
    if not response.is_success:
        raise MediaUploadFailed(
            f"Kaleyra refused the upload: HTTP {response.status_code} {_detail(body)}".rstrip()
        )
    media_id = find_media_id(body)
    if media_id is None:
        raise MediaUploadFailed(
            f"Kaleyra answered HTTP {response.status_code} without a media id: {_detail(body)}"
        )
    return MediaUpload(
        media_id=media_id,
        file=str(path),
        bytes=path.stat().st_size,
        width=info.width,
        height=info.height,
        animated=info.animated,
        sender=number,
    )


def _sender(sender: str | None, region: str | None) -> str:
    if not sender:
        raise ConfigurationError(
            "no sender number: pass --from +91... or set STICKERQ_SENDER to the business "
            "number registered on your Kaleyra account"
        )
    try:
        return normalise_phone(sender, region)
    except InvalidPhone as exc:
        raise ConfigurationError(f"sender {sender!r} is not a valid number: {exc.reason}") from None


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (ValueError, UnicodeDecodeError):
        return None


def find_media_id(body: Any) -> str | None:
    """The id in `data.media_id`, `data.id`, `media_id` or `id` (Meta's `{"id": ...}`)."""
    if not isinstance(body, dict):
        return None
    data = body.get("data")
    places = [data] if isinstance(data, dict) else []
    if isinstance(data, list) and data and isinstance(data[0], dict):
        places.append(data[0])
    places.append(body)
    for place in places:
        for key in ("media_id", "id"):
            value = place.get(key)
            if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
                return str(value)
    return None


def _detail(body: Any) -> str:
    """Kaleyra's code and message, cut short."""
    if isinstance(body, dict):
        text = " ".join(str(body[k]) for k in ("code", "message") if body.get(k))
        text = text or json.dumps(body)
    else:
        text = "(no JSON body)"
    return text[:DETAIL_MAX]
