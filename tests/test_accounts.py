"""Accounts from a TOML or JSON file or STICKERQ_ACCOUNTS, and the errors that name the file,
the entry and the field, never an api-key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import SecretStr

from stickerq.accounts import ForeignSender, UnknownAccount, check_sender, default_sender
from stickerq.errors import ConfigurationError
from stickerq.settings import Settings
from tests.two_accounts import KEY_A, KEY_B, SID_A, SID_B, accounts_json

TOML = f"""
[[accounts]]
sid = "{SID_A}"
api_key = "{KEY_A}"
pod = "in"
senders = ["+919000000001"]

[[accounts]]
sid = "{SID_B}"
api_key = "{KEY_B}"
pod = "eu"
base_url = "http://127.0.0.1:8077/"
"""


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg, arg-type]


def error_of(**values: object) -> str:
    with pytest.raises(ConfigurationError) as caught:
        settings(**values).all_accounts()
    message = str(caught.value)
    assert KEY_A not in message and KEY_B not in message
    return message


def test_a_toml_file_lists_the_accounts_with_their_keys_pods_and_senders(tmp_path: Path) -> None:
    path = tmp_path / "accounts.toml"
    path.write_text(TOML)
    a, b = settings(accounts_file=path).all_accounts()
    assert (a.sid, a.api_key.get_secret_value(), a.url, a.senders) == (
        SID_A,
        KEY_A,
        "https://api.in.kaleyra.io",
        ("+919000000001",),
    )
    assert (b.sid, b.api_key.get_secret_value(), b.url, b.senders) == (
        SID_B,
        KEY_B,
        "http://127.0.0.1:8077",
        (),
    )
    assert KEY_A not in repr(a) and KEY_B not in repr(settings(accounts_file=path))


def test_a_json_file_and_the_environment_variable_give_the_same_accounts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "accounts.json"
    path.write_text(json.dumps({"accounts": json.loads(accounts_json())}))
    from_file = settings(accounts_file=path).all_accounts()
    monkeypatch.setenv("STICKERQ_ACCOUNTS", accounts_json())
    from_env = settings().all_accounts()
    assert from_file == from_env
    assert [account.sid for account in from_env] == [SID_A, SID_B]
    assert from_env[1].url == "https://api.eu.kaleyra.io"


def test_without_a_list_the_one_account_is_the_kaleyra_settings() -> None:
    only = settings(kaleyra_sid="HXONE", kaleyra_api_key="k", kaleyra_pod="ap")
    assert only.account(None) == only.account("HXONE")
    assert (only.account().url, only.account().has_key) == ("https://api.ap.kaleyra.io", True)
    assert not only.lists_accounts


def test_the_base_url_setting_is_the_default_of_listed_accounts() -> None:
    listed = settings(accounts=accounts_json(), kaleyra_base_url="http://sandbox:8077")
    assert {account.url for account in listed.all_accounts()} == {"http://sandbox:8077"}


def test_naming_an_account_is_needed_among_several_and_must_be_known() -> None:
    listed = settings(accounts=accounts_json())
    assert listed.account(SID_B).sid == SID_B
    with pytest.raises(UnknownAccount, match=f"2 Kaleyra accounts.*{SID_A}, {SID_B}.*--account"):
        listed.account(None)
    with pytest.raises(UnknownAccount, match=f"'HXNOPE'.*known: {SID_A}, {SID_B}"):
        listed.account("HXNOPE")


def test_a_list_beside_the_single_account_key_is_refused() -> None:
    message = error_of(accounts=accounts_json(), kaleyra_api_key="old-key")
    assert "unset STICKERQ_KALEYRA_API_KEY" in message and "old-key" not in message


def test_the_single_account_sid_and_pod_beside_a_list_are_unused() -> None:
    # docker-compose.yml always sets them (with their defaults)
    listed = settings(accounts=accounts_json(), kaleyra_sid="HXOLD", kaleyra_pod="eu")
    assert [account.sid for account in listed.all_accounts()] == [SID_A, SID_B]


def test_a_file_and_the_variable_together_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "accounts.toml"
    path.write_text(TOML)
    assert "keep one list" in error_of(accounts_file=path, accounts=accounts_json())


def test_file_problems_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.toml"
    assert f"accounts file {missing} cannot be read" in error_of(accounts_file=missing)
    broken = tmp_path / "broken.toml"
    broken.write_text(f'[[accounts]]\nsid = "{SID_A}"\napi_key = "{KEY_A}\n')
    assert f"accounts file {broken} is not valid TOML" in error_of(accounts_file=broken)
    bad_json = tmp_path / "broken.json"
    bad_json.write_text(accounts_json()[:-3])
    assert f"accounts file {bad_json} is not valid JSON" in error_of(accounts_file=bad_json)
    other = tmp_path / "accounts.yaml"
    other.write_text("accounts: []")
    assert "name a .toml or .json file" in error_of(accounts_file=other)
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    assert "non-empty list of accounts" in error_of(accounts_file=empty)
    assert "STICKERQ_ACCOUNTS is not valid JSON" in error_of(accounts=SecretStr("[{"))


def test_every_bad_entry_is_named_with_its_field_never_its_key() -> None:
    entries = [
        {"sid": SID_A, "api_key": KEY_A, "pod": "us"},
        {"api_key": KEY_B},
        {"sid": SID_A, "api_key": KEY_B, "senders": ["9000000001"], "colour": "red"},
        {"sid": SID_A, "api_key": KEY_B},
    ]
    message = error_of(accounts=json.dumps(entries))
    assert f"entry 1 (sid {SID_A}), pod: Input should be 'in', 'ap' or 'eu'" in message
    assert "entry 2, sid: Field required" in message
    assert f"entry 3 (sid {SID_A}), senders.0: String should match pattern" in message
    assert f"entry 3 (sid {SID_A}), colour: Extra inputs are not permitted" in message
    assert f"SID {SID_A} is listed twice (entries 1 and 4)" not in message  # entry 1 was bad
    twice = [{"sid": SID_A, "api_key": KEY_A}, {"sid": SID_A, "api_key": KEY_B}]
    assert f"SID {SID_A} is listed twice (entries 1 and 2)" in error_of(accounts=json.dumps(twice))


def test_a_sender_must_be_one_of_the_accounts_senders_when_it_lists_some() -> None:
    a, b = settings(accounts=accounts_json()).all_accounts()
    check_sender(a, "+919000000001")
    with pytest.raises(ForeignSender, match=f"sender \\+919000000002 .* account {SID_A}"):
        check_sender(a, "+919000000002")
    assert default_sender(b, "+919000000001") == "+919000000002"  # B's only number
    assert default_sender(a, "+919000000001") == "+919000000001"
    anyone = settings(accounts=accounts_json(senders=False)).account(SID_A)
    check_sender(anyone, "+919999999999")
    assert default_sender(anyone, None) is None


def test_child_processes_get_the_list_and_not_this_processs_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    listed = settings(accounts=accounts_json())
    env = listed.as_environment()
    assert env["STICKERQ_ACCOUNTS"] == accounts_json()
    assert env["STICKERQ_ACCOUNTS_FILE"] == ""  # unset, whatever this process has
    monkeypatch.setenv("STICKERQ_ACCOUNTS_FILE", "/elsewhere/accounts.toml")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert settings().all_accounts() == listed.all_accounts()
