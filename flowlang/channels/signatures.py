"""Webhook signatures: is this request really from the channel?

- Meta (WhatsApp, Messenger, Instagram, page feed): `X-Hub-Signature-256: sha256=<hex>`,
  HMAC-SHA256 of the raw body with the app secret.
- LINE: `X-Line-Signature: <base64>`, HMAC-SHA256 of the raw body with the channel secret.
- X: `X-Twitter-Webhooks-Signature: sha256=<base64>`, HMAC-SHA256 of the raw body with the
  consumer secret; and the CRC challenge (GET with `crc_token`), answered by `x_crc_response`.
- Twilio: `X-Twilio-Signature: <base64>`, HMAC-SHA1 of the full URL followed by the POST
  parameters sorted by name (name then value, no separators), with the auth token.
- Web chat (the center's own widget backend): `X-Flowlang-Signature: sha256=<hex>`, HMAC-SHA256
  of the raw body with the secret the widget backend and the service share.

Every check compares in constant time and fails closed: a missing header is a mismatch.
"""

from __future__ import annotations

import base64
import hmac
import json
import re
from collections.abc import Mapping

from flowlang.errors import InputError

# The header each channel signs with (compared case-insensitively).
SIGNATURE_HEADERS = {
    "whatsapp": "X-Hub-Signature-256",
    "messenger": "X-Hub-Signature-256",
    "instagram": "X-Hub-Signature-256",
    "facebook_page": "X-Hub-Signature-256",
    "line": "X-Line-Signature",
    "x_dm": "X-Twitter-Webhooks-Signature",
    "x_public": "X-Twitter-Webhooks-Signature",
    "sms": "X-Twilio-Signature",
    "web": "X-Flowlang-Signature",
}


class SignatureError(InputError, ValueError):
    """The request's signature is missing or does not match."""


def _mac(secret: str, data: bytes, digest: str = "sha256") -> bytes:
    return hmac.new(secret.encode("utf-8"), data, digest).digest()


def meta_signature(body: bytes, app_secret: str) -> str:
    return "sha256=" + _mac(app_secret, body).hex()


def line_signature(body: bytes, channel_secret: str) -> str:
    return base64.b64encode(_mac(channel_secret, body)).decode("ascii")


def x_signature(body: bytes, consumer_secret: str) -> str:
    return "sha256=" + base64.b64encode(_mac(consumer_secret, body)).decode("ascii")


# X's CRC tokens are short base64 / base64url strings. Anything else is refused: the CRC answer
# is the webhook signature of a body equal to the token, so answering a JSON-shaped token
# would sign a forged webhook.
CRC_TOKEN = re.compile(r"[A-Za-z0-9+/_=-]{1,256}")
CRC_BODY = re.compile(rb"[A-Za-z0-9+/_=-]{1,256}")  # a webhook body the CRC could have signed
X_HEADER = "X-Twitter-Webhooks-Signature"


def x_crc_response(crc_token: str, consumer_secret: str) -> dict[str, str]:
    """The JSON body answering X's CRC challenge (`GET ...?crc_token=...`).

    Raises SignatureError for a token that is not shaped like X's (base64 / base64url
    characters, at most 256), or that is JSON all the same (a number, true, false, null,
    NaN, Infinity): answering it would sign a webhook body anyone could post."""
    if not CRC_TOKEN.fullmatch(crc_token) or _is_json(crc_token):
        raise SignatureError(
            "crc_token is not an X CRC token (1 to 256 base64/base64url characters, not JSON)"
        )
    return {"response_token": x_signature(crc_token.encode("utf-8"), consumer_secret)}


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def twilio_signature(url: str, params: Mapping[str, str], auth_token: str) -> str:
    data = url + "".join(f"{key}{params[key]}" for key in sorted(params))
    return base64.b64encode(_mac(auth_token, data.encode("utf-8"), "sha1")).decode("ascii")


def expected_signature(
    channel: str,
    body: bytes,
    secret: str,
    *,
    url: str = "",
    params: Mapping[str, str] | None = None,
) -> str:
    """What `channel`'s signature header must say for this body (Twilio: for url + params)."""
    header = SIGNATURE_HEADERS.get(channel)
    if header is None:
        raise SignatureError(f"{channel} does not sign its webhooks")
    if header in ("X-Hub-Signature-256", "X-Flowlang-Signature"):
        return meta_signature(body, secret)
    if header == "X-Line-Signature":
        return line_signature(body, secret)
    if header == "X-Twilio-Signature":
        return twilio_signature(url, params or {}, secret)
    return x_signature(body, secret)


def verify(
    channel: str,
    body: bytes,
    headers: Mapping[str, str],
    secret: str,
    *,
    url: str = "",
    params: Mapping[str, str] | None = None,
) -> None:
    """Raise SignatureError unless `headers` carry `channel`'s valid signature of `body`."""
    expected = expected_signature(channel, body, secret, url=url, params=params)
    name = SIGNATURE_HEADERS[channel]
    if name == X_HEADER and CRC_BODY.fullmatch(body):
        # X's webhooks are JSON objects; this body's signature is a CRC answer anyone can ask
        raise SignatureError(f"{channel} webhook: the body is a CRC token, not a webhook")
    given = next((v for k, v in headers.items() if k.lower() == name.lower()), None)
    if given is None:
        raise SignatureError(f"{channel} webhook without its {name} header")
    if not hmac.compare_digest(given.strip().encode("utf-8"), expected.encode("utf-8")):
        raise SignatureError(f"{channel} webhook: {name} does not match the body")
