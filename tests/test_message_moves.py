"""The message status moves: the table, each move from every status on SQLite and PostgreSQL,
and no UPDATE of `messages.status` anywhere but stickerq/message_status.py."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from stickerq.message_status import MOVES, MessageMove, move_messages
from stickerq.models import Campaign, Message
from stickerq.states import CampaignStatus
from stickerq.states import MessageStatus as S

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ("stickerq", "producer", "worker")
HOME = ROOT / "stickerq" / "message_status.py"

# (move, the statuses it starts from, where it may end): docs/architecture.md's table,
# written out again rather than read from MOVES.
EXPECTED = [
    (MessageMove.CLAIM, {S.PENDING}, {S.SENDING}),
    (MessageMove.SUPPRESS, {S.SENDING}, {S.SUPPRESSED}),
    (MessageMove.WINDOW_CLOSED, {S.SENDING}, {S.OUTSIDE_WINDOW}),
    (
        MessageMove.RECORD,
        {S.SENDING, S.UNKNOWN},
        {S.SENT, S.PARKED, S.FAILED, S.UNKNOWN, S.PENDING, S.EXPIRED, S.OUTSIDE_WINDOW},
    ),
    (MessageMove.RELEASE, {S.SENDING, S.UNKNOWN}, {S.PENDING, S.CANCELLED}),
    (MessageMove.DEAD_CLAIM, {S.SENDING}, {S.UNKNOWN}),
    (MessageMove.CANCEL, {S.PENDING}, {S.CANCELLED}),
    (MessageMove.EXPIRE, {S.PENDING}, {S.EXPIRED}),
    (
        MessageMove.REQUEUE,
        {S.PARKED, S.FAILED, S.UNKNOWN, S.EXPIRED, S.OUTSIDE_WINDOW},
        {S.PENDING},
    ),
    (MessageMove.DELIVERED, {S.SENT, S.DELIVERED, S.READ}, {S.DELIVERED, S.READ}),
    (MessageMove.READ, {S.SENT, S.DELIVERED, S.READ}, {S.READ}),
    (MessageMove.CALLBACK_FAILED, {S.SENT, S.DELIVERED}, {S.FAILED}),
]


def test_the_table_is_the_expected_one() -> None:
    assert {move: (set(starts), set(ends)) for move, (starts, ends) in MOVES.items()} == {
        move: (starts, ends) for move, starts, ends in EXPECTED
    }


def one_message_per_status(sessions: sessionmaker[Session]) -> int:
    with sessions.begin() as session:
        campaign = Campaign(
            name="moves",
            sid="HXAP16XXXXXX97IN",
            sender="+919000000001",
            sticker_id="798123456789012",
            status=CampaignStatus.RUNNING,
        )
        session.add(campaign)
        session.flush()
        for index, status in enumerate(S):
            session.add(
                Message(
                    campaign_id=campaign.id,
                    recipient=f"+9198{index:08d}",
                    status=status,
                    claim_token="T",
                    message_id=f"M{index}",
                )
            )
        return campaign.id


def statuses(sessions: sessionmaker[Session], campaign_id: int) -> dict[str, str]:
    with sessions() as session:
        rows = session.execute(
            select(Message.recipient, Message.status).where(Message.campaign_id == campaign_id)
        )
        return {recipient: status for recipient, status in rows}


@pytest.mark.parametrize(("move", "starts", "ends"), EXPECTED, ids=[m for m, _, _ in EXPECTED])
def test_each_move_changes_only_the_messages_in_its_starting_statuses(
    sessions: sessionmaker[Session], move: MessageMove, starts: set[S], ends: set[S]
) -> None:
    end = sorted(ends)[0]
    campaign_id = one_message_per_status(sessions)
    before = statuses(sessions, campaign_id)
    with sessions.begin() as session:
        session.execute(move_messages(move, Message.campaign_id == campaign_id, to=end))
    after = statuses(sessions, campaign_id)
    for recipient, status in before.items():
        expected = end if status in starts else status
        assert after[recipient] == expected, (move, status, after[recipient])


def test_a_move_refuses_a_start_or_an_end_outside_the_table() -> None:
    with pytest.raises(ValueError, match="starts only from"):
        move_messages(MessageMove.CANCEL, starts={S.SENDING})
    with pytest.raises(ValueError, match="ends only in"):
        move_messages(MessageMove.REQUEUE, to=S.SENT)
    with pytest.raises(ValueError, match="say which"):
        move_messages(MessageMove.RELEASE)


# No stray UPDATE of messages.status


def stray_status_updates(source: str) -> list[int]:
    """Lines of `source` that UPDATE `messages.status` without move_messages: an `update()`
    of the Message model or its table (or a name bound to `Message.__table__`) whose
    `.values()` sets `status` (or passes `**` values nobody can read), or SQL text that
    does."""
    tree = ast.parse(source)
    aliases = {"Message"} | {
        target.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and "Message.__table__" in ast.unparse(node.value)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    lines = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and _method(node) == "values"):
            continue
        base = node.func
        while isinstance(base, ast.Attribute | ast.Call):
            base = base.value if isinstance(base, ast.Attribute) else base.func
            if isinstance(base, ast.Call) and _is_update_of(base, aliases):
                if _sets_status(node):
                    lines.append(node.lineno)
                break
    for number, line in enumerate(source.splitlines(), start=1):
        if re.search(r"\bupdate\s+messages\b", line, re.IGNORECASE):
            lines.append(number)
    return sorted(set(lines))


def _method(call: ast.Call) -> str | None:
    return call.func.attr if isinstance(call.func, ast.Attribute) else None


def _is_update_of(call: ast.Call, aliases: set[str]) -> bool:
    named = isinstance(call.func, ast.Name) and call.func.id == "update"
    target = ast.unparse(call.args[0]) if call.args else ""
    return named and (target in aliases or target == "Message.__table__")


def _sets_status(values: ast.Call) -> bool:
    if any(keyword.arg in ("status", None) for keyword in values.keywords):
        return True
    return any(
        not isinstance(arg, ast.Dict)
        or any(key is None or "status" in ast.unparse(key) for key in arg.keys)
        for arg in values.args
    )


def product_modules() -> list[Path]:
    return [path for folder in PRODUCT for path in sorted((ROOT / folder).rglob("*.py"))]


def test_no_module_but_message_status_updates_a_messages_status() -> None:
    strays = {
        str(path.relative_to(ROOT)): found
        for path in product_modules()
        if path != HOME and (found := stray_status_updates(path.read_text(encoding="utf-8")))
    }
    assert not strays, (
        f"these lines UPDATE messages.status outside stickerq/message_status.py: {strays}; "
        "build the statement with move_messages (add the move to MOVES if it is a new one)"
    )


def test_the_search_finds_the_strays_it_is_meant_to() -> None:
    """A search that finds nothing proves nothing: each way of writing a stray is found, and
    a statement that leaves the status alone is not."""
    planted = """
_table = cast(Table, Message.__table__)
a = update(Message).where(Message.id == 1).values(status="sent")
b = update(_table).where(_table.c.id == pk).values({"status": bindparam("status")})
c = update(Message).values(**values)
d = session.execute(text("UPDATE messages SET status = 'sent'"))
fine = update(_table).where(_table.c.id == 1).values(leaving_claim_token=token)
also_fine = update(Campaign).values(status="running")
"""
    assert stray_status_updates(planted) == [3, 4, 5, 6]
    home = stray_status_updates(HOME.read_text(encoding="utf-8"))
    assert home, "move_messages' own UPDATE is not found: the search is blind"
