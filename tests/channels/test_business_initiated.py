"""Business-initiated messages (`Engine.initiate`, `flowlang send`): allowed only where the
channel allows them, through the same policy and outbox as every send."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from flowlang.cli import main
from flowlang.errors import FlowError
from flowlang.events import InboundEvent
from flowlang.project import Project, load_project
from flowlang.runtime.engine import Engine, Outcome
from flowlang.runtime.initiate import InitiateError
from flowlang.runtime.memory import MemoryStore, RecordingAdapter
from flowlang.runtime.ports import OutboundMessage
from flowlang.store import open_store

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
MAIN, CARDS = "+442079460000", "+442079460001"
GBANK_SMS = "+447480000000"
DEPLOYMENT = f"""\
queues:
  Retail Banking: {{members: [alice]}}
agents:
  alice: {{name: Alice}}
channels:
  whatsapp:
    accounts:
      - {{name: GBank WhatsApp, id: "{MAIN}", queue: Retail Banking}}
      - {{name: GBank Cards, id: "{CARDS}", queue: Retail Banking}}
    portfolios:
      GBank: {{tier: 2, numbers: [GBank WhatsApp, GBank Cards]}}
  sms:
    accounts:
      - {{name: GBank SMS, id: "{GBANK_SMS}"}}
  messenger:
    accounts:
      - {{name: GBank, id: "104857362910"}}
templates:
  welcome:
    text: "Welcome to GBank, {{{{ customer.name or 'there' }}}}!"
  card_ready:
    text: "Hi {{{{ name }}}}, your card is ready."
    whatsapp: {{name: card_ready, language: en_GB, parameters: [name]}}
  offer:
    text: "A new offer"
    whatsapp: {{name: new_offer, category: MARKETING, status: PENDING}}
"""
FLOW = """\
flow "Replies"
serve messages on whatsapp
serve messages on sms

state start:
    reply "Thanks for your reply."
    end
