"""Real sending through the outbox: the senders a deployment's connections assemble, retried
with one idempotency key and the vendor's Retry-After, given up into the dead letters, and
`flowlang replay` sending a dead letter exactly once."""

from __future__ import annotations

import functools
import io
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from flowlang.channels.inbound import normalise
from flowlang.channels.policy import address_key
from flowlang.channels.registry import builtin_registry
from flowlang.channels.senders import (
    Credentials,
    SenderSetupError,
    VendorSender,
    VendorSenders,
    senders_for,
)
from flowlang.cli import main
from flowlang.config import load_deployment, load_deployment_text
from flowlang.config.models import Deployment
from flowlang.project import load_project, sending_project
from flowlang.runtime.delivery import RetryPolicy
from flowlang.runtime.engine import Engine
from flowlang.runtime.memory import MemoryStore
from flowlang.runtime.ports import OutboundMessage
from flowlang.store import SqliteStore
from tests.channels.helpers import DEPLOYMENT, PAYLOADS, ROOT
from tests.fake_vendor import FakeVendor, Reply

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CUSTOMER = "+447700900123"


def _deployment_file(tmp_path: Path, vendor: FakeVendor) -> Path:
    """The example deployment, WhatsApp sent to `vendor` with the token in WA_TOKEN."""
    yaml = YAML()
    data: Any = yaml.load(DEPLOYMENT.read_text("utf-8"))
    data["channels"]["whatsapp"]["connection"] = {
        "access_token_env": "WA_TOKEN",
        "api_base": vendor.base_url,
    }
    out = io.StringIO()
    yaml.dump(data, out)
    path = tmp_path / "deployment.yaml"
    path.write_text(out.getvalue(), "utf-8")
    return path


@pytest.fixture
def deployment(
    tmp_path: Path, fake_vendor: FakeVendor, monkeypatch: pytest.MonkeyPatch
) -> Deployment:
    monkeypatch.setenv("WA_TOKEN", "wa-secret")
    return _load(_deployment_file(tmp_path, fake_vendor))


def _load(path: Path) -> Deployment:
    loaded, problems = load_deployment(path)
    assert loaded is not None, [p.message for p in problems]
    return loaded


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    db = SqliteStore(tmp_path / "cc.sqlite")
    yield db
    db.close()


def _engine(deployment: Deployment, store: SqliteStore) -> tuple[Engine, VendorSenders]:
    senders = senders_for(deployment, channels=["whatsapp"])
    return sending_project(deployment).engine(store=store, adapters=[senders]), senders


def _initiate(engine: Engine) -> None:
    outcome = engine.initiate(
        "whatsapp",
        address_key("+442079460000"),
        CUSTOMER.lstrip("+"),
        "whatsapp_followup",
        T0,
        {"name": "Ben"},
        CUSTOMER,
    )
    assert [d.status for d in outcome.deliveries] == ["sent"]


def test_a_retry_waits_for_retry_after_and_repeats_the_idempotency_key(
    deployment: Deployment, store: SqliteStore, fake_vendor: FakeVendor
) -> None:
    engine, senders = _engine(deployment, store)
    fake_vendor.script(Reply.retry_after(120, status=503), Reply.error(500))
    _initiate(engine)  # attempt 1: 503, Retry-After: 120 (the outbox's own first wait is 30 s)
    assert store.pending_outbound()[0].next_attempt_at == T0 + timedelta(seconds=120)
    engine.deliver_pending(T0 + timedelta(seconds=60))
    assert len(fake_vendor.requests) == 1  # not before the vendor said
    engine.deliver_pending(T0 + timedelta(seconds=120))  # attempt 2: 500, no Retry-After
    assert store.pending_outbound()[0].next_attempt_at == T0 + timedelta(seconds=180)
    engine.deliver_pending(T0 + timedelta(seconds=180))  # attempt 3: delivered
    senders.close()
    assert store.pending_outbound() == []
    assert store.dead_letters() == []
    keys = {r.headers["idempotency-key"] for r in fake_vendor.requests}
    assert len(fake_vendor.requests) == 3 and len(keys) == 1
    body = fake_vendor.requests[-1].json()
    assert fake_vendor.requests[-1].path == "/106540352242922/messages"
    assert body["to"] == "447700900123"
    assert body["template"]["name"] == "request_follow_up"


def test_a_permanent_vendor_error_is_a_dead_letter_with_its_reason_not_retried(
    deployment: Deployment, store: SqliteStore, fake_vendor: FakeVendor
) -> None:
    engine, senders = _engine(deployment, store)
    undeliverable = {"error": {"message": "Message undeliverable.", "code": 131026}}
    fake_vendor.script(Reply.error(400, undeliverable))
    _initiate(engine)
    engine.deliver_pending(None)  # nothing left to retry
    senders.close()
    assert len(fake_vendor.requests) == 1
    (letter,) = store.dead_letters()
    assert letter["source"] == "outbound:whatsapp"
    assert "error 131026 (message undeliverable" in letter["reason"]
    assert store.pending_outbound() == []


