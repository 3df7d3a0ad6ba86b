"""One channel's sender: the vendor's real send API, with its authorisation (an OutboundAdapter).

A send is one HTTP attempt; the outbox retries (runtime/delivery.py). What the vendor answers
decides what happens next, by the channel's `send` data (channels.yaml): 2xx is delivered; a code
of `permanent_errors` (or any other 4xx but 408 and 429) is permanent, kept as a dead letter at
once with the code and its meaning; a code of `retry_errors`, 408, 429, 5xx, a timeout or a
connection error is retried, after the `Retry-After` the vendor gave (seconds or an HTTP date).
Every attempt of one message carries the same idempotency key (`Idempotency-Key`, and the
vendor's own header where it has one). A send the vendor accepted returns the vendor's id of the
message (the channel's `send.message_id` paths into the answer), which its status webhooks name.
"""

from __future__ import annotations

import base64
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from flowlang.account_names import account_key
from flowlang.channels.outbound.adapters import (
    DeliveryError,
    idempotency_key,
    retry_after_seconds,
)
from flowlang.channels.outbound.send_bodies import (
    AddressError,
    PrivateReplyError,
    endpoint_pattern,
    send_request,
)
from flowlang.channels.registry import ChannelRules, SendApi
from flowlang.runtime.ports import OutboundMessage

_PLACEHOLDER = re.compile(r"\{([A-Za-z_]+)\}")


@dataclass(frozen=True)
class Credentials:
    """What sends are authorised with: a bearer token, or (Twilio) an account SID and token."""

    token: str
    user: str | None = None

    def __repr__(self) -> str:  # never print a secret
        return f"Credentials(user={self.user!r}, token=...)"


@dataclass(frozen=True)
class VendorRequest:
    """One HTTP request to the vendor, ready to send."""

    method: str
    url: str
    headers: dict[str, str]
    json: dict[str, Any] | None = None
    form: dict[str, Any] | None = None


