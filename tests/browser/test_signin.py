"""Signing in and out in the browser: the token exchanged for a session whose id an HttpOnly,
SameSite=Strict cookie keeps, the role's page opened, a wrong or revoked token refused with the
reason, a session signed out that no copy of its cookie brings back."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from playwright.sync_api import BrowserContext, Page, expect

from flowlang.store import SqliteStore
from tests.browser.pages import sign_in
from tests.browser.service import Running

NewContext = Callable[..., BrowserContext]


def test_an_agent_signs_in_and_gets_the_workspace_with_a_strict_httponly_cookie(
    service: Running, new_context: NewContext, shoot: Callable[[Page, str], Path]
) -> None:
    context = new_context()
    page = context.new_page()
    page.goto(service.url + "/")
    expect(page).to_have_url(service.url + "/signin")
    shoot(page, "signin")
    page.get_by_test_id("token").fill(service.tokens["frank"])
    page.get_by_test_id("signin").click()
    expect(page).to_have_url(service.url + "/agent")
    expect(page.get_by_test_id("who")).to_contain_text("frank")
    (cookie,) = context.cookies()
    assert cookie["value"].startswith("fls_")  # a session's id: never the token itself
    assert service.tokens["frank"] not in cookie["value"]
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert cookie["secure"] is False  # plain http on loopback; https sets it (test_web_session)
    # the script cannot read the token
    assert page.evaluate("document.cookie") == ""


def test_a_wrong_token_shows_the_error_and_signs_nobody_in(
    service: Running, new_context: NewContext, shoot: Callable[[Page, str], Path]
) -> None:
    context = new_context()
    page = context.new_page()
    page.goto(service.url + "/signin")
    page.get_by_test_id("token").fill("flt_" + "x" * 43)
    page.get_by_test_id("signin").click()
    expect(page.get_by_test_id("signin-error")).to_contain_text(
        "unknown, expired or has been revoked"
    )
    shoot(page, "signin-wrong-token")
    assert context.cookies() == []
    page.goto(service.url + "/agent")
    expect(page).to_have_url(service.url + "/signin")


def test_a_revoked_token_is_signed_out_at_the_next_page(
    service: Running, new_context: NewContext
) -> None:
    page = sign_in(new_context(), service, "alice")
    expect(page).to_have_url(service.url + "/agent")
    with SqliteStore(service.store) as store:
        assert store.revoke_user("alice", datetime.now(UTC))
    page.reload()
    expect(page).to_have_url(service.url + "/signin")


def test_a_supervisor_is_sent_to_the_supervisor_page_and_kept_out_of_the_agents(
    service: Running, new_context: NewContext
) -> None:
    page = sign_in(new_context(), service, "sam")
    expect(page).to_have_url(service.url + "/supervisor")
    page.goto(service.url + "/agent")
    expect(page).to_have_url(service.url + "/supervisor")


def test_sign_out_forgets_the_cookie_and_sets_the_agent_offline(
    service: Running, new_context: NewContext
) -> None:
    context = new_context()
    page = sign_in(context, service, "kenji")
    available = {"state": "available"}
    assert service.api("kenji", "PUT", "/api/agent/presence", available).status_code == 200
    page.get_by_test_id("signout").click()
    expect(page).to_have_url(service.url + "/signin")
    assert context.cookies() == []
    # no work offered (nor auto-answered) for an agent who has left
    assert service.api("kenji", "GET", "/api/agent/presence").json()["state"] == "offline"
    page.goto(service.url + "/agent")
    expect(page).to_have_url(service.url + "/signin")


def test_a_copy_of_the_cookie_signs_nobody_in_once_signed_out(
    service: Running, new_context: NewContext
) -> None:
    context = new_context()
    page = sign_in(context, service, "frank")
    expect(page).to_have_url(service.url + "/agent")
    (copied,) = context.cookies()
    page.get_by_test_id("signout").click()
    expect(page).to_have_url(service.url + "/signin")
    thief = new_context()
    thief.add_cookies([{"name": copied["name"], "value": copied["value"], "url": service.url}])
    stolen = thief.new_page()
    stolen.goto(service.url + "/agent")
    expect(stolen).to_have_url(service.url + "/signin")


def test_the_presence_selector_changes_the_agents_presence_in_the_acd(
    service: Running, new_context: NewContext
) -> None:
    page = sign_in(new_context(), service, "frank")
    presence = page.get_by_test_id("presence")
    expect(presence).to_have_value("available")  # as the ACD has him
    with page.expect_response("**/api/agent/presence") as answered:
        presence.select_option("away")
    assert answered.value.ok
    assert service.api("frank", "GET", "/api/agent/presence").json()["state"] == "away"
    page.reload()
    expect(page.get_by_test_id("presence")).to_have_value("away")
