"""The JSON of `erase` (and of `DELETE /recipients/{number}` in the HTTP API)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Self

from pydantic import Field

from stickerq.masking import mask_phone
from stickerq.producer.views.base import View

if TYPE_CHECKING:
    from stickerq.producer.erasure import ErasureResult


class ErasureView(View):
    """What an erase of a number removed, table by table (with `--dry-run`: would remove)."""

    phone: Annotated[str, Field(description="the number, masked (`+91******5678`)")]
    dry_run: Annotated[bool, Field(description="true: nothing was changed, only counted")]
    found: Annotated[bool, Field(description="false: no table held the number")]
    complete: Annotated[
        bool,
        Field(
            description="false: messages to the number were being sent (`left_sending`) and "
            "were left; erase again once they settled"
        ),
    ]
    removed: Annotated[
        dict[str, int],
        Field(
            description="table -> rows removed or changed: `suppressions` (entries turned into "
            "keyed hashes, reasons cleaned), `messages`, `attempts`, `unknown_callbacks`, "
            "`idempotency_keys` (request hashes erased, keys holding the number deleted), "
            "`campaigns` and `pauses` (the number cut out of their text), `customer_windows` "
            "(its rows in the window ledger), `audit_log` (entries whose target or parameters "
            "held it, which now hold its keyed hash)"
        ),
    ]
    campaigns_held: Annotated[int, Field(description="campaigns that had a message to it")]
    left_sending: Annotated[
        int, Field(description="its messages a worker is sending now: not erased")
    ]

    @classmethod
    def of_result(cls, result: ErasureResult) -> Self:
        return cls.of(result, phone=mask_phone(result.phone))
