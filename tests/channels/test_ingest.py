"""Webhook requests end to end: signatures, normalising, dead letters for unreadable payloads."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from flowlang.channels.ingest import ingest
from flowlang.channels.signatures import (
    SignatureError,
    expected_signature,
    twilio_signature,
    verify,
    x_crc_response,
)
from flowlang.cli import main
from flowlang.project import load_project
from flowlang.store import SqliteStore

ROOT = Path(__file__).resolve().parents[2]
PAYLOADS = ROOT / "examples" / "payloads"
SECRET = "app-secret-123"


@pytest.mark.parametrize(
    ("channel", "header"),
    [
        ("whatsapp", "X-Hub-Signature-256"),
        ("facebook_page", "x-hub-signature-256"),
        ("line", "X-Line-Signature"),
        ("x_dm", "X-Twitter-Webhooks-Signature"),
    ],
)
def test_a_signed_body_passes_and_a_changed_body_or_missing_header_fails(
    channel: str, header: str
) -> None:
    body = b'{"object": "page", "entry": []}'
    good = expected_signature(channel, body, SECRET)
    verify(channel, body, {header: good}, SECRET)
    with pytest.raises(SignatureError, match="does not match the body"):
        verify(channel, body + b" ", {header: good}, SECRET)
    with pytest.raises(SignatureError, match="does not match the body"):
        verify(channel, body, {header: good}, "another-secret")
    with pytest.raises(SignatureError, match="without its"):
        verify(channel, body, {}, SECRET)


def test_signature_formats_are_the_channels_own() -> None:
    body = b"{}"
    assert expected_signature("whatsapp", body, SECRET).startswith("sha256=")
    assert len(expected_signature("whatsapp", body, SECRET)) == len("sha256=") + 64  # hex
    assert expected_signature("line", body, SECRET).endswith("=")  # base64 of 32 bytes
    assert x_crc_response("challenge", SECRET)["response_token"].startswith("sha256=")
    # the web widget's backend signs like Meta, under a header of its own
    assert expected_signature("web", body, SECRET) == expected_signature("whatsapp", body, SECRET)
    with pytest.raises(SignatureError, match="telegram does not sign"):
        expected_signature("telegram", body, SECRET)


def test_twilio_signs_the_url_and_the_sorted_form_fields() -> None:
    url = "https://cc.example/sms"
    params = {"From": "+447700900456", "Body": "Hi", "MessageSid": "SM1"}
    signature = twilio_signature(url, params, SECRET)
    assert signature == twilio_signature(url, dict(reversed(list(params.items()))), SECRET)
    assert signature != twilio_signature(url + "?x=1", params, SECRET)
    form = "MessageSid=SM1&From=%2B447700900456&Body=Hi"
    verify("sms", form.encode(), {"X-Twilio-Signature": signature}, SECRET, url=url, params=params)


def _engine(store: SqliteStore):  # type: ignore[no-untyped-def]
    project, _ = load_project(ROOT / "flows/messaging.flow", ROOT / "examples/deployment.yaml")
    assert project is not None
    return project.engine(store=store)


def test_ingest_checks_the_signature_before_anything_is_kept(tmp_path: Path) -> None:
    body = (PAYLOADS / "whatsapp/text.json").read_bytes()
    with SqliteStore(tmp_path / "s.db") as store:
        engine = _engine(store)
        with pytest.raises(SignatureError):
            ingest(
                engine,
                "whatsapp",
                body,
                headers={"X-Hub-Signature-256": "sha256=00"},
                secret=SECRET,
            )
        assert (
            store.dead_letters() == [] and store.find_customer("whatsapp", "447700900123") is None
        )
        signed = {"X-Hub-Signature-256": expected_signature("whatsapp", body, SECRET)}
        result = ingest(engine, "whatsapp", body, headers=signed, secret=SECRET)
        assert result.error is None and len(result.outcomes) == 1
        again = ingest(engine, "whatsapp", body, headers=signed, secret=SECRET)
        assert again.outcomes[0].duplicate  # the channel's retry is not processed twice


def test_an_unreadable_payload_is_kept_and_replays_after_the_fix(tmp_path: Path) -> None:
    good = json.loads((PAYLOADS / "web/message.json").read_text())
    broken = dict(good, timestamp="yesterday")
    store_path = tmp_path / "s.db"
    with SqliteStore(store_path) as store:
        result = ingest(_engine(store), "web", json.dumps(broken))
        assert result.error == "web payload: timestamp: expected an ISO 8601 time, got 'yesterday'"
        (letter,) = store.dead_letters()
        assert letter["source"] == "payload:web" and json.loads(letter["payload"]["body"]) == broken
        # The "fix": here, the sender's payload is corrected in the kept letter.
        fixed = dict(letter["payload"], body=json.dumps(good))
        store.db.execute(
            "UPDATE dead_letters SET payload = ? WHERE id = ?",
            (json.dumps(fixed), letter["id"]),
        )
    runner = CliRunner()
    out = runner.invoke(
        main,
        [
            "replay",
            "--store",
            str(store_path),
            str(ROOT / "flows/messaging.flow"),
            "-d",
            str(ROOT / "examples/deployment.yaml"),
            "--all",
        ],
    )
    assert out.exit_code == 0, out.output
    assert "#1: replayed, 1 event(s)" in out.output
    with SqliteStore(store_path) as store:
        customer = store.find_customer("web", "web-visitor-5c1d")
        assert customer is not None
        texts = [m["content"].get("text") for m in store.history(customer.id).messages]
        assert texts[0] == "Hello, I'd like to open an account"


def test_a_payload_that_fails_again_on_replay_gets_a_new_letter(tmp_path: Path) -> None:
    store_path = tmp_path / "s.db"
    with SqliteStore(store_path) as store:
        ingest(_engine(store), "line", b"[]", received_at=datetime(2026, 1, 5, tzinfo=UTC))
    out = CliRunner().invoke(
        main,
        ["replay", "--store", str(store_path), str(ROOT / "flows/messaging.flow"), "--all"],
    )
    assert out.exit_code == 1
    assert (
        "#1: failed again, kept as a new dead letter: line payload: (body): expected a JSON object"
        in out.output
    )
    with SqliteStore(store_path) as store:
        assert [d["id"] for d in store.dead_letters()] == [2]
