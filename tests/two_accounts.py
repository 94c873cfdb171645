"""Two Kaleyra accounts with keys of their own, the sandbox that knows both, and settings
listing them (STICKERQ_ACCOUNTS)."""

from __future__ import annotations

import json

from stickerq.sandbox import SandboxConfig
from stickerq.settings import Settings
from tests.conftest import SENDER, make_settings

SID_A, SID_B = "HXIN0000ACCOUNTA", "HXEU0000ACCOUNTB"
KEY_A, KEY_B = "key-of-a-5e1c93d7", "key-of-b-08fa6b42"  # tests grep for them
SENDER_B = "+919000000002"  # B's own business number; SENDER is A's


def accounts_json(*, senders: bool = True) -> str:
    """The two accounts as STICKERQ_ACCOUNTS holds them (no base_url: the settings' one)."""
    return json.dumps(
        [
            {"sid": SID_A, "api_key": KEY_A, "pod": "in", "senders": [SENDER] if senders else []},
            {"sid": SID_B, "api_key": KEY_B, "pod": "eu", "senders": [SENDER_B] if senders else []},
        ]
    )


def two_account_settings(
    database_url: str, redis_prefix: str, base_url: str, **overrides: object
) -> Settings:
    """make_settings with the two accounts listed instead of the STICKERQ_KALEYRA_* one;
    STICKERQ_KALEYRA_BASE_URL stays, as the base URL of both."""
    values: dict[str, object] = {"kaleyra_api_key": "", "accounts": accounts_json(), "sender": None}
    return make_settings(database_url, redis_prefix, base_url, **(values | overrides))


def two_account_sandbox_config() -> SandboxConfig:
    return SandboxConfig(
        sid=SID_A,
        api_key=KEY_A,
        accounts={SID_B: KEY_B},
        senders=frozenset({SENDER, SENDER_B}),
        timeout_seconds=2,
    )
