"""Phone numbers are personal data: logs show only the country code and last digits."""


def mask_phone(number: str) -> str:
    """`+919812345678` -> `+91******5678`."""
    if len(number) <= 7:
        return "*" * len(number)
    return number[:3] + "*" * (len(number) - 7) + number[-4:]


def redact_url(url: str) -> str:
    """A connection URL without its password, fit for an error message."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy can parse: show only its scheme
        return url.split("://", 1)[0] + "://***"
