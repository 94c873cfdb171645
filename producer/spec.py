"""A campaign's spec (sender, sticker, refs, wa_source), checked before anything is stored.

Phone-number normalisation lives here too, because the sender is a phone number as much as
every recipient is; `producer.recipients` re-exports it.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any, NamedTuple

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, ValidationResult
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from stickerq.errors import ConfigurationError, StickerqError

# Kaleyra's list; the API itself overrides any other value to "api".
# fmt: off
WA_SOURCES: frozenset[str] = frozenset({
    "api", "clevertap", "zoho", "webengage", "shopify", "leadsquared", "responsys",
    "braze", "hubspot", "salesforce", "zapier", "eloqua", "moengage",
})
# fmt: on
REF_MAX = 255  # Kaleyra's limit for ref, ref1 and ref2
NAME_MAX = 200
STICKER_ID_MAX = 200  # the campaigns.sticker_id column
EXCERPT_MAX = 60  # longest value quoted back to the user in a problem report

# Marks that a number copied from a contact card, a chat or a word processor brings along,
# unseen: zero-width spaces and joiners, direction marks and embeddings, a stray BOM (the
# body of a regex character class).
INVISIBLE_MARKS = "\u200b-\u200f\u202a-\u202e\u2060\ufeff"
_DASHES = "\u2010-\u2015\u2212"  # hyphen, non-breaking hyphen, figure/en/em dash, minus
_PUNCTUATION = re.compile(rf"[\s\-.(){_DASHES}{INVISIBLE_MARKS}]")
_PLUS_AND_DIGITS = re.compile(r"\+?\d+")
# A NUL, or a lone surrogate (a byte that was not UTF-8, from argv or the environment): the
# databases refuse both, so they are caught here rather than as a failed INSERT.
_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")
_HTTP_URL = TypeAdapter(HttpUrl)
# A media id cannot be fetched to check it, only its shape: Meta's are digits, the sandbox's
# and other providers' carry letters and a few separators; never spaces, slashes or quotes.
_MEDIA_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:=-]*")

NO_COUNTRY_CODE = (
    "no country code: write the number as +<country code><number> "
    "or set STICKERQ_DEFAULT_REGION (e.g. IN) for numbers written without +"
)
_PARSE_REASONS = {
    NumberParseException.INVALID_COUNTRY_CODE: "unknown country code: check the digits after +",
    NumberParseException.NOT_A_NUMBER: "not a phone number",
    NumberParseException.TOO_SHORT_AFTER_IDD: "too short after the international prefix",
    NumberParseException.TOO_SHORT_NSN: "too short",
    NumberParseException.TOO_LONG: "too long",
}


class InvalidPhone(StickerqError):
    """A phone number that cannot be turned into a valid E.164 number; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def excerpt(value: object, limit: int = EXCERPT_MAX) -> str:
    """The value as text, cut to `limit` characters, for quoting back in a report."""
    text = "" if value is None else str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_region(region: str | None) -> str | None:
    """`in` -> `IN`; raises ConfigurationError for a region phonenumbers does not know."""
    if region is None or not region.strip():
        return None
    code = region.strip().upper()
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise ConfigurationError(
            f"STICKERQ_DEFAULT_REGION {excerpt(region)!r} is not a region code: "
            "use a two-letter ISO code such as IN, GB or US, or leave it unset"
        )
    return code


def normalise_phone(raw: str, default_region: str | None) -> str:
    """`+91 98123-45678` -> `+919812345678`; raises InvalidPhone with a readable reason.

    Spaces, dashes (typographic ones too), dots, parentheses and invisible marks (zero-width
    spaces, direction marks) are ignored; letters are refused (phonenumbers would
    read `1-800-FLOWERS` as digits, which is not what a recipient list means).
    """
    cleaned = _PUNCTUATION.sub("", raw)
    if not cleaned:
        raise InvalidPhone("the number is empty")
    if not _PLUS_AND_DIGITS.fullmatch(cleaned):
        raise InvalidPhone(
            "only digits, a leading +, spaces, dashes, dots and parentheses are allowed"
        )
    if not cleaned.startswith("+") and default_region is None:
        raise InvalidPhone(NO_COUNTRY_CODE)
    try:
        number = phonenumbers.parse(cleaned, default_region)
    except NumberParseException as exc:
        raise InvalidPhone(_PARSE_REASONS.get(exc.error_type, str(exc))) from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone(_invalid_reason(number))
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def _invalid_reason(number: phonenumbers.PhoneNumber) -> str:
    code = number.country_code or 0
    possible = phonenumbers.is_possible_number_with_reason(number)
    if possible == ValidationResult.INVALID_COUNTRY_CODE:
        return f"+{code} is not a country code"
    if possible == ValidationResult.TOO_SHORT:
        return f"too short for a +{code} number"
    if possible == ValidationResult.TOO_LONG:
        return f"too long for a +{code} number"
    region = phonenumbers.region_code_for_country_code(code)
    return f"not a valid number for {region} (+{code}): check the digits and the country code"


