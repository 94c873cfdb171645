"""The JSON of `keys create|list|revoke` (and of /keys in the HTTP API)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from stickerq.producer.views.base import Time, View
from stickerq.scopes import Scope


class KeyView(View):
    """An API key as stored: never its value."""

    name: Annotated[str, Field(description="the key's name: the actor of what it changes")]
    scope: Annotated[Scope, Field(description="read < send < operate < admin")]
    account: Annotated[
        str | None, Field(description="the only account (SID) it reaches; null: every one")
    ]
    created_at: Annotated[Time, Field(description="when it was made")]
    last_used_at: Annotated[
        Time | None, Field(description="its last use, to about a minute; null: never used")
    ]
    expires_at: Annotated[Time | None, Field(description="when it stops working; null: never")]
    revoked_at: Annotated[Time | None, Field(description="when it was revoked; null: live")]


class NewKeyView(KeyView):
    """A key just made, with its value: shown this once, never stored."""

    key: Annotated[str, Field(description="the key (`sq_...`): send it as `Bearer KEY`")]
