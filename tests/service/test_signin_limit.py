"""Failed sign-ins from one address are limited (the deployment's `access.failed_signin_limit`
within `access.failed_signin_window`, 10 a minute by default): the next attempt is answered 429
with `Retry-After` (the sign-in page saying how long to wait), a correct token included, until
the window after the last failure; successes are not counted, nor are webhooks, and other
addresses go on. The clock is the counter's own (injected here: no sleeps)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from flowlang.config.models import Access
from flowlang.service.access import SESSION_COOKIE
from flowlang.service.signin_limit import FailedSignIns
from tests.service.api_helpers import Api, make_api, under_test_client
from tests.service.helpers import environment, payload, signed_headers

OWN = "http://testserver"
WRONG = {"Authorization": "Bearer flt_not-a-token"}
PRESENCE = "/api/agent/presence"


class Clock:
    """Seconds, moved on by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clock: Clock) -> Iterator[Api]:
    for name, value in environment().items():
        monkeypatch.setenv(name, value)
    made = make_api(tmp_path)
    failures: FailedSignIns = made.app.state.failed_signins
    failures.clock = clock
    yield from under_test_client(made)


def sign_in(client: TestClient, token: str) -> tuple[int, str, dict[str, str]]:
    answer = client.post(
        "/signin", data={"token": token}, headers={"Origin": OWN}, follow_redirects=False
    )
    return answer.status_code, answer.text, dict(answer.headers)


def test_the_defaults_are_ten_failures_a_minute() -> None:
    assert (Access().failed_signin_limit, Access().failed_signin_window) == (
        10,
        timedelta(minutes=1),
    )


def test_the_eleventh_failed_token_is_answered_429_with_retry_after(api: Api, clock: Clock) -> None:
    for _ in range(10):
        clock.now += 1
        assert api.client.get(PRESENCE, headers=WRONG).status_code == 401
    clock.now += 15
    refused = api.client.get(PRESENCE, headers=WRONG)
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "45"  # a minute after the last failure
    assert refused.json()["detail"]["code"] == "too_many_attempts"
    assert "try again in 45 s" in refused.json()["detail"]["reason"]
    # a correct token from the address waits too (no look-up while it is limited)...
    assert api.get("frank", PRESENCE).status_code == 429
    # ...until the window has passed since the last failure
    clock.now += 45
    assert api.get("frank", PRESENCE).status_code == 200
    assert api.client.get(PRESENCE, headers=WRONG).status_code == 401


def test_successes_are_not_counted(api: Api, clock: Clock) -> None:
    for _ in range(9):
        assert api.client.get(PRESENCE, headers=WRONG).status_code == 401
        assert api.get("frank", PRESENCE).status_code == 200
    for _ in range(20):
        assert api.get("frank", PRESENCE).status_code == 200
    assert sign_in(api.client, api.tokens["frank"])[0] == 303
    api.client.cookies.clear()
    assert api.client.get(PRESENCE, headers=WRONG).status_code == 401  # the 10th failure
    assert api.client.get(PRESENCE, headers=WRONG).status_code == 429


def test_failures_spread_over_more_than_the_window_are_never_limited(
    api: Api, clock: Clock
) -> None:
    for _ in range(30):
        clock.now += 7  # at most 9 in any minute
        assert api.client.get(PRESENCE, headers=WRONG).status_code == 401


def test_the_sign_in_form_says_how_long_to_wait(api: Api, clock: Clock) -> None:
    for _ in range(10):
        status, text, _ = sign_in(api.client, "flt_guess")
        assert status == 401 and "unknown, expired or has been revoked" in text
    clock.now += 0.5
    status, text, headers = sign_in(api.client, "flt_guess")
    assert status == 429 and headers["retry-after"] == "60"
    assert 'data-testid="signin-error">Too many attempts, try again in 60 s.</p>' in text
    assert "content-security-policy" in headers  # the page's own headers
    status, text, headers = sign_in(api.client, api.tokens["frank"])  # a correct one waits too
    assert status == 429 and "Too many attempts, try again in 60 s." in text
    assert SESSION_COOKIE not in api.client.cookies
    clock.now += 60
    assert sign_in(api.client, api.tokens["frank"])[0] == 303


def test_the_form_and_the_api_count_together(api: Api) -> None:
    for _ in range(5):
        assert sign_in(api.client, "flt_guess")[0] == 401
        assert api.client.get(PRESENCE, headers=WRONG).status_code == 401
    assert sign_in(api.client, "flt_guess")[0] == 429