"""


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "deployment.yaml").write_text(DEPLOYMENT, "utf-8")
    (tmp_path / "replies.flow").write_text(FLOW, "utf-8")
    return tmp_path / "replies.flow", tmp_path / "deployment.yaml"


@pytest.fixture
def project(files: tuple[Path, Path]) -> Project:
    loaded, ws = load_project(*files)
    assert loaded is not None, [d.message for d in ws.diagnostics]
    return loaded


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "memory":
        yield MemoryStore()
        return
    location = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    with open_store(location or tmp_path / "cc.db") as db:
        yield db


def statuses(outcome: Outcome) -> list[tuple[str, str]]:
    return [(d.status, d.reason_code) for d in outcome.deliveries]


def card_ready(engine: Engine, to: str, account: str = MAIN, at: datetime = T0) -> Outcome:
    return engine.initiate("whatsapp", account, to, "card_ready", at, {"name": "Ben"})


def test_an_approved_whatsapp_template_starts_a_conversation_the_reply_continues(
    project: Project, store: Any
) -> None:
    sent = RecordingAdapter()
    engine = project.engine(store=store, adapters=[sent])
    started = card_ready(engine, "447700900123")
    assert statuses(started) == [("sent", "business_initiated")]
    (message,) = sent.sent
    assert (message.sender, message.recipient, message.account) == (
        "business",
        "447700900123",
        MAIN,
    )
    assert message.content["whatsapp_name"] == "card_ready"
    assert message.content["parameters"] == {"name": "Ben"}

    reply = engine.handle(
        InboundEvent(
            event_id="wamid.1",
            channel="whatsapp",
            account=MAIN,
            sender_id="447700900123",
            sender_phone="447700900123",
            text="Great, thanks",
            timestamp=T0 + timedelta(hours=1),
        )
    )
    assert reply.conversation_id == started.conversation_id
    assert statuses(reply) == [("sent", "")]


def test_whatsapp_starts_only_with_an_approved_template(project: Project) -> None:
    engine = project.engine()
    text = engine.initiate("whatsapp", MAIN, "447700900123", "welcome", T0)
    assert statuses(text) == [("blocked", "template_required")]
    pending = engine.initiate("whatsapp", MAIN, "447700900124", "offer", T0)
    assert statuses(pending) == [("blocked", "template_not_approved")]
    assert "PENDING" in pending.deliveries[0].reason


@pytest.mark.parametrize(
    ("channel", "account", "to"),
    [("messenger", "104857362910", "2498"), ("web", "widget", "v1"), ("line", "L", "U" + "a" * 32)],
)
def test_channels_where_the_customer_must_write_first_block_it(
    project: Project, channel: str, account: str, to: str
) -> None:
    sent = RecordingAdapter()
    engine = project.engine(adapters=[sent])
    outcome = engine.initiate(channel, account, to, "welcome", T0)
    assert statuses(outcome) == [("blocked", "business_initiated_not_allowed")]
    assert "customer must write first" in outcome.deliveries[0].reason
    assert sent.sent == []
    conv = engine.store.get_conversation(outcome.conversation_id or "")
    assert conv is not None and conv.status == "closed"


def test_sms_reaches_a_number_that_has_not_opted_out_only(project: Project, store: Any) -> None:
    sent = RecordingAdapter()
    engine = project.engine(store=store, adapters=[sent])
    first = engine.initiate("sms", GBANK_SMS, "+447700900999", "welcome", T0)
    assert [d.status for d in first.deliveries] == ["sent"]
    assert sent.sent[0].content["text"] == "Welcome to GBank, there!"
    engine.handle(
        InboundEvent(
            event_id="SM1",
            channel="sms",
            account=GBANK_SMS,
            sender_id="+447700900999",
            sender_phone="+447700900999",
            text="STOP",
            timestamp=T0 + timedelta(minutes=1),
        )
    )
    again = engine.initiate("sms", GBANK_SMS, "+447700900999", "welcome", T0 + timedelta(days=5))
    assert statuses(again) == [("blocked", "opted_out")]
    assert len(sent.sent) == 1


def test_a_free_text_before_the_customer_answers_is_still_unsolicited(
    project: Project,
) -> None:
    engine = project.engine()
    started = card_ready(engine, "447700900123")
    conv = engine.store.get_conversation(started.conversation_id or "")
    assert conv is not None
    text = {"kind": "text", "text": "Hello!"}
    agent = OutboundMessage(conv.id, "whatsapp", MAIN, "447700900123", "agent", text)
    blocked = engine.policy.decide(agent, conv, T0 + timedelta(minutes=1))
    assert (blocked.status, blocked.reason_code) == ("blocked", "unsolicited")


def test_the_portfolio_limit_holds_across_numbers_processes_and_restarts(
    project: Project, durable_location: str | Path
) -> None:
    path = durable_location
    with open_store(path) as one, open_store(path) as two:
        first, second = project.engine(store=one), project.engine(store=two)
        assert statuses(card_ready(first, "447700900001")) == [("sent", "business_initiated")]
        assert statuses(card_ready(second, "447700900002", CARDS)) == [
            ("sent", "business_initiated")
        ]
        third = card_ready(first, "447700900003", CARDS)
        assert statuses(third) == [("blocked", "tier_limit_reached")]
        assert "GBank portfolio" in third.deliveries[0].reason
    with open_store(path) as restarted:
        engine = project.engine(store=restarted)
        assert statuses(card_ready(engine, "447700900003")) == [("blocked", "tier_limit_reached")]
        later = card_ready(engine, "447700900003", at=T0 + timedelta(hours=24))
        assert statuses(later) == [("sent", "business_initiated")]


def test_an_unknown_template_or_a_missing_parameter_is_refused_before_anything(
    project: Project,
) -> None:
    engine = project.engine()
    with pytest.raises(InitiateError, match="no template 'card_redy'"):
        engine.initiate("whatsapp", MAIN, "447700900123", "card_redy", T0)
    with pytest.raises(FlowError, match="no template 'card_redy'"):  # one root for hosts
        engine.initiate("whatsapp", MAIN, "447700900123", "card_redy", T0)
    with pytest.raises(InitiateError, match="needs the parameter"):
        engine.initiate("whatsapp", MAIN, "447700900123", "card_ready", T0)
    assert engine.store.get_conversation("conv1") is None


# ---------------------------------------------------------------- flowlang send


def send(files: tuple[Path, Path], *args: str) -> tuple[int, str]:
    _flow, deployment = files
    store = deployment.parent / "cc.db"
    result = CliRunner().invoke(main, ["send", "--store", str(store), "-d", str(deployment), *args])
    return result.exit_code, result.output


def test_send_a_whatsapp_template_from_the_command_line(files: tuple[Path, Path]) -> None:
    out_file = files[1].parent / "sent.jsonl"
    code, out = send(
        files,
        *("--channel", "whatsapp", "--to", "+44 7700 900123", "--from-account", "GBank Cards"),
        *("--template", "card_ready", "--param", "name=Ben", "--outbound", f"jsonl:{out_file}"),
    )
    assert code == 0, out
    assert out.startswith(f"allowed: whatsapp {CARDS} -> 447700900123, template 'card_ready'")
    (line,) = out_file.read_text().splitlines()
    body = json.loads(line)["send"]
    assert "template" in json.dumps(body)


@pytest.mark.parametrize("named", ["gbank cards", "GBANK CARDS", CARDS, CARDS.lstrip("+")])
def test_send_from_account_takes_any_name_the_engine_finds(
    files: tuple[Path, Path], named: str
) -> None:
    """`--from-account` finds the account as events do (`Account.is_named`): any case, the
    number with or without `+`; the send goes from that account's number."""
    code, out = send(
        files,
        *("--channel", "whatsapp", "--to", "+44 7700 900123", "--from-account", named),
        *("--template", "card_ready", "--param", "name=Ben"),
    )
    assert code == 0, out
    assert out.startswith(f"allowed: whatsapp {CARDS} -> 447700900123"), out


