"""The outbox: messages are delivered after the state that made them is saved.

A failed delivery keeps the flow's progress and is retried (in order, with growing waits) until
delivered or given up on as an `outbound:` dead letter; an event that fails sends nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from flowlang.channels.outbound import DeliveryError
from flowlang.events import BotEvent, EventKind
from flowlang.project import load_project
from flowlang.runtime.delivery import RetryPolicy, unsent_id
from flowlang.runtime.engine import Engine
from flowlang.runtime.memory import MemoryStore, RecordingAdapter, ScriptedDataActions
from flowlang.runtime.ports import DataResult, OutboundMessage
from flowlang.store import open_store
from tests.store.helpers import ROOT, T0, inbound

WELCOME = "Welcome to GBank! To help you faster, what is your account number?"
NOT_FOUND = "We could not find that account number, but an agent will help you."


class Flaky:
    """Fails the first `failures` sends with a connection error, then delivers."""

    def __init__(self, failures: int, error: Exception | None = None) -> None:
        self.failures = failures
        self.error = error or ConnectionError("the channel API is down")
        self.sent: list[OutboundMessage] = []

    def send(self, message: OutboundMessage) -> None:
        if self.failures:
            self.failures -= 1
            raise self.error
        self.sent.append(message)


def _engine(store: Any, adapter: Any, **parts: Any) -> Engine:
    project, ws = load_project(ROOT / "flows/messaging.flow", ROOT / "examples/deployment.yaml")
    assert project is not None, ws.diagnostics
    crm = ScriptedDataActions(
        {"CRM Lookup": DataResult("not_found"), "CRM Send Code": DataResult("not_found")}
    )
    return project.engine(store=store, data_actions=crm, adapters=[adapter], **parts)


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "memory":
        yield MemoryStore()
        return
    location = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    db = open_store(location or tmp_path / "s.db")
    yield db
    db.close()


def test_a_failed_delivery_keeps_the_flows_progress_and_is_retried_in_order(store: Any) -> None:
    channel = Flaky(failures=1)
    engine = _engine(store, channel)
    first = engine.handle(inbound("Hello", sender="web-1"))
    assert not first.dead_lettered and [d.status for d in first.deliveries] == ["sent"]
    (failed,) = first.failed_sends
    assert failed.attempts == 1 and failed.retry_at == T0 + timedelta(seconds=30)
    assert "ConnectionError: the channel API is down" in failed.reason
    conv = store.get_conversation(first.conversation_id)
    assert conv.flow_state["waiting"]["kind"] == "answer"  # the flow asked and waits

    # The customer answers before the retry: the flow goes on, its reply waits behind the first.
    second = engine.handle(inbound("12345678", 0.2, sender="web-1"))
    assert second.failed_sends == [] and channel.sent == []
    assert [p.message["content"]["text"] for p in store.pending_outbound()] == [WELCOME, NOT_FOUND]

    assert engine.advance(T0 + timedelta(seconds=29)) == [] and channel.sent == []
    engine.advance(T0 + timedelta(seconds=30))
    assert [m.content["text"] for m in channel.sent] == [WELCOME, NOT_FOUND]
    assert store.pending_outbound() == [] and store.dead_letters() == []


def test_each_failure_is_logged_and_the_last_attempt_becomes_a_dead_letter(store: Any) -> None:
    channel = Flaky(failures=99)
    engine = _engine(store, channel)
    engine.deliverer.retry = RetryPolicy(max_attempts=3, first_wait=timedelta(minutes=1))
    first = engine.handle(inbound("Hello", sender="web-2"))
    retries = [first.failed_sends[0].retry_at]
    for _ in range(2):
        (tick,) = engine.advance(retries[-1])
        retries.append(tick.failed_sends[0].retry_at)
    assert retries == [T0 + timedelta(minutes=1), T0 + timedelta(minutes=3), None]
    (letter,) = store.dead_letters()
    assert letter["source"] == "outbound:web" and letter["payload"]["content"]["text"] == WELCOME
    assert store.pending_outbound() == []
    events = store.events if isinstance(store, MemoryStore) else store.iter_events()
    failures = [e for e in events if e["kind"] == "delivery_failed"]
    assert [e["attempts"] for e in failures] == [1, 2, 3]
    assert failures[-1]["retry_at"] is None
    assert [e["given_up"] for e in failures] == [False, False, True]
    # the message given up on is kept as failed, with the reason (its history shows it)
    message_id = failures[-1]["message_id"]
    assert message_id and {e["message_id"] for e in failures} == {message_id}
    kept = store.sent_messages([message_id])[message_id]
    assert kept.status == "failed" and kept.error == "the channel API is down"
    assert kept.vendor_id == unsent_id(message_id)

    recorder = RecordingAdapter()
    engine.adapters = [recorder]
    resent = engine.resend(letter["payload"], T0 + timedelta(hours=1))
    assert resent.failed_sends == [] and [m.content["text"] for m in recorder.sent] == [WELCOME]


def test_a_permanent_refusal_is_not_retried(store: Any) -> None:
    refused = DeliveryError("HTTP 400 Bad Request", permanent=True, status=400)
    engine = _engine(store, Flaky(failures=1, error=refused))
    (failed,) = engine.handle(inbound("Hello", sender="web-3")).failed_sends
    assert failed.retry_at is None and "HTTP 400" in failed.reason
    assert [letter["source"] for letter in store.dead_letters()] == ["outbound:web"]
    kept = store.sent_messages([failed.message.message_id])
    assert kept[failed.message.message_id].status == "failed"
    assert kept[failed.message.message_id].error == "HTTP 400 Bad Request"


def test_a_failure_to_be_retried_is_not_recorded_as_failed(store: Any) -> None:
    engine = _engine(store, Flaky(failures=1))
    (failed,) = engine.handle(inbound("Hello", sender="web-5")).failed_sends
    assert failed.retry_at is not None
    assert store.sent_messages([failed.message.message_id]) == {}


def test_an_event_that_fails_sends_nothing_it_had_queued(store: Any) -> None:
    class BrokenBots:
        def start(self, *_args: object) -> None:
            raise ConnectionError("the bot platform is down")

    recorder = RecordingAdapter()
    engine = _engine(store, recorder, bots=BrokenBots())
    engine.handle(inbound("Hello", sender="web-4"))
    # The answer makes the flow reply "not found", then hand off to the bot, which fails.
    answer = engine.handle(inbound("12345678", 1, sender="web-4"))
    assert answer.dead_lettered and "the bot platform is down" in answer.note
    assert [m.content["text"] for m in recorder.sent] == [WELCOME]
    assert store.pending_outbound() == []


def test_messages_committed_before_a_crash_are_delivered_on_recovery(
    durable_location: str | Path,
) -> None:
    class Dies:
        def send(self, message: OutboundMessage) -> None:
            raise KeyboardInterrupt  # the process stops after the commit, before delivering

    store = open_store(durable_location)
    with pytest.raises(KeyboardInterrupt):
        _engine(store, Dies()).handle(inbound("Hello", sender="web-5"))
    store.close()

    store = open_store(durable_location)
    recorder = RecordingAdapter()
    assert _engine(store, recorder).recover(T0 + timedelta(minutes=1)) == []
    assert [m.content["text"] for m in recorder.sent] == [WELCOME]
    assert store.pending_outbound() == []
    store.close()


def test_a_resumed_flows_reply_goes_through_the_outbox_too(store: Any) -> None:
    """The bot's escalation resumes the flow; its reply is delivered after that event commits."""
    channel = Flaky(failures=0)
    engine = _engine(store, channel)
    start = engine.handle(inbound("Hello", sender="web-6"))
    engine.handle(inbound("12345678", 1, sender="web-6"))
    escalated = engine.handle(
        BotEvent(
            event_id="b1",
            conversation_id=start.conversation_id,
            outcome="escalate",
            intent="fees",
            timestamp=T0 + timedelta(minutes=2),
        )
    )
    assert escalated.failed_sends == []
    assert channel.sent[-1].content["text"].startswith("Thanks")
    assert store.get_conversation(start.conversation_id).status in ("queued", "with_agent")


