"""A limit on failed sign-ins from one client address (the deployment's
`access.failed_signin_limit` within `access.failed_signin_window`; docs/service.md, "Failed
sign-ins").

A failed sign-in is the sign-in form answered 401 (a wrong, expired or revoked token), any
request with an `Authorization` header answered 401 (a wrong API token; a wrong token on
`/metrics`), or the live stream answered 401 to its `?ticket=` (a wrong, used or expired
ticket). A browser whose session has ended is not one (a page left open makes such requests
on its own), nor is a webhook (signed, never a token). Once an address has failed `limit`
times within `window`, its sign-in attempts (the form, every request with an `Authorization`
header, the stream with a ticket) are answered 429 with `Retry-After` without their token
being read, until `window` after the last failure: a correct token too, so that a refused
attempt costs no look-up, and so that the limit ends by itself (the refused attempts are not
counted).
Sessions already open go on.

An IPv6 client is counted by its /64 network (a host may use any address of it), an IPv4 one
by its address. Counted in memory by the process that took the request from the client: the
front process of `flowlang serve` (a request another process of the service forwarded, marked
with the service's key, was counted where it came in). Each process counts its own.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import time
from collections import deque
from collections.abc import Callable
from datetime import timedelta
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from flowlang.config.models import Access
from flowlang.service.error_responses import AsciiJSONResponse
from flowlang.web.render import page

log = logging.getLogger("flowlang.service")

MAX_ADDRESSES = 10_000  # addresses counted at once; beyond, the longest known are forgotten


class FailedSignIns:
    """The failed sign-ins of each client address, and how long each must wait (`clock`:
    seconds, monotonic). Used on the event loop only."""

    def __init__(
        self,
        limit: int,
        window: timedelta,
        clock: Callable[[], float] = time.monotonic,
        max_addresses: int = MAX_ADDRESSES,
    ) -> None:
        self.limit = limit
        self.window = window.total_seconds()
        self.clock = clock
        self.max_addresses = max_addresses
        self._failures: dict[str, deque[float]] = {}  # address -> its last `limit` failures

    @staticmethod
    def of(access: Access) -> FailedSignIns:
        return FailedSignIns(access.failed_signin_limit, access.failed_signin_window)

    def wait(self, address: str) -> int | None:
        """The seconds `address` must wait before its next attempt (None: it may try now)."""
        failures = self._failures.get(address)
        if failures is None or len(failures) < self.limit:
            return None
        if failures[-1] - failures[0] >= self.window:  # not within one window
            return None
        left = failures[-1] + self.window - self.clock()
        return max(1, math.ceil(left)) if left > 0 else None

    def failed(self, address: str) -> int | None:
        """Count a failed sign-in of `address`: the seconds it must now wait (None: none)."""
        failures = self._failures.get(address)
        if failures is None:
            self._make_room()
            failures = self._failures[address] = deque(maxlen=self.limit)
        failures.append(self.clock())
        return self.wait(address)

    def _make_room(self) -> None:
        if len(self._failures) < self.max_addresses:
            return
        now = self.clock()
        for address in [a for a, f in self._failures.items() if f[-1] + self.window <= now]:
            del self._failures[address]
        while len(self._failures) >= self.max_addresses:
            del self._failures[next(iter(self._failures))]


STREAM = "/api/agent/stream"  # whose `?ticket=` stands for the token it was given for


def is_attempt(scope: Scope) -> bool:
    """Whether the request signs in: the sign-in form, any request with a token, or the live
    stream with a ticket."""
    path: str = scope["path"]
    if scope["method"] == "POST" and path == "/signin":
        return True
    if path == STREAM and any(
        name == "ticket" for name, _ in parse_qsl(scope["query_string"].decode("latin-1"), True)
    ):
        return True
    return not path.startswith("/webhooks/") and any(
        name == b"authorization" for name, _ in scope["headers"]
    )


IPV6_PREFIX = 64  # an IPv6 client is counted by its network: one host holds a whole /64


def client_address(scope: Scope) -> str:
    """Whose failures the request counts with: the client's address as the server gives it
    (behind a proxy, the proxy's unless uvicorn is told to trust its `X-Forwarded-For`:
    docs/service.md); for IPv6, its /64, which any one host may take addresses from at will."""
    client = scope.get("client")
    if not client:
        return "(unknown)"
    address = str(client[0])
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address  # (a test client's name, a Unix socket)
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network((ip, IPV6_PREFIX), strict=False))
    return address


def too_many(scope: Scope, wait: int) -> Response:
    """The answer to an attempt of an address that must wait `wait` seconds: the sign-in page
    saying so, or the API's JSON error."""
    headers = {"Retry-After": str(wait)}
    if scope["path"] == "/signin":
        error = f"Too many attempts, try again in {wait} s."
        response = page(Request(scope), "signin.html.j2", error=error, status_code=429)
        response.headers.update(headers)
        return response
    reason = f"too many failed sign-ins from this address: try again in {wait} s"
    return AsciiJSONResponse(
        {"detail": {"code": "too_many_attempts", "reason": reason}},
        status_code=429,
        headers=headers,
    )


class SignInLimit:
    """ASGI middleware: refuses the sign-in attempts of an address that failed too often
    (`FailedSignIns`), and counts the failures of the others. `forwarded` says whether another
    process of the service passed the request on (it was counted there)."""

    def __init__(
        self,
        app: ASGIApp,
        failures: FailedSignIns,
        forwarded: Callable[[Scope], bool] | None = None,
    ) -> None:
        self.app = app
        self.failures = failures
        self.forwarded = forwarded

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or not is_attempt(scope)
            or (self.forwarded is not None and self.forwarded(scope))
        ):
            await self.app(scope, receive, send)
            return
        address = client_address(scope)
        wait = self.failures.wait(address)
        if wait is not None:
            await too_many(scope, wait)(scope, receive, send)
            return

        async def counted(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 401:
                now_waits = self.failures.failed(address)
                if now_waits is not None:
                    log.warning(
                        "%d failed sign-ins from %s within %s: its sign-ins are refused for %d s",
                        self.failures.limit,
                        address,
                        timedelta(seconds=self.failures.window),
                        now_waits,
                    )
            await send(message)

        await self.app(scope, receive, counted)
