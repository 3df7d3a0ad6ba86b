"""The service's intake and the engine find an event's account by the same names
(`Account.answers_to`): whatever spelling of an account of the example deployment an event
carries (its name, id or X user id; a number with or without `+`, a handle with or without `@`,
in any case), the intake takes it exactly when the engine finds that account, and a name of no
account is refused by both."""

from __future__ import annotations

import json
import string
import unicodedata
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flowlang.account_names import account_key
from flowlang.channels.inbound import Part, read
from flowlang.config.models import Account
from flowlang.events import EventKind, InboundEvent
from flowlang.project import load_project
from flowlang.runtime.accounts import Accounts
from flowlang.service.app import webhook_accounts
from flowlang.service.webhooks import X_CHANNELS, _foreign, _read_request
from tests.service.helpers import EXAMPLE_DEPLOYMENT, FLOW, PAYLOADS

PROJECT, _ = load_project(FLOW, EXAMPLE_DEPLOYMENT)
assert PROJECT is not None and PROJECT.deployment is not None
DEPLOYMENT = PROJECT.deployment
INTAKE = webhook_accounts(PROJECT)
ENGINE = Accounts.from_deployment(DEPLOYMENT)
AT = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def spellings(value: str) -> list[str]:
    """`value` as events may write it: in any case, a number with or without its `+`, a
    handle with or without its `@`."""
    bare = value.removeprefix("+").removeprefix("@")
    marked = [bare, f"+{bare}"] if bare.isdigit() else [bare, f"@{bare}"]
    return sorted({form for v in {value, *marked} for form in (v, v.upper(), v.lower())})


def strangers(account: Account) -> list[str]:
    """Names close to the account's that are no account's of the channel."""
    names = [n for n in (account.name, account.id, account.user_id) if n]
    return [f"{n}0" for n in names] + [f"x{n.removeprefix('+').removeprefix('@')}" for n in names]


ACCOUNTS = [
    (channel, account)
    for channel, entry in DEPLOYMENT.channels.items()
    for account in entry.accounts
    if channel not in X_CHANNELS
]
X_ACCOUNTS = [
    (channel, account)
    for channel, entry in DEPLOYMENT.channels.items()
    for account in entry.accounts
    if channel in X_CHANNELS
]


def event(channel: str, account: str) -> InboundEvent:
    return InboundEvent(
        event_id="e-1", channel=channel, account=account, sender_id="c-1", text="hi", timestamp=AT
    )


def intake_takes(channel: str, part: Part) -> bool:
    return not _foreign(channel, part, INTAKE[channel])


def test_every_channel_of_the_example_has_its_accounts_tested() -> None:
    covered = {channel for channel, _ in ACCOUNTS + X_ACCOUNTS}
    assert covered == {c for c, entry in DEPLOYMENT.channels.items() if entry.accounts}
    assert {c for c, _ in X_ACCOUNTS} == set(X_CHANNELS)


@pytest.mark.parametrize(("channel", "account"), ACCOUNTS, ids=lambda v: getattr(v, "name", v))
def test_the_intake_takes_an_account_exactly_when_the_engine_finds_it(
    channel: str, account: Account
) -> None:
    for value in (account.name, account.id):
        assert value is not None
        for spelled in spellings(value):
            part = Part("0", {}, [event(channel, spelled)])
            assert intake_takes(channel, part), (channel, spelled)
            found = ENGINE.find(channel, spelled)
            assert found is not None and found.names == account.answers_to(), (channel, spelled)
    for stranger in strangers(account):
        part = Part("0", {}, [event(channel, stranger)])
        assert not intake_takes(channel, part), (channel, stranger)
        assert ENGINE.find(channel, stranger) is None, (channel, stranger)


def x_requests(user_id: str, handle: str) -> list[bytes]:
    """A DM (with the business's profile), a mention (naming its handle) and a deletion (naming
    no handle) for the X account `user_id`, whose handle is written `handle`."""
    screen_name = handle.removeprefix("@")  # as X writes it
    dm = json.loads(PAYLOADS.joinpath("x/dm.json").read_bytes())
    profile = dm["users"].pop("1450000000000000001")
    dm["users"][user_id] = {**profile, "id": user_id, "screen_name": screen_name}
    dm["direct_message_events"][0]["message_create"]["target"]["recipient_id"] = user_id
    mention: dict[str, Any] = json.loads(PAYLOADS.joinpath("x/mention.json").read_bytes())
    post = mention["tweet_create_events"][0]
    post |= {"in_reply_to_user_id_str": user_id, "in_reply_to_screen_name": screen_name}
    post["entities"]["user_mentions"] = []
    delete = json.loads(PAYLOADS.joinpath("x/delete.json").read_bytes())
    return [json.dumps({**body, "for_user_id": user_id}).encode() for body in (dm, mention, delete)]