def test_send_waits_in_the_outbox_without_an_adapter_and_blocks_with_the_reason(
    files: tuple[Path, Path],
) -> None:
    code, out = send(files, "--channel", "sms", "--to", "+447700900999", "--template", "welcome")
    assert code == 0 and "1 message(s) wait in the outbox" in out
    code, out = send(files, "--channel", "messenger", "--to", "2498", "--template", "welcome")
    assert code == 1
    assert out.startswith("blocked (business_initiated_not_allowed): Facebook Messenger")
    assert "= help:" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--channel", "whatsap", "--to", "+447700900123"], "'whatsap' is not a channel"),
        (
            ["--channel", "whatsapp", "--to", "12", "--from-account", "GBank WhatsApp"],
            "'12' is not a phone number",
        ),
        (["--channel", "whatsapp", "--to", "+447700900123"], "say which whatsapp account"),
        (
            ["--channel", "sms", "--to", "+447700900123", "--from-account", "GBank SM"],
            "'GBank SM' is not a sms account",
        ),
        (
            ["--channel", "sms", "--to", "+447700900123", "--param", "name"],
            "'name': write NAME=VALUE",
        ),
    ],
)
def test_send_usage_errors_say_what_is_wrong(
    files: tuple[Path, Path], args: list[str], message: str
) -> None:
    code, out = send(files, *args, "--template", "welcome")
    assert code == 2 and message in out, out


def test_a_flows_template_outside_the_window_must_be_approved_too(project: Project) -> None:
    engine = project.engine()
    started = card_ready(engine, "447700900123")
    conv = engine.store.get_conversation(started.conversation_id or "")
    assert conv is not None
    conv.last_inbound_at = T0
    content = {"kind": "template", "name": "offer", "parameters": {}, "status": "PENDING"}
    flow = OutboundMessage(conv.id, "whatsapp", MAIN, "447700900123", "flow", content)
    blocked = engine.policy.decide(flow, conv, T0 + timedelta(days=2))
    assert (blocked.status, blocked.reason_code) == ("blocked", "template_not_approved")