def test_a_limited_address_still_gets_its_webhooks_and_open_sessions(api: Api) -> None:
    assert sign_in(api.client, api.tokens["frank"])[0] == 303
    session = api.client.cookies[SESSION_COOKIE]
    api.client.cookies.clear()
    for _ in range(10):
        api.client.get(PRESENCE, headers=WRONG)
    assert api.client.get(PRESENCE, headers=WRONG).status_code == 429
    body = payload("web")
    answer = api.client.post("/webhooks/web", content=body, headers=signed_headers("web", body))
    assert answer.status_code == 200, answer.text
    with_cookie = {"Cookie": f"{SESSION_COOKIE}={session}"}
    assert api.client.get(PRESENCE, headers=with_cookie).status_code == 200
    # an ended session is no guess: it is never counted
    api.client.post("/signout", headers={"Origin": OWN, **with_cookie})
    for _ in range(20):
        assert api.client.get(PRESENCE, headers=with_cookie).status_code == 401


def test_another_address_is_not_limited(api: Api) -> None:
    for _ in range(10):
        api.client.get(PRESENCE, headers=WRONG)
    assert api.get("frank", PRESENCE).status_code == 429
    # (the app is running: a second client without its own lifespan, from another address)
    elsewhere = TestClient(api.app, client=("198.51.100.7", 50000))
    answer = elsewhere.get(PRESENCE, headers=api.auth("frank"))
    assert answer.status_code == 200, answer.text
    assert json.loads(answer.text)["state"]


def test_the_limit_and_window_come_from_the_deployment() -> None:
    clock = Clock()
    failures = FailedSignIns.of(
        Access(failed_signin_limit=3, failed_signin_window=timedelta(seconds=10))
    )
    failures.clock = clock
    assert [failures.failed("a") for _ in range(3)] == [None, None, 10]
    clock.now += 9.5
    assert failures.wait("a") == 1
    clock.now += 0.5
    assert failures.wait("a") is None


def test_addresses_beyond_the_most_counted_forget_the_expired_first() -> None:
    clock = Clock()
    failures = FailedSignIns(2, timedelta(seconds=10), clock=clock, max_addresses=3)
    failures.failed("old")
    clock.now += 5
    failures.failed("a")
    failures.failed("a")
    failures.failed("b")
    clock.now += 6  # "old" has expired, "a" (limited) has not
    failures.failed("c")
    assert failures.wait("a") == 4
    failures.failed("d")  # none expired: the one known longest ("a") is forgotten
    assert failures.wait("a") is None


def test_a_stream_ticket_guesser_is_limited_and_another_address_is_not(api: Api) -> None:
    """A wrong `?ticket=` on the live stream is a failed sign-in: the ticket stands for a token."""
    for guess in range(10):
        answer = api.client.get(f"/api/agent/stream?ticket=guess-{guess}")
        assert answer.status_code == 401, answer.text
    assert api.client.get("/api/agent/stream?ticket=").status_code == 429
    assert api.get("frank", PRESENCE).status_code == 429  # its tokens wait too
    elsewhere = TestClient(api.app, client=("198.51.100.7", 50000))
    assert elsewhere.get("/api/agent/stream?ticket=guess").status_code == 401
    assert elsewhere.get(PRESENCE, headers=api.auth("frank")).status_code == 200


def test_a_stream_without_a_ticket_is_no_sign_in(api: Api) -> None:
    """Nor is a stream asked for with no credential at all (nothing was guessed)."""
    for _ in range(20):
        assert api.client.get("/api/agent/stream").status_code == 401


def test_an_ipv6_guesser_is_limited_by_its_64_whichever_addresses_it_takes(api: Api) -> None:
    """A host picks addresses of its /64 at will: counted apart, it would never be limited."""
    for host in range(1, 11):
        guesser = TestClient(api.app, client=(f"2001:db8:1:2::{host:x}", 50000))
        assert guesser.get(PRESENCE, headers=WRONG).status_code == 401
    same_64 = TestClient(api.app, client=("2001:db8:1:2:ffff::1", 50000))
    assert same_64.get(PRESENCE, headers=api.auth("frank")).status_code == 429
    next_64 = TestClient(api.app, client=("2001:db8:1:3::1", 50000))
    assert next_64.get(PRESENCE, headers=api.auth("frank")).status_code == 200


def test_an_ipv4_address_written_as_ipv6_is_that_ipv4_address(api: Api) -> None:
    for _ in range(10):
        mapped = TestClient(api.app, client=("::ffff:198.51.100.9", 50000))
        assert mapped.get(PRESENCE, headers=WRONG).status_code == 401
    plain = TestClient(api.app, client=("198.51.100.9", 50000))
    assert plain.get(PRESENCE, headers=api.auth("frank")).status_code == 429
    neighbour = TestClient(api.app, client=("198.51.100.10", 50000))
    assert neighbour.get(PRESENCE, headers=api.auth("frank")).status_code == 200
