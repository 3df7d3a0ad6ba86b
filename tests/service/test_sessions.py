"""The browser's sign-in sessions as the API and the live stream see them: the cookie holds a
session id the store keeps only as a hash, never the API token; a session signed out, idle too
long, past its lifetime, or whose token was revoked or expired is 401 on the API, on the pages
and on the stream, and an open stream closes."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from flowlang.runtime.users import token_hash
from flowlang.service.access import REQUEST_HEADER, SESSION_COOKIE
from flowlang.service.stream import CLOSED
from tests.service.api_helpers import Api, Stream, live_server, make_api, revoke
from tests.service.helpers import environment

OWN = "http://testserver"


@pytest.fixture
def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    for name, value in environment().items():
        monkeypatch.setenv(name, value)
    service = make_api(tmp_path)
    service.app.state.agent_feed.recheck = 0.2  # seconds between two checks of the session
    yield from live_server(service)


def sign_in(api: Api, name: str) -> str:
    """`name` signs in with their token in the form; the session id their cookie gets."""
    origin = str(api.client.base_url).rstrip("/")
    answer = api.client.post(
        "/signin",
        data={"token": api.tokens[name]},
        headers={"Origin": origin},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    session: str = answer.cookies[SESSION_COOKIE]
    api.client.cookies.clear()  # each request below says which cookie it sends
    return session


def with_cookie(session: str) -> dict[str, str]:
    return {"Cookie": f"{SESSION_COOKIE}={session}"}


def presence(api: Api, session: str) -> int:
    code: int = api.client.get("/api/agent/presence", headers=with_cookie(session)).status_code
    return code


def stored(api: Api, query: str, *args: object) -> list[tuple[object, ...]]:
    with sqlite3.connect(api.settings.store) as db:
        return db.execute(query, args).fetchall()


def change(api: Api, query: str, *args: object) -> None:
    with sqlite3.connect(api.settings.store) as db:
        db.execute(query, args)


def test_the_cookie_holds_a_session_id_and_the_store_only_its_hash(api: Api) -> None:
    session = sign_in(api, "frank")
    assert session.startswith("fls_") and api.tokens["frank"] not in session
    assert presence(api, session) == 200
    rows = stored(api, "SELECT * FROM sessions")
    assert [row[0] for row in rows] == [token_hash(session)]
    assert session not in repr(rows) and api.tokens["frank"] not in repr(rows)


def test_the_api_token_itself_in_the_cookie_signs_nobody_in(api: Api) -> None:
    assert presence(api, api.tokens["frank"]) == 401
    page = api.client.get("/agent", headers=with_cookie(api.tokens["frank"]))
    assert (page.status_code, page.headers["location"]) == (303, "/signin")


def test_a_signed_out_session_is_401_on_the_api_the_pages_and_the_stream(api: Api) -> None:
    session = sign_in(api, "frank")
    origin = str(api.client.base_url).rstrip("/")
    out = api.client.post(
        "/signout", headers={"Origin": origin, **with_cookie(session)}, follow_redirects=False
    )
    assert out.status_code == 303
    assert stored(api, "SELECT count(*) FROM sessions") == [(0,)]
    assert presence(api, session) == 401
    page = api.client.get("/agent", headers=with_cookie(session))
    assert (page.status_code, page.headers["location"]) == (303, "/signin")
    stream = api.client.get("/api/agent/stream", headers=with_cookie(session))
    assert stream.status_code == 401
    # the token itself still works where a token goes: signing out ends the browser's session
    assert api.get("frank", "/api/agent/presence").status_code == 200


def test_an_idle_session_ends_and_a_used_one_goes_on(api: Api) -> None:
    idle, used = sign_in(api, "frank"), sign_in(api, "frank")
    long_ago = (datetime.now(UTC) - timedelta(minutes=31)).isoformat()  # the default: 30 min
    lately = (datetime.now(UTC) - timedelta(minutes=29)).isoformat()
    change(
        api, "UPDATE sessions SET last_seen_at = ? WHERE id_hash = ?", long_ago, token_hash(idle)
    )
    change(api, "UPDATE sessions SET last_seen_at = ? WHERE id_hash = ?", lately, token_hash(used))
    assert presence(api, idle) == 401
    assert stored(api, "SELECT id_hash FROM sessions") == [(token_hash(used),)]  # forgotten
    assert presence(api, used) == 200
    (seen,) = stored(api, "SELECT last_seen_at FROM sessions")
    assert datetime.fromisoformat(str(seen[0])) > datetime.now(UTC) - timedelta(minutes=1)


def test_a_session_past_its_lifetime_ends_however_busy(api: Api) -> None:
    session = sign_in(api, "frank")
    opened = (datetime.now(UTC) - timedelta(hours=12, seconds=1)).isoformat()  # default: 12 h
    change(api, "UPDATE sessions SET created_at = ? WHERE id_hash = ?", opened, token_hash(session))
    assert presence(api, session) == 401


def test_a_revoked_token_ends_its_sessions(api: Api) -> None:
    session = sign_in(api, "frank")
    revoke(api, "frank")
    assert presence(api, session) == 401


def test_an_expired_token_signs_in_nowhere_and_ends_its_sessions(api: Api) -> None:
    session = sign_in(api, "frank")
    past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    change(api, "UPDATE users SET expires_at = ? WHERE name = 'frank'", past)
    assert api.get("frank", "/api/agent/presence").status_code == 401
    assert presence(api, session) == 401
    origin = str(api.client.base_url).rstrip("/")
    again = api.client.post(
        "/signin", data={"token": api.tokens["frank"]}, headers={"Origin": origin}
    )
    assert again.status_code == 401 and SESSION_COOKIE not in again.cookies


def test_a_token_not_yet_expired_works(api: Api) -> None:
    soon = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    change(api, "UPDATE users SET expires_at = ? WHERE name = 'frank'", soon)
    assert api.get("frank", "/api/agent/presence").status_code == 200
    assert presence(api, sign_in(api, "frank")) == 200


def test_signing_out_closes_the_stream_the_session_opened(api: Api) -> None:
    session = sign_in(api, "frank")
    headers = with_cookie(session)
    with api.client.stream("GET", "/api/agent/stream", headers=headers) as response:
        assert response.status_code == 200
        stream = Stream(response)
        stream.until("hello")
        origin = str(api.client.base_url).rstrip("/")
        api.client.post("/signout", headers={"Origin": origin, **headers})
        assert stream.until("closed") == {"reason": CLOSED}


def test_a_ticket_of_a_session_signed_out_since_opens_nothing(api: Api) -> None:
    session = sign_in(api, "frank")
    origin = str(api.client.base_url).rstrip("/")
    scripted = {"Origin": origin, REQUEST_HEADER: "1", **with_cookie(session)}
    ticket = api.client.post("/api/agent/stream-ticket", headers=scripted)
    assert ticket.status_code == 200, ticket.text
    api.client.post("/signout", headers={"Origin": origin, **with_cookie(session)})
    answer = api.client.get("/api/agent/stream", params={"ticket": ticket.json()["ticket"]})
    assert answer.status_code == 401
