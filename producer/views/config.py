"""The JSON of `config`: every setting in force, by its name in Settings, without secrets."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, create_model
from pydantic.fields import FieldInfo

from stickerq.masking import redact_url
from stickerq.producer.views.accounts import AccountView
from stickerq.producer.views.base import View
from stickerq.settings import Settings

API_KEY = "(set)"  # what `config` shows for an api-key that is set: never the key
# Every SecretStr setting (api-key, API tokens, callback secret): shown as API_KEY or null,
# never its value.
SECRETS = tuple(
    name for name, info in Settings.model_fields.items() if info.annotation is SecretStr
)


def _shown(info: FieldInfo) -> tuple[Any, FieldInfo]:
    """A setting as a required key (`config` prints every one), its default in its words."""
    about = info.description or ""
    if info.default_factory is None:
        default = info.default
        about += f"; default `{default if isinstance(default, str) else json.dumps(default)}`"
    typed = Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation
    return typed, Field(description=about)


_API_KEY_SHOWN = (
    Literal["(set)"] | None,
    Field(description=f"`{API_KEY}` when one is set, else null: never the key itself"),
)


def _fields() -> dict[str, Any]:
    fields = {
        name: _API_KEY_SHOWN if name in SECRETS else _shown(info)
        for name, info in Settings.model_fields.items()
    }
    fields["accounts_in_force"] = (
        list[AccountView],
        Field(
            description="the Kaleyra accounts resolved from the settings above (as "
            "`accounts list --json`): the listed ones, else the STICKERQ_KALEYRA_* one"
        ),
    )
    return fields


# Made from Settings: a new setting is in `config --json`, and in its schema, at once.
ConfigView = create_model(
    "ConfigView",
    __base__=View,
    __doc__="The settings in force (STICKERQ_* variables, .env, defaults); URLs without their "
    "passwords.",
    **_fields(),
)


def config_view(settings: Settings) -> View:
    shown = settings.model_dump(mode="json")
    for name in SECRETS:
        shown[name] = API_KEY if getattr(settings, name).get_secret_value() else None
    shown["database_url"] = redact_url(settings.database_url)
    shown["redis_url"] = redact_url(settings.redis_url)
    shown["accounts_in_force"] = [AccountView.of_account(a) for a in settings.all_accounts()]
    return ConfigView.model_validate(shown)