def _storable_text(value: object) -> object:
    """A pydantic "before" check: refuse text that cannot be stored (see _UNSTORABLE)."""
    if isinstance(value, str) and (found := _UNSTORABLE.search(value)):
        if found.group() == "\x00":
            raise PydanticCustomError("text_nul", "contains a NUL character")
        raise PydanticCustomError("text_not_utf8", "contains bytes that are not UTF-8 text")
    return value


def truncate_ref(value: str | None) -> tuple[str | None, bool]:
    """Cut a ref to Kaleyra's 255 characters; the flag says whether anything was cut."""
    if value is None or len(value) <= REF_MAX:
        return value, False
    return value[:REF_MAX], True


class Sticker(BaseModel):
    """The sticker: an uploaded media id (recommended) or an https link, never both."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str | None = None
    link: str | None = None

    _id_storable = field_validator("id", mode="before")(_storable_text)

    @field_validator("id")
    @classmethod
    def _id_not_blank(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        if not value:
            raise PydanticCustomError("sticker_id_empty", "the media id is empty")
        if len(value) > STICKER_ID_MAX:
            raise PydanticCustomError(
                "sticker_id_too_long",
                "the media id is {length} characters long",
                {"length": len(value)},
            )
        if "://" in value:
            raise PydanticCustomError("sticker_id_is_link", "a link, not a media id")
        if not _MEDIA_ID.fullmatch(value):
            raise PydanticCustomError(
                "sticker_id_shape", "not the shape of a media id (letters, digits, . _ : = -)"
            )
        return value

    @field_validator("link")
    @classmethod
    def _link_is_https(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        value = value.strip()
        try:
            url = _HTTP_URL.validate_python(value)
        except ValidationError:
            raise PydanticCustomError("sticker_link_malformed", "not a valid URL") from None
        http_hosts = (info.context or {}).get("http_hosts", ())
        local = url.scheme == "http" and (
            (url.host or "").lower() in http_hosts or f"{url.host}:{url.port}" in http_hosts
        )
        if url.scheme != "https" and not local:
            raise PydanticCustomError(
                "sticker_link_not_https",
                "the link must be https, not {scheme}",
                {"scheme": url.scheme},
            )
        return str(url)  # WHATWG form: spaces escaped, existing escapes (signatures) kept

    @model_validator(mode="after")
    def _exactly_one(self) -> Sticker:
        if self.id is None and self.link is None:
            raise PydanticCustomError("sticker_missing", "no sticker given", {"value": ""})
        if self.id is not None and self.link is not None:
            raise PydanticCustomError(
                "sticker_both",
                "both a media id and a link given",
                {"value": f"id={self.id}, link={self.link}"},
            )
        return self

    def payload(self) -> dict[str, str]:
        """The `sticker` object of Kaleyra's messaging_object."""
        if self.id is not None:
            return {"id": self.id}
        assert self.link is not None  # guaranteed by _exactly_one
        return {"link": self.link}


