"""A campaign's spec (sender, sticker, refs, wa_source), checked before anything is stored.

Its sender is read as every recipient is, by `producer/phones.py`.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any, NamedTuple

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

from stickerq.errors import ConfigurationError, StickerqError, excerpt
from stickerq.producer.phones import InvalidPhone, check_region, normalise_phone

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

# A NUL, or a lone surrogate (a byte that was not UTF-8, from argv or the environment): the
# databases refuse both, so they are caught here rather than as a failed INSERT.
_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")
_HTTP_URL = TypeAdapter(HttpUrl)
# A media id cannot be fetched to check it, only its shape: Meta's are digits, the sandbox's
# and other providers' carry letters and a few separators; never spaces, slashes or quotes.
_MEDIA_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:=-]*")


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
