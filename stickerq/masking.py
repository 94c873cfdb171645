"""Phone numbers are personal data: logs show only the country code and last digits, and so
do the CLI and the API unless asked for numbers in full."""

from collections.abc import Callable


def mask_phone(number: str) -> str:
    """`+919812345678` -> `+91******5678`."""
    if len(number) <= 7:
        return "*" * len(number)
    return number[:3] + "*" * (len(number) - 7) + number[-4:]


def numbers_shown(in_full: bool) -> Callable[[str], str]:
    """How a screen shows numbers: in full when asked (`--show-numbers`, `show_numbers=true`),
    else masked by `mask_phone`, the default of every command and route."""
    return _as_is if in_full else mask_phone


def _as_is(number: str) -> str:
    return number


def redact_url(url: str) -> str:
    """A connection URL without its password, fit for an error message (each part of a
    `sentinel://h1:26379;sentinel://h2:26380/0` list)."""
    from sqlalchemy.engine import make_url

    if ";" in url:
        return ";".join(redact_url(part) for part in url.split(";"))
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy can parse: show only its scheme
        return url.split("://", 1)[0] + "://***"
