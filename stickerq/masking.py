"""Phone numbers are personal data: logs show only the country code and last digits."""


def mask_phone(number: str) -> str:
    """`+919812345678` -> `+91******5678`."""
    if len(number) <= 7:
        return "*" * len(number)
    return number[:3] + "*" * (len(number) - 7) + number[-4:]
