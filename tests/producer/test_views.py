"""The JSON views: what each prints from a producer result, and the streamed failures listing
being exactly its model's document."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from stickerq.producer.failures import FailureFilters, FailureRow, SummaryRow
from stickerq.producer.lifecycle import CampaignSummary
from stickerq.producer.reports import Breakdown, RefGroup
from stickerq.producer.views.base import to_json, write_streamed
from stickerq.producer.views.campaigns import CampaignView
from stickerq.producer.views.failures import (
    FailureCountView,
    FailureFiltersView,
    FailureRowView,
    FailuresView,
)
from stickerq.producer.views.reports import BreakdownView
from stickerq.states import MessageStatus

AT = datetime(2030, 6, 1, 4, 0, tzinfo=UTC)


def statuses(**counts: int) -> dict[str, int]:
    return {status.value: counts.get(status.value, 0) for status in MessageStatus}


def test_the_groups_beyond_top_are_summed_with_how_many_and_no_value() -> None:
    north = RefGroup("north", 13, statuses(sent=12, failed=1))
    rest = RefGroup(None, 37, statuses(sent=33, failed=2, unknown=2))

    shown = json.loads(to_json(BreakdownView.of_breakdown(Breakdown("ref1", 1, 4, [north], rest))))

    assert shown["groups"] == [{"value": "north", "recipients": 13,
                                "by_status": statuses(sent=12, failed=1), "succeeded": 12,
                                "success_rate": 12 / 13}]  # fmt: skip
    assert list(shown["other"]) == [
        "groups",
        "recipients",
        "by_status",
        "succeeded",
        "success_rate",
    ]
    assert (shown["other"]["groups"], shown["other"]["succeeded"]) == (3, 33)


def test_a_campaign_prints_its_time_in_utc_and_in_its_own_zone() -> None:
    summary = CampaignSummary(7, "spring", "scheduled", "+919000000001", 3, AT, "Asia/Kolkata",
                              AT, None)  # fmt: skip

    shown = json.loads(to_json(CampaignView.of_summary(summary)))

    assert shown["scheduled_at_utc"] == "2030-06-01T04:00:00+00:00"
    assert shown["scheduled_at_local"] == "2030-06-01T09:30:00+05:30"
    assert shown["timezone"] == "Asia/Kolkata"


@pytest.mark.parametrize("count", [0, 1, 3])
def test_the_streamed_failures_listing_is_its_models_document(count: int) -> None:
    rows = [FailureRow(7, f"+9198123456{n:02d}", "unknown", "WA202", None, "no answer", 1, AT)
            for n in range(count)]  # fmt: skip
    views = [FailureRowView.of(row, recipient=row.recipient) for row in rows]
    head = FailuresView(
        filters=FailureFiltersView.of(FailureFilters(status=MessageStatus.UNKNOWN)),
        summary=[FailureCountView.of(SummaryRow("unknown", "WA202", count))],
        total=count,
        truncated=False,
        rows=[],
    )
    out = io.StringIO()

    write_streamed(out, head, iter(views))

    whole = head.model_copy(update={"rows": views})
    assert out.getvalue() == to_json(whole) + "\n"
    assert FailuresView.model_validate_json(out.getvalue()) == whole


def test_a_view_refuses_a_key_it_does_not_describe() -> None:
    with pytest.raises(ValidationError, match="extra"):
        FailureCountView.model_validate({"status": "failed", "code": None, "count": 1, "x": 2})