def test_reports_show_who_a_business_initiated_conversation_is_with(project: Project) -> None:
    from flowlang.reporting.interactions import InteractionLog

    store = MemoryStore()
    engine = project.engine(store=store)
    allowed = card_ready(engine, "447700900123")
    blocked = engine.initiate("messenger", "104857362910", "2498", "welcome", T0)
    log = InteractionLog()
    for event in store.iter_events():
        log.apply(event)
    started = log.interactions[allowed.conversation_id or ""]
    assert (started.channel, started.customer, started.outcome) == ("whatsapp", "c1", "")
    refused = log.interactions[blocked.conversation_id or ""]
    assert refused.outcome == "not sent (business_initiated_not_allowed)"


# ------------------------------------------------ the recipient and the template's approval


@pytest.mark.parametrize("to", ["+44 (7700) 900-999", "+44.7700.900.999", "447700900999"])
def test_a_number_written_another_way_is_the_same_customer_and_recipient(
    project: Project, store: Any, to: str
) -> None:
    sent = RecordingAdapter()
    engine = project.engine(store=store, adapters=[sent])
    first = engine.initiate("sms", GBANK_SMS, "+447700900999", "welcome", T0)
    again = engine.initiate("sms", GBANK_SMS, to, "welcome", T0 + timedelta(minutes=5))
    assert [d.status for d in first.deliveries + again.deliveries] == ["sent", "sent"]
    assert [m.recipient for m in sent.sent] == ["+447700900999", "+447700900999"]
    assert again.conversation_id == first.conversation_id
    whatsapp = card_ready(engine, "+44 (7700) 900-999")
    assert sent.sent[-1].recipient == "447700900999"
    customers = {
        engine.store.get_conversation(o.conversation_id or "").customer_id  # type: ignore[union-attr]
        for o in (first, again, whatsapp)
    }
    assert len(customers) == 1


@pytest.mark.parametrize(("channel", "account"), [("sms", GBANK_SMS), ("whatsapp", MAIN)])
def test_a_number_that_cannot_be_read_is_refused_before_anything(
    project: Project, channel: str, account: str
) -> None:
    sent = RecordingAdapter()
    engine = project.engine(adapters=[sent])
    with pytest.raises(InitiateError, match="'call me' is not a phone number"):
        engine.initiate(channel, account, "call me", "card_ready", T0, {"name": "B"})
    assert sent.sent == []
    assert engine.store.get_conversation("conv1") is None


@pytest.mark.parametrize(
    ("content", "code"),
    [
        ({"kind": "template", "status": "APPROVED"}, "unknown_template"),
        ({"kind": "template", "name": "made_up", "status": "APPROVED"}, "unknown_template"),
        ({"kind": "template", "name": "offer", "status": "APPROVED"}, "template_not_approved"),
        ({"kind": "template", "name": "welcome", "status": "APPROVED"}, "unknown_template"),
    ],
)
def test_content_that_claims_to_be_an_approved_template_is_not_taken_at_its_word(
    project: Project, content: dict[str, Any], code: str
) -> None:
    engine = project.engine()
    started = card_ready(engine, "447700900123")
    conv = engine.store.get_conversation(started.conversation_id or "")
    assert conv is not None
    conv.last_inbound_at = T0
    for sender in ("agent", "flow"):
        claim = OutboundMessage(conv.id, "whatsapp", MAIN, "447700900123", sender, content)
        blocked = engine.policy.decide(claim, conv, T0 + timedelta(days=2))
        assert (blocked.status, blocked.reason_code) == ("blocked", code)
    declared = {"kind": "template", "name": "card_ready", "parameters": {"name": "B"}}
    agent = OutboundMessage(conv.id, "whatsapp", MAIN, "447700900123", "agent", declared)
    assert engine.policy.decide(agent, conv, T0 + timedelta(days=2)).status == "sent"


def test_a_business_initiated_send_takes_the_approval_from_the_deployment(
    project: Project,
) -> None:
    engine = project.engine()
    engine.program.templates["offer"].data["status"] = "APPROVED"  # what the content would say
    pending = engine.initiate("whatsapp", MAIN, "447700900124", "offer", T0)
    assert statuses(pending) == [("blocked", "template_not_approved")]
    assert "PENDING" in pending.deliveries[0].reason