@pytest.mark.parametrize(("channel", "account"), X_ACCOUNTS, ids=lambda v: getattr(v, "name", v))
def test_an_x_account_is_the_same_to_the_intake_and_the_engine(
    channel: str, account: Account
) -> None:
    """X names the account of a request by its numeric user id; its events name it by its
    handle when they carry it, else by that id: the engine finds the account either way."""
    assert account.user_id is not None and account.id is not None
    for handle in spellings(account.id):
        for body in x_requests(account.user_id, handle):
            parts = [p for p in read(channel, body, received_at=AT) if p.events]
            assert parts, body
            for part in parts:
                assert intake_takes(channel, part)
                for named in part.events:
                    found = ENGINE.find(channel, named.account)
                    assert found is not None, (channel, named.account)
                    assert found.names == account.answers_to()
    other = str(int(account.user_id) + 1)
    for body in x_requests(other, "@OtherBank"):
        for part in read(channel, body, received_at=AT):
            if part.events:
                assert not intake_takes(channel, part)
                assert all(ENGINE.find(channel, e.account) is None for e in part.events)


def test_a_post_named_by_the_x_user_id_is_the_handles_account() -> None:
    """A post that neither replies to nor mentions the business names it by its user id."""
    mention = json.loads(PAYLOADS.joinpath("x/mention.json").read_bytes())
    post = mention["tweet_create_events"][0]
    post |= {"in_reply_to_user_id_str": None, "in_reply_to_screen_name": None}
    post["entities"]["user_mentions"] = []
    [part] = read("x_public", json.dumps(mention), received_at=AT)
    [named] = part.events
    assert named.kind is EventKind.POST and named.account == "1450000000000000001"
    assert intake_takes("x_public", part)
    found = ENGINE.find("x_public", named.account)
    assert found is not None and found.queues == {"public_queue": "Social Public"}


@given(st.text(alphabet=string.printable, max_size=24) | st.text(max_size=24))
def test_the_ascii_shortcut_keys_a_name_as_the_general_form_does(name: str) -> None:
    """`account_key` skips NFKC for ASCII (which it leaves as it is, folding case as lower())."""
    general = unicodedata.normalize("NFKC", name).strip().casefold()
    assert account_key(name) == (general[1:] if general.startswith(("+", "@")) else general)
    assert account_key("ＧＢａｎｋ") == account_key("@gbank")  # full-width letters, NFKC


def renamed_x_requests(text: str) -> list[tuple[str, bytes]]:
    """A DM and a mention for the example's X account after it renamed its handle to
    @GBankNew, which the deployment does not list (it lists the old handle and the user id)."""
    dm = json.loads(PAYLOADS.joinpath("x/dm.json").read_bytes())
    dm["users"]["1450000000000000001"]["screen_name"] = "GBankNew"
    dm["direct_message_events"][0]["message_create"]["message_data"]["text"] = text
    mention: dict[str, Any] = json.loads(PAYLOADS.joinpath("x/mention.json").read_bytes())
    post = mention["tweet_create_events"][0]
    post |= {"text": text, "in_reply_to_user_id_str": "1450000000000000001"}
    post |= {"in_reply_to_screen_name": "GBankNew"}
    post["entities"]["user_mentions"] = []
    return [("x_dm", json.dumps(dm).encode()), ("x_public", json.dumps(mention).encode())]


@pytest.mark.parametrize(("text", "matches"), [("my card fee again", True), ("lovely day", False)])
def test_an_x_account_with_a_new_handle_is_still_the_deployments_account(
    text: str, matches: bool
) -> None:
    """The intake takes an X event by its user id; the engine must find the same account
    (its queue, its keyword filter) though the event names a handle the deployment does not
    list: neither every post taken (fail-open) nor every post dropped (fail-closed)."""
    for channel, body in renamed_x_requests(text):
        events, letters = _read_request(channel, body, AT, 100, INTAKE[channel])
        assert not letters and events, channel
        for named in events:
            found = ENGINE.find(channel, named.account)
            assert found is not None, (channel, named.account)
            assert found.names == DEPLOYMENT.channels[channel].accounts[0].answers_to()
            actionable = ENGINE.actionable(channel, named.account, named.text)
            assert actionable is (matches or channel == "x_dm"), (channel, text)