def test_delivered_messages_leave_the_outbox_file_when_it_is_closed(
    durable_location: str | Path,
) -> None:
    store = open_store(durable_location)
    recorder = RecordingAdapter()
    _engine(store, recorder).handle(inbound("Hello", sender="web-7"))
    assert len(recorder.sent) == 1 and store.pending_outbound() == []
    store.close()
    reopened = open_store(durable_location)
    assert reopened.pending_outbound() == []
    reopened.close()


def test_a_retry_goes_only_to_the_adapters_that_failed(store: Any) -> None:
    archive, channel = RecordingAdapter(), Flaky(failures=1)
    engine = _engine(store, archive)
    engine.adapters = [archive, channel]
    (failed,) = engine.handle(inbound("Hello", sender="web-8")).failed_sends
    assert [p.delivered_to for p in store.pending_outbound()] == [["recording"]]
    engine.advance(failed.retry_at)
    assert [m.content["text"] for m in archive.sent] == [WELCOME]  # not archived twice
    assert [m.content["text"] for m in channel.sent] == [WELCOME]
    assert store.pending_outbound() == []


def test_a_resent_dead_letter_skips_the_adapters_that_took_it(store: Any) -> None:
    archive = RecordingAdapter()
    refused = DeliveryError("HTTP 400 Bad Request", permanent=True, status=400)
    engine = _engine(store, archive)
    engine.adapters = [archive, Flaky(failures=1, error=refused)]
    engine.handle(inbound("Hello", sender="web-9"))
    (letter,) = store.dead_letters()
    assert letter["payload"]["delivered_to"] == ["recording"]

    channel = Flaky(failures=0)
    engine.adapters = [archive, channel]
    assert engine.resend(letter["payload"], T0 + timedelta(hours=1)).failed_sends == []
    assert len(archive.sent) == 1 and [m.content["text"] for m in channel.sent] == [WELCOME]


