"""Phone numbers as WhatsApp addresses them: any way a person writes one, turned into E.164.

Recipients, senders, suppressions, media uploads and failure filters all read numbers
through `normalise_phone`; `producer/normalising.py` spreads it over the machine's cores for
big lists.
"""

from __future__ import annotations

import re

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, ValidationResult

from stickerq.errors import ConfigurationError, StickerqError, excerpt

# Marks that a number copied from a contact card, a chat or a word processor brings along,
# unseen: zero-width spaces and joiners, direction marks and embeddings, a stray BOM (the
# body of a regex character class).
INVISIBLE_MARKS = "\u200b-\u200f\u202a-\u202e\u2060\ufeff"
_DASHES = "\u2010-\u2015\u2212"  # hyphen, non-breaking hyphen, figure/en/em dash, minus
_PUNCTUATION = re.compile(rf"[\s\-.(){_DASHES}{INVISIBLE_MARKS}]")
_PLUS_AND_DIGITS = re.compile(r"\+?\d+")

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


def kaleyra_number(raw: str) -> str:
    """`919876543210` (Kaleyra's digits, the country code first, as its callbacks send them)
    or `+91 98765 43210` -> E.164; raises InvalidPhone."""
    text = raw.strip()
    return normalise_phone(text if text.startswith("+") or not text else f"+{text}", None)
