"""Phone numbers as the store and the channels compare them: E.164."""

from __future__ import annotations


def normalise_phone(phone: str | None) -> str | None:
    """E.164 form of a phone number, or None when it cannot be read."""
    if not phone:
        return None
    import phonenumbers

    text = phone if phone.startswith("+") else "+" + phone
    try:
        parsed = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
