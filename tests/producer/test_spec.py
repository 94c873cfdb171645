"""Campaign spec validation: every problem reported at once, readable, never a pydantic dump."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from stickerq.producer.spec import (
    REF_MAX,
    WA_SOURCES,
    CampaignSpec,
    SpecError,
    Sticker,
    truncate_ref,
    validate_spec,
)

SENDER = "+919812345678"


def spec_args(**overrides: Any) -> dict[str, Any]:
    args: dict[str, Any] = {"name": "diwali", "sender": SENDER, "sticker_id": "media-123"}
    args.update(overrides)
    return args


def problems(**overrides: Any) -> dict[str, str]:
    """field -> problem of the SpecError raised for these arguments."""
    with pytest.raises(SpecError) as caught:
        validate_spec(**spec_args(**overrides))
    return {problem.field: problem.problem for problem in caught.value.problems}


def test_valid_spec_with_media_id() -> None:
    spec, warnings = validate_spec(**spec_args(name="  diwali  "))
    assert warnings == []
    assert spec.name == "diwali"
    assert spec.sender == SENDER
    assert spec.sticker.payload() == {"id": "media-123"}
    assert spec.wa_source == "api"
    assert (spec.ref, spec.ref1, spec.ref2) == (None, None, None)


def test_valid_spec_with_https_link() -> None:
    link = "https://cdn.example.com/s.webp?sig=ab%3D%3D"
    spec, _ = validate_spec(**spec_args(sticker_id=None, sticker_link=f"  {link} "))
    assert spec.sticker.payload() == {"link": link}


def test_sender_is_normalised_to_e164() -> None:
    spec, _ = validate_spec(**spec_args(sender="+91 (98123) 456-78"))
    assert spec.sender == SENDER


def test_sender_without_plus_uses_default_region() -> None:
    spec, _ = validate_spec(**spec_args(sender="098123 45678", default_region="in"))
    assert spec.sender == SENDER


def test_spec_is_frozen() -> None:
    spec, _ = validate_spec(**spec_args())
    with pytest.raises(ValidationError):
        spec.name = "other"  # type: ignore[misc]


def test_missing_sticker_is_a_problem() -> None:
    assert problems(sticker_id=None) == {"sticker": "no sticker given"}


def test_both_media_id_and_link_is_a_problem() -> None:
    found = problems(sticker_link="https://example.com/s.webp")
    assert found == {"sticker": "both a media id and a link given"}


def test_http_link_is_refused() -> None:
    found = problems(sticker_id=None, sticker_link="http://example.com/s.webp")
    assert found == {"sticker_link": "the link must be https, not http"}


@pytest.mark.parametrize("link", ["not a url", "example.com/s.webp", "ftp://example.com/s", ""])
def test_malformed_link_is_refused(link: str) -> None:
    assert problems(sticker_id=None, sticker_link=link) == {"sticker_link": "not a valid URL"}


def test_blank_media_id_is_refused() -> None:
    assert problems(sticker_id="   ") == {"sticker_id": "the media id is empty"}


@pytest.mark.parametrize("media_id", ["798123456789012", "media-1", "SBX.a_b:c=d"])
def test_a_media_id_of_the_right_shape_is_taken_unchecked(media_id: str) -> None:
    spec, _ = validate_spec(**spec_args(sticker_id=f" {media_id} "))
    assert spec.sticker.payload() == {"id": media_id}


@pytest.mark.parametrize(
    ("media_id", "problem"),
    [
        ("798 123", "not the shape of a media id (letters, digits, . _ : = -)"),
        ("../etc/passwd", "not the shape of a media id (letters, digits, . _ : = -)"),
        ("-leading-dash", "not the shape of a media id (letters, digits, . _ : = -)"),
        ("https://cdn.example.com/s.webp", "a link, not a media id"),
    ],
)
def test_a_media_id_of_the_wrong_shape_is_refused(media_id: str, problem: str) -> None:
    assert problems(sticker_id=media_id) == {"sticker_id": problem}


def test_an_http_link_is_taken_only_for_a_host_the_sticker_check_allows() -> None:
    link = "http://127.0.0.1:8077/_sandbox/media/1"
    found = problems(sticker_id=None, sticker_link=link, http_hosts=frozenset({"localhost"}))
    assert found == {"sticker_link": "the link must be https, not http"}
    for allowed in ("127.0.0.1", "127.0.0.1:8077"):
        args = spec_args(sticker_id=None, sticker_link=link, http_hosts=frozenset({allowed}))
        assert validate_spec(**args).spec.sticker.link == link


@pytest.mark.parametrize("sender", ["", "   ", None])
def test_empty_sender_is_a_problem(sender: str | None) -> None:
    assert problems(sender=sender) == {"sender": "the sender number is empty"}


@pytest.mark.parametrize(
    ("sender", "reason"),
    [
        ("+91 98123", "too short"),
        ("+91 98ab345678", "only digits"),
        ("9812345678", "no country code"),
        ("+999 123456789", "unknown country code"),
    ],
)
def test_invalid_sender_is_a_problem(sender: str, reason: str) -> None:
    assert reason in problems(sender=sender)["sender"]


def test_unknown_default_region_is_a_problem() -> None:
    assert "default_region" in problems(default_region="XX")


@pytest.mark.parametrize(("name", "problem"), [("", "the name is empty"), ("x" * 201, "201")])
def test_name_must_be_1_to_200_characters(name: str, problem: str) -> None:
    assert problem in problems(name=name)["name"]


def test_unknown_wa_source_becomes_api_with_a_warning() -> None:
    spec, warnings = validate_spec(**spec_args(wa_source="MyCRM"))
    assert spec.wa_source == "api"
    assert len(warnings) == 1
    assert "'MyCRM'" in warnings[0]
    assert "api" in warnings[0]


def test_known_wa_source_is_matched_case_insensitively() -> None:
    spec, warnings = validate_spec(**spec_args(wa_source=" Braze "))
    assert spec.wa_source == "braze"
    assert warnings == []


def test_wa_sources_are_kaleyras_thirteen() -> None:
    assert len(WA_SOURCES) == 13
    assert {"api", "clevertap", "moengage", "webengage"} <= WA_SOURCES


def test_long_refs_are_truncated_with_a_warning_per_field() -> None:
    spec, warnings = validate_spec(**spec_args(ref="a" * 300, ref1="b" * REF_MAX, ref2="c" * 256))
    assert spec.ref == "a" * REF_MAX
    assert spec.ref1 == "b" * REF_MAX
    assert spec.ref2 == "c" * REF_MAX
    assert len(warnings) == 2
    assert warnings[0].startswith("ref is 300 characters long")
    assert warnings[1].startswith("ref2 is 256 characters long")


def test_several_problems_are_reported_at_once() -> None:
    with pytest.raises(SpecError) as caught:
        validate_spec(
            name="",
            sender="12",
            sticker_link="http://example.com/s.webp",
            default_region="IN",
        )
    error = caught.value
    assert [problem.field for problem in error.problems] == ["name", "sender", "sticker_link"]
    assert all(problem.how_to_fix for problem in error.problems)
    text = str(error)
    assert text.startswith("The campaign spec is not valid (3 problems):")
    assert text.count("\n  - ") == 3
    assert "fix: serve the sticker over https" in text
    assert "validation error" not in text and "pydantic" not in text


def test_problem_values_are_excerpts() -> None:
    with pytest.raises(SpecError) as caught:
        validate_spec(**spec_args(sticker_id=None, sticker_link="http://example.com/" + "x" * 200))
    assert len(caught.value.problems[0].value) == 60


def test_sticker_model_enforces_exactly_one() -> None:
    with pytest.raises(ValidationError):
        Sticker()
    with pytest.raises(ValidationError):
        Sticker(id="a", link="https://example.com/s.webp")


def test_campaign_spec_refuses_unknown_wa_source_when_built_directly() -> None:
    with pytest.raises(ValidationError):
        CampaignSpec(name="n", sender=SENDER, sticker=Sticker(id="a"), wa_source="nope")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, (None, False)),
        ("", ("", False)),
        ("x" * REF_MAX, ("x" * REF_MAX, False)),
        ("x" * (REF_MAX + 1), ("x" * REF_MAX, True)),
    ],
)
def test_truncate_ref(value: str | None, expected: tuple[str | None, bool]) -> None:
    assert truncate_ref(value) == expected
