"""A webhook event for an account that is not the deployment's (one Meta app, one Twilio
account or one LINE provider often serves numbers and pages of other teams or businesses):
kept as a dead letter with its reason, never processed, so that none of its customer's
messages reach this center's flows and agents; the deployment's own accounts go on as before."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from ruamel.yaml import YAML

from flowlang.account_names import account_key
from flowlang.service import ServiceConfigError, create_app
from flowlang.service.settings import Settings
from tests.service.helpers import (
    PAYLOADS,
    environment,
    payload,
    settings_for,
    signed_headers,
    whatsapp_text,
)


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name, value in environment().items():
        monkeypatch.setenv(name, value)
    return settings_for(tmp_path)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def rows(store: Path | str, sql: str) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(store)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def post(client: TestClient, channel: str, body: bytes) -> dict[str, int]:
    answer = client.post(
        f"/webhooks/{channel}", content=body, headers=signed_headers(channel, body)
    )
    assert answer.status_code == 200, answer.text
    result: dict[str, int] = answer.json()
    deadline = time.monotonic() + 60
    while client.get("/ready").json()["unprocessed"] and time.monotonic() < deadline:
        time.sleep(0.01)
    return result


def to_another_number(text: str, event_id: str) -> bytes:
    message = whatsapp_text("447700900555", event_id, text, at=datetime.now(UTC))
    metadata = {"display_phone_number": "15550001111", "phone_number_id": "999000"}
    message["entry"][0]["changes"][0]["value"]["metadata"] = metadata
    return json.dumps(message).encode()


def to_another_page(text: str) -> bytes:
    message = json.loads(payload("messenger"))
    entry = message["entry"][0]
    entry["id"] = entry["messaging"][0]["recipient"]["id"] = "999999999999"
    entry["messaging"][0]["message"] = {"mid": "m_other_page", "text": text}
    return json.dumps(message).encode()


OURS_ON_X = "1450000000000000001"  # GBank Social's user_id in the example deployment
OTHER_ON_X = "1450000000000000002"


def x_dm_to_another_account(text: str) -> bytes:
    """A DM to another account subscribed to the same X app (its handle in `users`)."""
    message = json.loads(payload("x_dm"))
    dm = message["direct_message_events"][0]
    dm["message_create"]["target"]["recipient_id"] = OTHER_ON_X
    dm["message_create"]["message_data"]["text"] = text
    users = message["users"]
    users[OTHER_ON_X] = {**users.pop(OURS_ON_X), "id": OTHER_ON_X, "screen_name": "OtherBank"}
    return json.dumps(
        {**message, "for_user_id": OTHER_ON_X, "direct_message_events": [dm]}
    ).encode()


def x_mention_of_another_account(text: str) -> bytes:
    """A post mentioning another subscribed account: X names it by its numeric id only."""
    message = json.loads(payload("x_public"))
    post = message["tweet_create_events"][0]
    post |= {"text": text, "in_reply_to_user_id_str": None, "in_reply_to_screen_name": None}
    post["entities"]["user_mentions"] = []
    return json.dumps({**message, "for_user_id": OTHER_ON_X}).encode()


@pytest.mark.parametrize(
    ("channel", "body", "account"),
    [
        ("whatsapp", to_another_number("my card number is 4111", "wamid.other"), "+15550001111"),
        ("messenger", to_another_page("my card number is 4111"), "999999999999"),
        ("x_dm", x_dm_to_another_account("my card number is 4111"), OTHER_ON_X),
        ("x_public", x_mention_of_another_account("my card number is 4111"), OTHER_ON_X),
    ],
)
def test_an_event_for_another_account_is_kept_aside_and_never_processed(
    client: TestClient, settings: Settings, channel: str, body: bytes, account: str
) -> None:
    assert post(client, channel, body) == {"accepted": 0, "duplicates": 0, "dead_letters": 1}
    assert rows(settings.store, "SELECT count(*) FROM inbound")[0][0] == 0
    assert rows(settings.store, "SELECT count(*) FROM messages")[0][0] == 0
    [(source, kept, reason)] = rows(
        settings.store, "SELECT source, payload, reason FROM dead_letters"
    )
    assert source == f"payload:{channel}"
    assert f"an event for {channel} account '{account}'" in reason
    assert f"channels.{channel}.accounts" in reason
    assert "my card number is 4111" in kept  # kept whole, to replay once the deployment has it


def test_the_deployments_own_accounts_are_processed(client: TestClient, settings: Settings) -> None:
    ours = json.dumps(whatsapp_text("447700900556", "wamid.ours", "hello", at=datetime.now(UTC)))
    assert post(client, "whatsapp", ours.encode())["accepted"] == 1
    assert post(client, "messenger", payload("messenger"))["accepted"] == 1
    # X's by their numeric id, also where no event names the handle (a deletion)
    assert post(client, "x_dm", payload("x_dm"))["accepted"] == 1  # and the business's echo
    assert post(client, "x_public", PAYLOADS.joinpath("x/delete.json").read_bytes()) == {
        "accepted": 1,
        "duplicates": 0,
        "dead_letters": 0,
    }
    assert rows(
        settings.store, "SELECT count(*) FROM dead_letters WHERE source LIKE 'payload:%'"
    ) == [(0,)]


def test_a_number_matches_with_or_without_its_plus() -> None:
    assert account_key("+442079460000") == account_key("442079460000")
    assert account_key("+442079460000") != account_key("+15550001111")
    assert account_key("@GbankSocial") == account_key("gbanksocial")


def test_an_x_account_without_its_user_id_stops_the_service_at_start(
    settings: Settings, tmp_path: Path
) -> None:
    yaml = YAML()
    deployment = yaml.load(settings.deployment.read_text("utf-8"))
    del deployment["channels"]["x_dm"]["accounts"][0]["user_id"]
    with (tmp_path / "no_user_id.yaml").open("w", encoding="utf-8") as out:
        yaml.dump(deployment, out)
    changed = replace(settings, deployment=tmp_path / "no_user_id.yaml")
    with pytest.raises(ServiceConfigError, match=r"channels\.x_dm\.accounts\[0\] \(GBank Social\)"):
        create_app(changed)
