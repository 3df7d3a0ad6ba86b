"""WhatsApp's messaging limit: unique customers reached outside the window per moving 24 hours,
counted per business portfolio (all its numbers), in the store (restarts and processes)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowlang.channels.engine_policy import policy_for_deployment
from flowlang.channels.policy import ChannelPolicy
from flowlang.config import Deployment, load_deployment_text
from flowlang.runtime.ports import ConversationView, OutboundMessage
from flowlang.store import SqliteStore

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
MAIN, CARDS, OTHER = "+442079460000", "+442079460001", "+442079460002"
DEPLOYMENT = f"""templates:
  whatsapp_followup:
    whatsapp: {{name: whatsapp_followup}}
channels:
  whatsapp:
    accounts:
      - {{name: GBank WhatsApp, id: "{MAIN}"}}
      - {{name: GBank Cards, id: "{CARDS}"}}
      - {{name: GBank Insurance, id: "{OTHER}"}}
    portfolios:
      GBank:
        tier: 2
        numbers: [GBank WhatsApp, "{CARDS}"]
"""


def deployment(text: str = DEPLOYMENT) -> Deployment:
    loaded, problems = load_deployment_text(text, "deployment.yaml")
    assert loaded is not None, [p.message for p in problems]
    return loaded


def conversation(account: str, customer: str) -> ConversationView:
    # the customer wrote two days ago: their window is closed
    at = T0 - timedelta(days=2)
    return ConversationView(
        f"conv-{customer}", customer, "whatsapp", account, at, at, None, True, last_inbound_at=at
    )


def template(account: str, customer: str) -> OutboundMessage:
    content = {"kind": "template", "name": "whatsapp_followup", "parameters": {}}
    return OutboundMessage(f"conv-{customer}", "whatsapp", account, customer, "flow", content)


def send(policy: ChannelPolicy, account: str, customer: str, at: datetime = T0) -> str:
    delivery = policy.decide(template(account, customer), conversation(account, customer), at)
    return delivery.reason_code


def test_the_limit_is_shared_by_every_number_of_the_portfolio() -> None:
    policy = policy_for_deployment(deployment())
    assert send(policy, MAIN, "447700900001") == "business_initiated"
    assert send(policy, MAIN, "447700900002") == "business_initiated"
    blocked = policy.decide(
        template(CARDS, "447700900003"), conversation(CARDS, "447700900003"), T0
    )
    assert (blocked.status, blocked.reason_code) == ("blocked", "tier_limit_reached")
    assert "GBank portfolio" in blocked.reason and "2 customers" in blocked.reason
    assert "channels.whatsapp.portfolios.GBank.tier" in blocked.suggestion
    # a customer already reached today is not a new one, from any number of the portfolio
    assert send(policy, CARDS, "447700900001") == "business_initiated"
    # a number outside the portfolio counts on its own, under the channel's default tier
    assert send(policy, OTHER, "447700900003") == "business_initiated"
    # the window moves: a day after the first two, there is room again
    assert send(policy, CARDS, "447700900003", T0 + timedelta(hours=24)) == "business_initiated"


def test_the_count_is_in_the_store_shared_by_processes_and_kept_over_a_restart(
    tmp_path: Path,
) -> None:
    path = tmp_path / "cc.db"
    with SqliteStore(path) as one, SqliteStore(path) as two:
        first, second = policy_for_deployment(deployment()), policy_for_deployment(deployment())
        first.use_ledger(one)
        second.use_ledger(two)
        with one.transaction():
            assert send(first, MAIN, "447700900001") == "business_initiated"
        with two.transaction():
            assert send(second, CARDS, "447700900002") == "business_initiated"
        with one.transaction():
            assert send(first, MAIN, "447700900003") == "tier_limit_reached"
    with SqliteStore(path) as restarted:
        policy = policy_for_deployment(deployment())
        policy.use_ledger(restarted)
        assert send(policy, CARDS, "447700900004") == "tier_limit_reached"
        assert send(policy, CARDS, "+44 7700 900001") == "business_initiated"


def test_without_portfolios_every_number_shares_the_channel_tier() -> None:
    text = DEPLOYMENT.split("    portfolios:")[0] + "    rules: {tier: 2}\n"
    policy = policy_for_deployment(deployment(text))
    assert send(policy, MAIN, "447700900001") == "business_initiated"
    assert send(policy, CARDS, "447700900002") == "business_initiated"
    assert send(policy, OTHER, "447700900003") == "tier_limit_reached"


def test_an_unlimited_portfolio_is_not_counted() -> None:
    policy = policy_for_deployment(deployment(DEPLOYMENT.replace("tier: 2", "tier: unlimited")))
    codes = {send(policy, MAIN, f"4477009000{n:02}") for n in range(5)}
    assert codes == {"business_initiated"}


@pytest.mark.parametrize(
    ("change", "code", "message"),
    [
        ('"{CARDS}"]', "FL505", "unknown whatsapp account 'GBank Card' in portfolio 'GBank'"),
        ("tier: 2", "FL503", "0 is not a messaging limit"),
        ("GBank:", "FL506", "account 'GBank WhatsApp' is in portfolios"),
        ("channels:", "FL503", "sms has no business portfolios"),
    ],
)
def test_portfolio_mistakes_are_reported_where_they_are(
    change: str, code: str, message: str
) -> None:
    text = {
        '"{CARDS}"]': DEPLOYMENT.replace(f'"{CARDS}"]', '"GBank Card"]'),
        "tier: 2": DEPLOYMENT.replace("tier: 2", "tier: 0"),
        "GBank:": DEPLOYMENT
        + "      Other:\n        tier: 250\n        numbers: [GBank WhatsApp]\n",
        "channels:": DEPLOYMENT + "  sms:\n    portfolios:\n      GBank: {tier: 250}\n",
    }[change]
    _loaded, problems = load_deployment_text(text, "deployment.yaml")
    found = [(p.code, p.message) for p in problems]
    assert any(c == code and message in m for c, m in found), found
    assert all(p.span is not None and p.span.line > 1 for p in problems)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([MAIN, CARDS]),  # both numbers of the GBank portfolio (tier 2)
            st.integers(1, 5),  # one of five customers
            st.integers(0, 20),  # hours since the previous send
        ),
        max_size=25,
    )
)
def test_no_24_hours_ever_reach_more_customers_than_the_tier(
    sends: list[tuple[str, int, int]],
) -> None:
    policy = policy_for_deployment(deployment())
    at, allowed = T0, []
    for account, customer, hours in sends:
        at += timedelta(hours=hours)
        if send(policy, account, f"44770090000{customer}", at) == "business_initiated":
            allowed.append((at, customer))
        recent = {c for when, c in allowed if at - when < timedelta(hours=24)}
        assert len(recent) <= 2
