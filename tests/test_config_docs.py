"""docs/configuration.md is what stickerq.cli.config_docs generates from `Settings`: every
setting, its variable and default, and never a secret or this machine's path."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr

from stickerq.cli.config_docs import REGENERATE, render
from stickerq.settings import Settings, default_database_url

DOCS = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"


def rows(text: str) -> dict[str, str]:
    """The table's rows by their variable (`STICKERQ_...`)."""
    return {
        line.split("`")[1]: line for line in text.splitlines() if line.startswith("| `STICKERQ_")
    }


def test_docs_configuration_md_is_what_the_settings_generate() -> None:
    written, generated = DOCS.read_text(encoding="utf-8"), render()
    drifted = sorted(
        name
        for name in rows(written).keys() | rows(generated).keys()
        if rows(written).get(name) != rows(generated).get(name)
    )
    assert written == generated, (
        f"docs/configuration.md is out of date ({', '.join(drifted) or 'outside the table'}): "
        f"run `{REGENERATE}` and commit the file"
    )


def test_every_setting_has_a_row_and_a_description() -> None:
    table = rows(render())
    assert sorted(table) == sorted(f"STICKERQ_{name.upper()}" for name in Settings.model_fields)
    undescribed = [name for name, field in Settings.model_fields.items() if not field.description]
    assert not undescribed, f"describe these fields in stickerq/settings.py: {undescribed}"


def test_the_database_default_is_described_not_this_machines_path() -> None:
    text = render()
    assert default_database_url() not in text
    assert "user's data folder" in rows(text)["STICKERQ_DATABASE_URL"]


class WithSecrets(Settings):
    token: SecretStr = Field(default=SecretStr("hunter2-not-shown"), description="a secret")
    empty_token: SecretStr = Field(default=SecretStr(""), description="no secret")
    delays: list[float] = Field(default=[1.0, 2.5], description="a list")


def test_a_secret_default_is_never_written_and_a_list_is_json() -> None:
    table = rows(render(WithSecrets))
    assert "hunter2" not in render(WithSecrets)
    assert "| set (secret, not shown) | secret |" in table["STICKERQ_TOKEN"]
    assert "| empty (secret) | secret |" in table["STICKERQ_EMPTY_TOKEN"]
    assert "| `[1, 2.5]` | JSON list of numbers |" in table["STICKERQ_DELAYS"]