class VendorSender:
    """Sends one channel's messages through its vendor's API."""

    def __init__(
        self,
        rules: ChannelRules,
        credentials: Credentials,
        *,
        api_base: str | None = None,
        phone_number_ids: Mapping[str, str] | None = None,
        client: httpx.Client | None = None,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if rules.send is None:
            raise ValueError(f"channel {rules.key!r} has no vendor send API")
        self.rules = rules
        self.api: SendApi = rules.send
        self.credentials = credentials
        self.base = (api_base or self.api.api_base).rstrip("/")
        # by `account_key`: a message's account is found by any spelling of it
        self.phone_number_ids = {account_key(k): v for k, v in (phone_number_ids or {}).items()}
        self.client = client or httpx.Client(timeout=timeout)
        self.clock = clock
        self.name = f"vendor:{rules.key}"

    def send(self, message: OutboundMessage) -> str | None:
        """Send `message`: the vendor's id of it (None when the answer gives none), or
        DeliveryError."""
        request = self.request(message)
        try:
            response = self.client.request(
                request.method,
                request.url,
                headers=request.headers,
                json=request.json,
                data=request.form,
            )
        except httpx.TimeoutException as exc:
            raise DeliveryError(
                f"{self.rules.key}: no answer in time from {request.url} ({type(exc).__name__})",
                permanent=False,
            ) from None
        except httpx.TransportError as exc:
            raise DeliveryError(
                f"{self.rules.key}: could not reach {request.url}: {exc}", permanent=False
            ) from None
        self._check(response, request)
        answer = _json(response)
        found = (_dig(answer, path) for path in self.api.message_id)
        return next((str(v) for v in found if v not in (None, "")), None)

    def request(self, message: OutboundMessage) -> VendorRequest:
        """The vendor request that sends `message`; PrivateReplyError for a private reply that
        would go out publicly, DeliveryError (permanent) when it cannot be addressed."""
        private = message.visibility == "privately" or bool(message.private_reply_to)
        if private and self.rules.public:
            raise PrivateReplyError(
                f"a reply marked private is never posted publicly on {self.rules.key}: "
                "only the channel policy's private route may send it"
            )
        try:
            rendered = send_request(message)
        except AddressError as exc:
            raise DeliveryError(f"{self.rules.key}: {exc}", permanent=True) from None
        path = _PLACEHOLDER.sub(lambda m: self._placeholder(m.group(1), message), rendered.path)
        if private and (path.endswith("/comments") or not message.private_reply_to):
            raise PrivateReplyError(  # a private reply goes by the Send API to its comment only
                f"a private reply on {self.rules.key} must be addressed to its comment or post"
            )
        key = idempotency_key(message)
        headers = {"Idempotency-Key": key, **self._auth()}
        vendor_header = self.api.idempotency_header
        if vendor_header and (not self.api.idempotency_paths or path in self.api.idempotency_paths):
            uuid_key = str(uuid.uuid5(uuid.NAMESPACE_URL, key))
            headers[vendor_header] = uuid_key if self.api.idempotency_uuid else key
        url = self.base + path
        self._on_endpoint(url, rendered.endpoint or rendered.path)
        if self.api.encoding == "form":
            return VendorRequest(rendered.method, url, headers, form=rendered.body)
        return VendorRequest(rendered.method, url, headers, json=rendered.body)

    def _on_endpoint(self, url: str, endpoint: str) -> None:
        """Refuse a URL whose path (as the HTTP client will send it) is not `endpoint` under the
        API base: message data never chooses the vendor endpoint."""
        base_path = httpx.URL(self.base).raw_path.decode("ascii").split("?")[0].rstrip("/")
        sent = httpx.URL(url).raw_path.decode("ascii").split("?")[0]
        intended = base_path + _PLACEHOLDER.sub("{x}", endpoint)
        if not endpoint_pattern(intended).fullmatch(sent):
            raise DeliveryError(
                f"{self.rules.key}: refused to send to {sent}: not the endpoint {intended}",
                permanent=True,
            )

    def _placeholder(self, name: str, message: OutboundMessage) -> str:
        if name == "phone_number_id":
            found = self.phone_number_ids.get(account_key(message.account))
            if found is None:
                raise DeliveryError(
                    f"{self.rules.key}: account {message.account!r} has no phone_number_id in "
                    f"the deployment (channels.{self.rules.key}.accounts)",
                    permanent=True,
                )
            return quote(found, safe="")
        if name in ("page_id", "ig_user_id"):
            return quote(message.account, safe="") if message.account else "me"
        if name == "AccountSid" and self.credentials.user:
            return quote(self.credentials.user, safe="")
        raise DeliveryError(
            f"{self.rules.key}: the message gives no {name} to send to", permanent=True
        )

    def _auth(self) -> dict[str, str]:
        if self.api.auth == "basic":
            pair = f"{self.credentials.user or ''}:{self.credentials.token}".encode()
            return {"Authorization": "Basic " + base64.b64encode(pair).decode("ascii")}
        return {"Authorization": f"Bearer {self.credentials.token}"}

    def _check(self, response: httpx.Response, request: VendorRequest) -> None:
        status = response.status_code
        if 200 <= status < 300:
            return
        vendor_key = self.api.idempotency_header
        if status == self.api.already_sent_status and vendor_key in request.headers:
            return  # the vendor accepted an earlier attempt of this very message
        answer = _json(response)
        codes = [str(v) for path in self.api.error_code if (v := _dig(answer, path)) is not None]
        said = next(
            (str(v) for path in self.api.error_message if (v := _dig(answer, path))),
            response.text[:200] or response.reason_phrase,
        )
        wait = retry_after_seconds(response.headers.get("Retry-After"), self.clock())
        where = f"{self.rules.key}: HTTP {status}"
        for code in codes:
            if code in self.api.permanent_errors:
                meaning = self.api.permanent_errors[code]
                raise DeliveryError(
                    f"{where}, error {code} ({meaning}): {said}", permanent=True, status=status
                )
            if code in self.api.retry_errors:
                meaning = self.api.retry_errors[code]
                raise DeliveryError(
                    f"{where}, error {code} ({meaning}): {said}",
                    permanent=False,
                    status=status,
                    retry_after=wait,
                )
        shown = f"{where}, error {codes[0]}: {said}" if codes else f"{where}: {said}"
        transient = status in (408, 429) or status >= 500
        raise DeliveryError(
            shown,
            permanent=not transient,
            status=status,
            retry_after=wait if transient else None,
        )


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _dig(data: Any, path: str) -> Any:
    """The value at a dotted path (`errors.0.code`), or None."""
    for part in path.split("."):
        if isinstance(data, dict):
            data = data.get(part)
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return None
    return data