def test_given_up_then_replayed_sends_exactly_once(
    tmp_path: Path,
    deployment: Deployment,
    store: SqliteStore,
    fake_vendor: FakeVendor,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine, senders = _engine(deployment, store)
    fake_vendor.default = Reply.error(500, "down")
    _initiate(engine)
    for _ in range(4):  # the outbox's 5 attempts in all
        engine.deliver_pending(None)
    senders.close()
    (letter,) = store.dead_letters()
    assert len(fake_vendor.requests) == 5 and store.pending_outbound() == []
    store.close()
    fake_vendor.default = Reply()
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(
        main,
        [
            "replay",
            "flows/messaging.flow",
            "--store",
            str(tmp_path / "cc.sqlite"),
            "-d",
            str(tmp_path / "deployment.yaml"),
            "--id",
            str(letter["id"]),
            "--outbound",
            "vendor",
        ],
    )
    assert result.exit_code == 0, result.output
    assert f"#{letter['id']}: delivered" in result.output
    assert len(fake_vendor.requests) == 6  # one more: the replay, once
    assert {r.headers["idempotency-key"] for r in fake_vendor.requests[-2:]} == {
        fake_vendor.requests[0].headers["idempotency-key"]
    }


def test_flowlang_send_through_the_vendor(
    tmp_path: Path, fake_vendor: FakeVendor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WA_TOKEN", "wa-secret")
    path = _deployment_file(tmp_path, fake_vendor)
    args = ["send", "--store", str(tmp_path / "s.sqlite"), "-d", str(path), "--channel"]
    args += ["whatsapp", "--to", CUSTOMER, "--template", "whatsapp_followup"]
    result = CliRunner().invoke(main, [*args, "--param", "name=Ben", "--outbound", "vendor"])
    assert result.exit_code == 0, result.output
    (request,) = fake_vendor.requests
    assert request.headers["authorization"] == "Bearer wa-secret"
    assert request.json()["template"]["components"][0]["parameters"] == [
        {"type": "text", "text": "Ben"}
    ]


def test_a_missing_token_names_the_channel_and_the_variable(
    tmp_path: Path, fake_vendor: FakeVendor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WA_TOKEN", raising=False)
    loaded = _load(_deployment_file(tmp_path, fake_vendor))
    with pytest.raises(SenderSetupError) as refused:
        senders_for(loaded, {}, channels=["whatsapp", "sms"])
    problems = str(refused.value)
    assert "channels.whatsapp.connection.access_token_env: the environment variable WA_TOKEN" in (
        problems
    )
    assert "channels.sms.connection: missing" in problems
    result = CliRunner().invoke(
        main,
        [
            "send", "--store", str(tmp_path / "s.sqlite"), "-d", str(tmp_path / "deployment.yaml"),
            "--channel", "whatsapp", "--to", CUSTOMER, "--template", "whatsapp_followup",
            "--param", "name=Ben", "--outbound", "vendor",
        ],
    )  # fmt: skip
    assert result.exit_code == 2 and "WA_TOKEN is not set" in result.output
    assert fake_vendor.requests == []


def test_a_whatsapp_account_without_its_phone_number_id_is_named(
    tmp_path: Path, fake_vendor: FakeVendor
) -> None:
    path = _deployment_file(tmp_path, fake_vendor)
    text = path.read_text("utf-8")
    path.write_text(re.sub(r" phone_number_id: ['\"]106540352242922['\"],", "", text))
    assert "106540352242922" not in path.read_text("utf-8")
    loaded = _load(path)
    with pytest.raises(SenderSetupError, match=r"accounts\[GBank WhatsApp\]\.phone_number_id"):
        senders_for(loaded, {"WA_TOKEN": "t"}, channels=["whatsapp"])


def test_twilio_takes_its_auth_token_from_the_signing_secret(fake_vendor: FakeVendor) -> None:
    text = DEPLOYMENT.read_text("utf-8").replace(
        "  sms:\n    accounts:\n",
        "  sms:\n    connection: {signing_secret_env: TW_AUTH, account_sid_env: TW_SID, "
        f"api_base: '{fake_vendor.base_url}'}}\n    accounts:\n",
        1,
    )
    loaded, problems = load_deployment_text(text, "deployment.yaml")
    assert loaded is not None, [p.message for p in problems]
    senders = senders_for(loaded, {"TW_AUTH": "auth", "TW_SID": "AC9"}, channels=["sms"])
    message = OutboundMessage("c", "sms", "+447480000000", CUSTOMER, "agent", {"text": "Hi"})
    senders.send(message)
    senders.close()
    assert fake_vendor.requests[0].path == "/2010-04-01/Accounts/AC9/Messages.json"


def test_a_channel_without_a_sender_is_kept_not_dropped(fake_vendor: FakeVendor) -> None:
    senders = VendorSenders({})
    message = OutboundMessage("c", "web", "w", "guest", "agent", {"text": "Hi"})
    with pytest.raises(Exception, match="no sender for web") as refused:
        senders.send(message)
    assert getattr(refused.value, "permanent", False)


def test_a_private_reply_on_a_comment_goes_to_the_send_api_never_under_the_comment(
    tmp_path: Path, fake_vendor: FakeVendor
) -> None:
    base = fake_vendor.base_url
    connection = f"    connection: {{access_token_env: PAGE_TOKEN, api_base: '{base}'}}\n"
    text = DEPLOYMENT.read_text("utf-8")
    for channel in ("messenger", "facebook_page"):
        text = text.replace(f"  {channel}:\n", f"  {channel}:\n{connection}", 1)
    (tmp_path / "deployment.yaml").write_text(text, "utf-8")
    (tmp_path / "public.flow").write_text(PRIVATE_FLOW, "utf-8")
    project, ws = load_project(tmp_path / "public.flow", tmp_path / "deployment.yaml")
    assert project is not None and project.deployment is not None, ws.diagnostics
    senders = senders_for(project.deployment, {"PAGE_TOKEN": "page-token"})
    engine = project.engine(adapters=[senders])
    (comment,) = normalise(
        "facebook_page", (PAYLOADS / "facebook_page/comment.json").read_bytes(), received_at=T0
    )
    outcome = engine.handle(comment)
    senders.close()
    assert [d.reason_code for d in outcome.deliveries] == ["private_reply"]
    (request,) = fake_vendor.requests
    assert request.path == "/104857362910/messages"
    assert request.json()["recipient"] == {"comment_id": "987654321_1122334455"}
    assert request.headers["authorization"] == "Bearer page-token"
    assert not any(r.path.endswith("/comments") for r in fake_vendor.requests)


PRIVATE_FLOW = """flow "Public"
serve posts and comments on facebook_page page "GBank"

state start:
    reply privately "Hi {{ customer.name or 'there' }}, which account is it about?"
    route to queue "Social Public"
"""


# ---------------------------------------------------------------- property: retries
VENDOR_NOW = 1_800_000_000.0
TRANSIENT = st.one_of(
    st.just(("status", 0)),
    st.tuples(st.just("seconds"), st.integers(1, 7200)),
    st.tuples(st.just("date"), st.integers(1, 7200)),
    st.just(("rate_code", 0)),
)


def _answer(kind: str, wait: int) -> Reply:
    if kind == "seconds":
        return Reply.retry_after(wait)
    if kind == "date":
        when = datetime.fromtimestamp(VENDOR_NOW + wait, UTC)
        return Reply.retry_after(format_datetime(when, usegmt=True), status=503)
    if kind == "rate_code":
        return Reply.error(400, {"error": {"message": "(#130429) Rate limit hit", "code": 130429}})
    return Reply.error(500, "down")


@functools.cache
def _example_deployment() -> Deployment:
    return _load(DEPLOYMENT)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(failures=st.lists(TRANSIENT, max_size=4))
def test_any_run_of_transient_failures_then_success_delivers_once_with_one_key(
    failures: list[tuple[str, int]],
) -> None:
    with FakeVendor() as vendor:
        loaded = _example_deployment()
        sender = VendorSender(
            builtin_registry()["whatsapp"],
            Credentials("t"),
            api_base=vendor.base_url,
            phone_number_ids={"+442079460000": "106540352242922"},
            clock=lambda: VENDOR_NOW,
        )
        store = MemoryStore()
        engine = sending_project(loaded).engine(
            store=store, adapters=[VendorSenders({"whatsapp": sender})]
        )
        vendor.script(*(_answer(kind, wait) for kind, wait in failures))
        _initiate(engine)
        at = T0
        for attempt, (kind, wait) in enumerate(failures, start=1):
            told = kind in ("seconds", "date")
            at += timedelta(seconds=wait) if told else RetryPolicy().wait_after(attempt)
            assert store.pending_outbound()[0].next_attempt_at == at
            engine.deliver_pending(at - timedelta(seconds=1))
            assert len(vendor.requests) == attempt  # never before the wait
            engine.deliver_pending(at)
        sender.client.close()
        assert store.pending_outbound() == [] and store.dead_letters() == []
        assert len(vendor.requests) == len(failures) + 1
        assert len({r.headers["idempotency-key"] for r in vendor.requests}) == 1