def test_adapters_are_named_by_their_name_else_their_class_numbered_when_repeated() -> None:
    from flowlang.channels.outbound import HttpAdapter, JsonLinesAdapter
    from flowlang.runtime.delivery import adapter_names

    adapters = [
        RecordingAdapter(),
        Flaky(0),
        Flaky(0),
        JsonLinesAdapter("out.jsonl"),
        HttpAdapter("https://host/out"),
    ]
    assert adapter_names(adapters) == [
        "recording",
        "Flaky",
        "Flaky#2",
        "jsonl:out.jsonl",
        "http:https://host/out",
    ]


@pytest.mark.parametrize(
    ("channel", "sender", "account", "between", "code"),
    [
        # the WhatsApp window closed while the message waited
        ("whatsapp", "447700900123", "+442079460000", [], "window_closed_template_required"),
        # the customer opted out while it waited
        ("sms", "+447700900999", "+447480000000", ["STOP"], "opted_out"),
    ],
)
def test_a_resend_goes_through_the_channel_policy_again(
    store: Any, channel: str, sender: str, account: str, between: list[str], code: str
) -> None:
    refused = DeliveryError("HTTP 503 five times", permanent=True, status=503)
    engine = _engine(store, Flaky(failures=1, error=refused))
    first = engine.handle(
        inbound("Hello", channel=channel, account=account, sender=sender, phone=sender)
    )
    assert [d.status for d in first.deliveries] == ["sent"] and first.failed_sends
    (letter,) = store.dead_letters()
    for n, text in enumerate(between, 1):
        engine.handle(
            inbound(text, n, channel=channel, account=account, sender=sender, phone=sender)
        )
    recorder = RecordingAdapter()
    engine.adapters = [recorder]
    resent = engine.resend(letter["payload"], T0 + timedelta(hours=25))
    assert [(d.status, d.reason_code) for d in resent.deliveries] == [("blocked", code)]
    assert recorder.sent == [] and store.pending_outbound() == []
    events = store.events if isinstance(store, MemoryStore) else store.iter_events()
    blocked = [e for e in events if e["kind"] == "blocked" and e["step"] == "resend"]
    assert [e["reason_code"] for e in blocked] == [code]


def test_a_resend_is_not_counted_as_a_second_reply(store: Any) -> None:
    """X allows one reply per public post: the resend of that reply is the same reply."""
    refused = DeliveryError("HTTP 503", permanent=True, status=503)
    engine = _engine(store, Flaky(failures=1, error=refused))
    post = inbound("@GbankSocial my card fee?", channel="x_public", account="@GbankSocial")
    engine.handle(post.model_copy(update={"kind": EventKind.POST, "post_id": "t1"}))
    letters = [x for x in store.dead_letters() if x["source"] == "outbound:x_public"]
    assert letters, store.dead_letters()
    recorder = RecordingAdapter()
    engine.adapters = [recorder]
    resent = engine.resend(letters[0]["payload"], T0 + timedelta(minutes=5))
    assert [d.status for d in resent.deliveries] == ["sent"]
    assert len(recorder.sent) == 1
