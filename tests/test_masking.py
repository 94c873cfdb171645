"""Numbers on screens: masked by default, in full only when asked."""

from __future__ import annotations

from stickerq.masking import mask_phone, numbers_shown


def test_numbers_are_masked_unless_asked_for_in_full() -> None:
    assert numbers_shown(False)("+919812345678") == mask_phone("+919812345678") == "+91******5678"
    assert numbers_shown(True)("+919812345678") == "+919812345678"


def test_a_short_number_is_masked_whole() -> None:
    assert numbers_shown(False)("+9112") == "*****"
