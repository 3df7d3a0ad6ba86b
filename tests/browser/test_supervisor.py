"""The supervisor dashboard in Chromium: queues, agents and the longest active interactions
updating live as customers write and agents work (no reload), a supervisor changing an
agent's presence and pulling an interaction back, the history and an interaction's details,
and an agent kept out."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Locator, Page, expect

from flowlang.store import SqliteStore
from tests.browser.pages import sign_in
from tests.browser.service import Running, start_service
from tests.fake_vendor import FakeVendor, Reply
from tests.service.helpers import PAYLOADS, signed_headers

NewContext = Callable[..., BrowserContext]

# WhatsApp waits in Overflow for frank (who accepts by hand); public X mentions go to Social
# Public (erin and dave, auto-answer).
FLOW = """\
flow "Supervisor test"
serve messages on web account "gbank-web", whatsapp number "+442079460000"
serve posts and comments and mentions on x_public handle "@GbankSocial"

state start:
    if message.channel == "whatsapp":
        route to queue "Overflow"
    else:
        route to queue "Social Public"
"""


@pytest.fixture
def service(tmp_path: Path, fake_vendor: FakeVendor) -> Iterator[Running]:
    running = start_service(tmp_path, fake_vendor, flow=FLOW)
    yield running
    running.client.close()
    running.process.stop()


def mention(service: Running, text: str, at: datetime) -> None:
    """A public X mention of @GbankSocial posted at `at`, signed as X signs it."""
    payload = json.loads((PAYLOADS / "x" / "mention.json").read_text("utf-8"))
    tweet = payload["tweet_create_events"][0]
    tweet["text"] = f"@GbankSocial {text}"
    tweet["created_at"] = at.strftime("%a %b %d %H:%M:%S +0000 %Y")
    tweet["timestamp_ms"] = str(int(at.timestamp() * 1000))
    body = json.dumps(payload).encode()
    answer = service.client.post(
        "/webhooks/x_public", content=body, headers=signed_headers("x_public", body)
    )
    assert answer.status_code == 200, answer.text
    service.process.settle()


def queue_cell(page: Page, queue: str, field: str) -> Locator:
    return page.locator(f'tr[data-queue="{queue}"] td[data-field="{field}"]')


def agent_row(page: Page, agent: str) -> Locator:
    return page.locator(f'tr[data-agent="{agent}"]')


def test_the_dashboard_follows_customers_and_agents_live(
    service: Running, new_context: NewContext, shoot: Callable[[Page, str], Path]
) -> None:
    page = sign_in(new_context(), service, "sam")
    expect(page).to_have_url(service.url + "/supervisor")
    expect(page.get_by_test_id("live-status")).to_have_text("live")
    expect(queue_cell(page, "Overflow", "waiting")).to_have_text("0")
    expect(queue_cell(page, "Overflow", "longest-wait")).to_have_text("—")
    page.evaluate("window.stillTheSamePage = true")

    service.whatsapp("447700900123", "my card is blocked", name="Ben")
    expect(queue_cell(page, "Overflow", "waiting")).to_have_text("1")
    expect(queue_cell(page, "Overflow", "longest-wait")).to_have_text(re.compile(r"^\d+ s$"))
    frank = agent_row(page, "frank")
    expect(frank).to_contain_text("offered")
    expect(frank).to_contain_text("Messages 1/5")
    assert page.evaluate("window.stillTheSamePage") is True  # no reload

    mention(service, "why is there a new fee? #nothappy", datetime.now(UTC) - timedelta(hours=2))
    public = page.locator('section[data-media="social_public"]')
    expect(public).to_contain_text("1 active")
    expect(public).to_contain_text(re.compile(r"2 h 0\d min"))
    expect(public).to_contain_text("Dana Reyes")

    (offered,) = service.api("frank", "GET", "/api/agent/interactions").json()
    conv = offered["conversation_id"]
    accepted = service.api("frank", "POST", f"/api/agent/interactions/{conv}/accept")
    assert accepted.status_code == 200, accepted.text
    expect(queue_cell(page, "Overflow", "waiting")).to_have_text("0")
    expect(queue_cell(page, "Overflow", "in-progress")).to_have_text("1")
    expect(queue_cell(page, "Overflow", "service-level")).to_have_text("100 %")
    expect(frank).to_contain_text("active")
    assert page.evaluate("window.stillTheSamePage") is True
    shoot(page, "supervisor")
    page.set_viewport_size({"width": 420, "height": 900})
    expect(queue_cell(page, "Overflow", "in-progress")).to_be_visible()
    shoot(page, "supervisor-narrow")


def test_a_supervisor_sets_presence_with_the_keyboard_and_pulls_an_interaction_back(
    service: Running, new_context: NewContext
) -> None:
    page = sign_in(new_context(), service, "sam")
    expect(page.get_by_test_id("live-status")).to_have_text("live")
    presence = page.get_by_label("Presence of Frank Mills")
    expect(presence).to_have_value("available")
    presence.focus()
    page.keyboard.press("ArrowDown")  # available -> away
    expect(page.locator("#notice")).to_have_text("Frank Mills is now away.")
    assert service.api("frank", "GET", "/api/agent/presence").json()["state"] == "away"
    expect(agent_row(page, "frank")).to_have_attribute("data-presence", "away")
    # a snapshot re-renders the table: the keyboard stays where it was
    service.whatsapp("447700900123", "hello?", name="Ben")
    expect(queue_cell(page, "Overflow", "waiting")).to_have_text("1")
    assert page.evaluate("document.activeElement.dataset.focusKey") == "presence:frank"

    page.keyboard.press("ArrowUp")  # back to available: the waiting one is offered
    expect(agent_row(page, "frank")).to_contain_text("offered")
    (item,) = service.api("frank", "GET", "/api/agent/interactions").json()
    conv = item["conversation_id"]
    service.api("frank", "POST", f"/api/agent/interactions/{conv}/accept")
    pull = page.get_by_role("button", name=f"Pull {conv} back to Overflow")
    pull.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#notice")).to_have_text(f"{conv} is back in Overflow.")
    expect(queue_cell(page, "Overflow", "waiting")).to_have_text("1")
    expect(agent_row(page, "frank")).not_to_contain_text(conv)
    assert service.api("frank", "GET", "/api/agent/interactions").json() == []


def test_history_and_an_interactions_details(
    service: Running, new_context: NewContext, shoot: Callable[[Page, str], Path]
) -> None:
    service.whatsapp("447700900123", "my card is blocked", name="Ben")
    page = sign_in(new_context(), service, "sam")
    today = datetime.now(UTC).date()
    history = page.locator("#history")
    expect(history).to_contain_text(f"History, {today.strftime('%d %b %Y')}")
    expect(history.locator("tr", has_text="Overflow").first).to_be_visible()
    assert history.locator("svg").count() == 3
    # at 1280x800 every column of the table fits: no scrolling box, no header cut off
    table = history.locator(".scroll")
    assert table.evaluate("(box) => box.scrollWidth <= box.clientWidth"), "the table scrolls"
    card = history.bounding_box()
    assert card is not None
    headers = history.locator("#history-queues thead th")
    assert headers.count() == 16  # the columns of `flowlang report queues`
    for index in range(headers.count()):
        header = headers.nth(index)
        box = header.bounding_box()
        assert box is not None and box["x"] + box["width"] <= card["x"] + card["width"]
        assert header.evaluate("(th) => th.scrollWidth <= th.clientWidth"), header.inner_text()
    expect(headers.last).to_have_text("Satisfaction")
    history.scroll_into_view_if_needed()
    shoot(page, "supervisor-history")

    yesterday = today - timedelta(days=1)
    history.get_by_label("From").fill(yesterday.isoformat())
    history.get_by_role("button", name="Show").click()
    expect(history).to_contain_text(
        f"History, {yesterday.strftime('%d %b %Y')} to {today.strftime('%d %b %Y')}"
    )
    page.goto(f"{service.url}/supervisor?from={today.isoformat()}&to={yesterday.isoformat()}")
    expect(page.get_by_test_id("period-error")).to_contain_text("is before `from`")

    page.goto(service.url + "/supervisor")
    frank = agent_row(page, "frank")
    link = frank.get_by_role("link").first
    conv = link.inner_text()
    link.click()
    expect(page).to_have_url(f"{service.url}/supervisor/interactions/{conv}")
    details = page.get_by_test_id("interaction")
    expect(details).to_contain_text("Ben (c1)")
    expect(details).to_contain_text("whatsapp")
    expect(details).to_contain_text("Overflow")
    expect(details).to_contain_text("in progress")
    shoot(page, "supervisor-interaction")
    page.goto(service.url + "/supervisor/interactions/nope")
    expect(page.get_by_role("alert")).to_contain_text("No interaction nope")


def test_an_agent_cannot_open_the_dashboard(service: Running, new_context: NewContext) -> None:
    page = sign_in(new_context(), service, "frank")
    page.goto(service.url + "/supervisor")
    expect(page).to_have_url(service.url + "/agent")
    page.goto(service.url + "/supervisor/interactions/c1")
    expect(page).to_have_url(service.url + "/agent")
    status = page.evaluate(
        "fetch('/api/supervisor/dashboard', {headers: {'X-Flowlang-Request': '1'}})"
        ".then((r) => r.status)"
    )
    assert status == 403


def test_a_revoked_token_signs_the_dashboard_out(service: Running, new_context: NewContext) -> None:
    page = sign_in(new_context(), service, "sam")
    expect(page.get_by_test_id("live-status")).to_have_text("live")
    with SqliteStore(service.store) as store:
        assert store.revoke_user("sam", datetime.now(UTC))
    # the stream checks its token every 5 seconds, then says so and the page signs out
    expect(page).to_have_url(service.url + "/signin", timeout=15_000)


def test_an_interactions_details_list_the_replies_never_delivered(
    service: Running, new_context: NewContext
) -> None:
    service.vendor.script(Reply.error(400, {"error": {"code": 131047, "message": "(#131047)"}}))
    service.whatsapp("447700900123", "hello?", name="Ben")
    (item,) = service.api("frank", "GET", "/api/agent/interactions").json()
    conv = item["conversation_id"]
    assert service.api("frank", "POST", f"/api/agent/interactions/{conv}/accept").is_success
    path = f"/api/agent/interactions/{conv}/reply"
    assert service.api("frank", "POST", path, {"text": "Here I am"}).is_success
    history = f"/api/agent/interactions/{conv}/history"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the outbox's thread hears the vendor's refusal
        sent = service.api("frank", "GET", history).json()["messages"][-1]
        if sent["delivery"]:
            break
        time.sleep(0.05)
    assert sent["delivery"]["status"] == "failed"
    page = sign_in(new_context(), service, "sam")
    page.goto(f"{service.url}/supervisor/interactions/{conv}")
    expect(page.get_by_test_id("interaction")).to_contain_text("Not delivered")
    failed = page.get_by_test_id("undelivered")
    expect(failed).to_contain_text("“Here I am”")
    expect(failed).to_contain_text("error 131047 (re-engagement message")
