"""The pages' session cookie as the API sees it: a state change signed in by the cookie must
come from the service's own pages (its Origin and the X-Flowlang-Request header), never from
another site; the sign-in form sets the cookie (a session's id, not the token) HttpOnly,
SameSite=Strict, Secure over https; every page carries a strict Content-Security-Policy."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from flowlang.service.access import REQUEST_HEADER, SESSION_COOKIE
from flowlang.web.security import CONTENT_SECURITY_POLICY
from tests.service.api_helpers import Api, make_api, under_test_client
from tests.service.helpers import PUBLIC_URL, environment

OWN = "http://testserver"


@pytest.fixture
def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    for name, value in environment().items():
        monkeypatch.setenv(name, value)
    yield from under_test_client(make_api(tmp_path))


def cookie(session: str) -> dict[str, str]:
    return {"Cookie": f"{SESSION_COOKIE}={session}"}


def session_of(api: Api, name: str) -> str:
    """The session id `name`'s browser gets by signing in with their token."""
    answer = api.client.post(
        "/signin", data={"token": api.tokens[name]}, headers={"Origin": OWN}, follow_redirects=False
    )
    assert answer.status_code == 303, answer.text
    session: str = answer.cookies[SESSION_COOKIE]
    api.client.cookies.clear()  # each request says which cookie it sends
    return session


def put_presence(api: Api, headers: dict[str, str], state: str = "away") -> tuple[int, str]:
    answer = api.client.put(
        "/api/agent/presence",
        json={"state": state},
        headers={**headers, **cookie(session_of(api, "frank"))},
    )
    return answer.status_code, answer.text


def presence(api: Api) -> str:
    state: str = api.get("frank", "/api/agent/presence").json()["state"]
    return state


def test_the_cookie_acts_from_the_services_own_pages(api: Api) -> None:
    status, text = put_presence(api, {"Origin": OWN, REQUEST_HEADER: "1"})
    assert status == 200, text
    assert presence(api) == "away"
    # the origin --public-url names is the service's own too
    status, text = put_presence(api, {"Origin": PUBLIC_URL, REQUEST_HEADER: "1"}, "available")
    assert status == 200, text
    assert presence(api) == "available"


@pytest.mark.parametrize(
    "headers",
    [
        {REQUEST_HEADER: "1"},  # no Origin
        {"Origin": "null", REQUEST_HEADER: "1"},
        {"Origin": "https://evil.example", REQUEST_HEADER: "1"},
        {"Origin": OWN},  # a plain form post of another page: no header
    ],
)
def test_a_cross_site_change_with_the_cookie_is_refused_and_changes_nothing(
    api: Api, headers: dict[str, str]
) -> None:
    before = presence(api)
    status, text = put_presence(api, headers, "away" if before != "away" else "available")
    assert status == 403
    assert '"cross_site"' in text
    assert presence(api) == before


def test_reading_with_the_cookie_needs_no_header_and_the_bearer_token_needs_no_origin(
    api: Api,
) -> None:
    answer = api.client.get("/api/agent/presence", headers=cookie(session_of(api, "frank")))
    assert answer.status_code == 200
    assert api.put("frank", "/api/agent/presence", {"state": "away"}).status_code == 200


def test_a_wrong_cookie_is_401(api: Api) -> None:
    answer = api.client.get("/api/agent/presence", headers=cookie("flt_nope"))
    assert answer.status_code == 401


def test_sign_in_sets_a_secure_strict_httponly_cookie_behind_https(api: Api) -> None:
    # the test service runs with --public-url https://cc.example.com
    answer = api.client.post(
        "/signin",
        data={"token": api.tokens["frank"]},
        headers={"Origin": OWN},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/agent"
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=fls_")
    assert api.tokens["frank"] not in cookie  # the session's id, never the token
    for flag in ("HttpOnly", "SameSite=strict", "Secure", "Path=/"):
        assert flag.lower() in cookie.lower(), cookie


def test_sign_in_from_another_site_is_refused(api: Api) -> None:
    answer = api.client.post(
        "/signin",
        data={"token": api.tokens["frank"]},
        headers={"Origin": "https://evil.example"},
        follow_redirects=False,
    )
    assert answer.status_code == 403
    assert "set-cookie" not in answer.headers


def test_a_wrong_token_at_sign_in_is_401_with_the_reason_and_no_cookie(api: Api) -> None:
    answer = api.client.post(
        "/signin", data={"token": "flt_wrong"}, headers={"Origin": OWN}, follow_redirects=False
    )
    assert answer.status_code == 401
    assert "unknown, expired or has been revoked" in answer.text
    assert "set-cookie" not in answer.headers


def test_pages_static_files_and_the_api_carry_a_strict_csp(api: Api) -> None:
    for path in ("/signin", "/static/app.css", "/static/common.js", "/health", "/openapi.json"):
        answer = api.client.get(path)
        assert answer.status_code == 200, path
        assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert answer.headers["x-frame-options"] == "DENY"
    assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY
    assert "default-src 'none'" in CONTENT_SECURITY_POLICY
    assert api.client.get("/docs").status_code == 404  # no CDN-loaded API browser


def test_pages_send_a_signed_out_browser_to_sign_in(api: Api) -> None:
    for path in ("/", "/agent", "/supervisor"):
        answer = api.client.get(path, follow_redirects=False)
        assert (answer.status_code, answer.headers["location"]) == (303, "/signin"), path


def sign_out(api: Api, name: str, origin: str = OWN) -> int:
    answer = api.client.post(
        "/signout",
        headers={"Origin": origin, **cookie(session_of(api, name))},
        follow_redirects=False,
    )
    code: int = answer.status_code
    return code


def test_an_agent_who_signs_out_is_offline_keeps_what_they_hold_and_gets_no_new_offer(
    api: Api,
) -> None:
    assert api.put("frank", "/api/agent/presence", {"state": "available"}).status_code == 200
    api.web("v-1", "Hello")
    api.web("v-1", "Eve")
    (held,) = api.work("frank")
    assert api.post("frank", f"/api/agent/interactions/{held}/accept").status_code == 200
    assert sign_out(api, "frank") == 303
    assert presence(api) == "offline"
    api.web("v-2", "Hello")
    api.web("v-2", "Max")
    assert api.work("frank") == {held: "assigned"}  # no offer for someone who has left
    # signing out again, or a supervisor signing out, changes nobody's presence
    assert sign_out(api, "frank") == 303 and sign_out(api, "sam") == 303
    assert presence(api) == "offline"


def test_a_sign_out_from_another_site_changes_no_presence(api: Api) -> None:
    assert api.put("frank", "/api/agent/presence", {"state": "available"}).status_code == 200
    assert sign_out(api, "frank", origin="https://evil.example") == 403
    assert presence(api) == "available"