class CampaignSpec(BaseModel):
    """What every message of a campaign shares. Build it with `validate_spec`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    # The business number in E.164 (pass default_region in the validation context); "" when
    # every recipient row names its own (a CSV's `from` column, context `senders_per_row`).
    sender: str
    sticker: Sticker
    ref: str | None = Field(default=None, max_length=REF_MAX)
    ref1: str | None = Field(default=None, max_length=REF_MAX)
    ref2: str | None = Field(default=None, max_length=REF_MAX)
    wa_source: str = "api"

    _text_storable = field_validator("name", "ref", "ref1", "ref2", mode="before")(_storable_text)

    @field_validator("name")
    @classmethod
    def _name_length(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise PydanticCustomError("name_empty", "the name is empty")
        if len(value) > NAME_MAX:
            raise PydanticCustomError(
                "name_too_long", "the name is {length} characters long", {"length": len(value)}
            )
        return value

    @field_validator("sender")
    @classmethod
    def _sender_e164(cls, value: str, info: ValidationInfo) -> str:
        context = info.context or {}
        if not value.strip():
            if context.get("senders_per_row"):
                return ""
            raise PydanticCustomError("sender_empty", "the sender number is empty")
        region = context.get("default_region")
        try:
            return normalise_phone(value, region)
        except InvalidPhone as exc:
            raise PydanticCustomError(
                "sender_invalid", "not a valid phone number: {reason}", {"reason": exc.reason}
            ) from None

    @field_validator("wa_source")
    @classmethod
    def _known_source(cls, value: str) -> str:
        if value not in WA_SOURCES:
            raise PydanticCustomError("wa_source_unknown", "not a wa_source Kaleyra knows")
        return value


_KNOWN_SOURCES = ", ".join(sorted(WA_SOURCES))
_FIXES = {
    "name_empty": "give the campaign a name, or leave it out to get a generated one",
    "name_too_long": f"shorten the name to at most {NAME_MAX} characters",
    "sender_empty": "give the business WhatsApp number registered on the Kaleyra account, "
    "e.g. +919812345678 (or set STICKERQ_SENDER)",
    "sender_invalid": "write the sender in E.164 with its country code, e.g. +919812345678",
    "sticker_missing": "give a sticker: an uploaded media id (recommended) or an https link",
    "sticker_both": "give only one of the media id and the link; the media id is recommended",
    "sticker_id_empty": "give the media id returned by the media upload, or a link instead",
    "sticker_id_too_long": f"a media id is at most {STICKER_ID_MAX} characters: check you "
    "pasted the id the media upload returned",
    "sticker_id_is_link": "give a link with --sticker-link (sticker_link), not as a media id",
    "sticker_id_shape": "give the media id `stickerq media upload` printed, as it printed it",
    "sticker_link_malformed": "give a full URL such as https://example.com/sticker.webp",
    "sticker_link_not_https": "serve the sticker over https, or upload it and use its media id",
    "wa_source_unknown": f"use one of: {_KNOWN_SOURCES}",
    "string_too_long": f"shorten it to at most {REF_MAX} characters",
    "string_type": "give it as text",
    "text_nul": "remove the NUL character (\\x00)",
    "text_not_utf8": "give it as UTF-8 text (is the terminal set to UTF-8, e.g. LANG=C.UTF-8?)",
    "default_region": "use a two-letter ISO region code such as IN, GB or US, or leave it unset",
}
_FIELD_NAMES = {("sticker", "id"): "sticker_id", ("sticker", "link"): "sticker_link"}


class SpecProblem(NamedTuple):
    """One thing wrong with a spec: where, what was given, what is wrong, what to do."""

    field: str
    value: str  # an excerpt of at most EXCERPT_MAX characters
    problem: str
    how_to_fix: str

    def __str__(self) -> str:
        given = f" {self.value!r}" if self.value else ""
        return f"{self.field}{given}: {self.problem}\n    fix: {self.how_to_fix}"


class SpecError(StickerqError):
    """The spec is not valid; `problems` lists every problem found, not only the first."""

    def __init__(self, problems: list[SpecProblem]) -> None:
        self.problems = problems
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        lines = [f"The campaign spec is not valid ({count}):"]
        lines += [f"  - {problem}" for problem in problems]
        super().__init__("\n".join(lines))


class ValidatedSpec(NamedTuple):
    """A valid spec and the warnings met on the way (refs truncated, wa_source replaced)."""

    spec: CampaignSpec
    warnings: list[str]


def validate_spec(
    *,
    name: str | None,
    sender: str | None,
    sticker_id: str | None = None,
    sticker_link: str | None = None,
    ref: str | None = None,
    ref1: str | None = None,
    ref2: str | None = None,
    wa_source: str | None = "api",
    default_region: str | None = None,
    http_hosts: Collection[str] = (),
    senders_per_row: bool = False,
) -> ValidatedSpec:
    """Check and normalise a campaign spec; raises SpecError listing every problem at once.

    senders_per_row: the recipients name their own `from` numbers, so the campaign's sender
    (their default) may be left out.
    `http_hosts` may be linked over plain http (STICKERQ_STICKER_CHECK_ALLOW_HOSTS: tests).
    """
    problems: list[SpecProblem] = []
    warnings: list[str] = []
    try:
        region = check_region(default_region)
    except ConfigurationError:
        region = None
        given, fix = excerpt(default_region), _FIXES["default_region"]
        problems.append(SpecProblem("default_region", given, "not a known region code", fix))
    refs: dict[str, str | None] = {}
    for field, value in (("ref", ref), ("ref1", ref1), ("ref2", ref2)):
        refs[field], cut = truncate_ref(value)
        if cut and value is not None:
            warnings.append(
                f"{field} is {len(value)} characters long: truncated to the first {REF_MAX}"
                " (Kaleyra's limit)"
            )
    source = (wa_source or "").strip().lower() or "api"
    if source not in WA_SOURCES:
        warnings.append(
            f"wa_source {excerpt(wa_source)!r} is not one Kaleyra knows: 'api' is sent instead"
            f" (known: {_KNOWN_SOURCES})"
        )
        source = "api"
    data: dict[str, Any] = {
        "name": name or "",  # None reads as empty: one message for both
        "sender": sender or "",
        "sticker": {"id": sticker_id, "link": sticker_link},
        "wa_source": source,
        **refs,
    }
    try:
        context = {
            "default_region": region,
            "http_hosts": http_hosts,
            "senders_per_row": senders_per_row,
        }
        spec = CampaignSpec.model_validate(data, context=context)
    except ValidationError as exc:
        problems += [_problem(error) for error in exc.errors(include_url=False)]
    if problems:
        raise SpecError(problems)
    return ValidatedSpec(spec, warnings)


def _problem(error: Any) -> SpecProblem:
    """Translate one pydantic error into a SpecProblem a person can act on."""
    loc = tuple(error["loc"])
    field = _FIELD_NAMES.get(loc) or ".".join(str(part) for part in loc) or "spec"
    ctx = error.get("ctx") or {}
    value = ctx["value"] if "value" in ctx else error.get("input")
    if isinstance(value, dict):
        value = ""
    fix = _FIXES.get(error["type"], "correct this value")
    return SpecProblem(field, excerpt(value), error["msg"], fix)
