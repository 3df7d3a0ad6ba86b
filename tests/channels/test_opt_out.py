"""SMS opt-out belongs to the customer's number and the business number they wrote to, across
conversations and restarts, until they opt back in."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowlang.channels.policy import ChannelPolicy
from flowlang.channels.registry import builtin_registry
from flowlang.events import InboundEvent
from flowlang.project import Project, load_project
from flowlang.runtime.engine import Outcome
from flowlang.runtime.memory import MemoryStore, RecordingAdapter
from flowlang.runtime.ports import ConversationView, OutboundMessage
from flowlang.store import open_store

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
CUSTOMER = "+447700900999"
GBANK_SMS = "+447480000000"
REPLY = "Thanks, an agent will text you back."


@pytest.fixture
def project(tmp_path: Path) -> Project:
    flow = tmp_path / "sms.flow"
    flow.write_text(
        f'flow "SMS"\nserve messages on sms\n\nstate start:\n    reply "{REPLY}"\n    end\n',
        "utf-8",
    )
    loaded, ws = load_project(flow, ROOT / "examples" / "deployment.yaml")
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


def sms(text: str, at: timedelta, *, to: str = GBANK_SMS, sender: str = CUSTOMER) -> InboundEvent:
    return InboundEvent(
        event_id=f"{sender}-{to}-{at}-{text}",
        channel="sms",
        account=to,
        sender_id=sender,
        sender_phone=sender,
        text=text,
        timestamp=T0 + at,
    )


def replies(outcome: Outcome) -> list[tuple[str, str]]:
    return [(d.status, d.reason_code) for d in outcome.deliveries]


def test_stop_holds_for_the_same_number_in_a_new_conversation_days_later(
    project: Project, store: Any
) -> None:
    sent = RecordingAdapter()
    engine = project.engine(store=store, adapters=[sent])
    first = engine.handle(sms("My card is blocked", timedelta(0)))
    assert replies(first) == [("sent", "")]
    assert "opted out" in engine.handle(sms("STOP", timedelta(minutes=1))).note

    later = engine.handle(sms("Is my card working now?", timedelta(days=4)))
    assert later.conversation_id != first.conversation_id  # past the 72-hour threading window
    assert replies(later) == [("blocked", "opted_out")]
    assert "opted out" in later.deliveries[0].reason
    assert len(sent.sent) == 1

    assert engine.handle(sms("start", timedelta(days=4, minutes=1))).note.startswith(
        "the customer opted back in"
    )
    assert replies(engine.handle(sms("Hello again", timedelta(days=5)))) == [("sent", "")]
    assert len(sent.sent) == 2


def test_an_opt_out_is_per_business_number(project: Project, store: Any) -> None:
    engine = project.engine(store=store)
    engine.handle(sms("STOP", timedelta(0)))
    other = engine.handle(sms("Hi", timedelta(days=4), to="+447480000001"))
    assert replies(other) == [("sent", "")]
    stranger = engine.handle(sms("Hi", timedelta(days=4), sender="+447700900111"))
    assert replies(stranger) == [("sent", "")]


def test_an_opt_out_survives_a_restart_and_is_shared_by_processes(
    project: Project, durable_location: str | Path
) -> None:
    path = durable_location
    with open_store(path) as first_process:
        engine = project.engine(store=first_process)
        engine.handle(sms("Stop.", timedelta(0)))
        with open_store(path) as second_process:  # another process on the same file
            other = project.engine(store=second_process)
            assert replies(other.handle(sms("hello?", timedelta(hours=1)))) == [
                ("blocked", "opted_out")
            ]
    with open_store(path) as restarted:
        assert restarted.opt_outs()[0]["address"] == CUSTOMER
        engine = project.engine(store=restarted)
        assert replies(engine.handle(sms("hello?", timedelta(days=6)))) == [
            ("blocked", "opted_out")
        ]


@pytest.mark.parametrize(
    "word", ["STOP", "stop", " Unsubscribe ", "Stop.", "STOP!", "opt out", "Opt-Out", "ARRET"]
)
def test_the_words_carriers_honour_opt_out(word: str) -> None:
    policy = ChannelPolicy()
    assert policy.observe_inbound(_conv(), sms(word, timedelta(0)), T0) == ("opted_out", "")
    assert policy.opted_out("sms", GBANK_SMS, CUSTOMER)


@pytest.mark.parametrize("text", ["please stop the card", "stop it now", "STOPPED"])
def test_a_word_inside_a_sentence_is_not_an_opt_out(text: str) -> None:
    policy = ChannelPolicy()
    assert policy.observe_inbound(_conv(), sms(text, timedelta(0)), T0) is None
    assert not policy.opted_out("sms", GBANK_SMS, CUSTOMER)


def test_an_opt_in_word_from_a_customer_who_never_opted_out_runs_the_flow(
    project: Project,
) -> None:
    engine = project.engine()
    answered = engine.handle(sms("YES", timedelta(0)))
    assert answered.trace and replies(answered) == [("sent", "")]


def test_the_number_is_matched_however_it_is_written() -> None:
    policy = ChannelPolicy()
    policy.observe_inbound(_conv(), sms("STOP", timedelta(0), sender="447700900999"), T0)
    message = OutboundMessage("c1", "sms", "+44 7480 000000", CUSTOMER, "agent", {"text": "Hi"})
    assert policy.decide(message, _conv(), T0).reason_code == "opted_out"


def _conv() -> ConversationView:
    return ConversationView("c1", "cu1", "sms", GBANK_SMS, T0, T0, last_inbound_at=T0)


@pytest.mark.parametrize(
    "word",
    [
        "ＳＴＯＰ",
        "Stop?",
        "“STOP”",
        "'stop'",
        "STOP 🛑",
        "ST\u200bOP",
        "\u200fstop",
        "stop…",
        "(STOP)",
        "Arrêt",
    ],
)
def test_an_opt_out_word_as_a_phone_may_write_it_opts_out(word: str) -> None:
    policy = ChannelPolicy()
    assert policy.observe_inbound(_conv(), sms(word, timedelta(0)), T0) == ("opted_out", "")
    assert policy.opted_out("sms", GBANK_SMS, CUSTOMER)
    assert policy.observe_inbound(_conv(), sms("Ｓｔａｒｔ!", timedelta(1)), T0) == ("opted_in", "")


@pytest.mark.parametrize("to", ["+44 (7700) 900-999", "+44.7700.900.999", "+44 (0)7700 900999"])
def test_a_business_initiated_sms_to_an_opted_out_number_written_another_way_is_blocked(
    project: Project, store: Any, to: str
) -> None:
    sent = RecordingAdapter()
    engine = project.engine(store=store, adapters=[sent])
    engine.handle(sms("STOP", timedelta(0)))
    outcome = engine.initiate("sms", GBANK_SMS, to, "welcome", T0 + timedelta(days=1))
    assert replies(outcome) == [("blocked", "opted_out")]
    assert sent.sent == []


_OPT_OUT = sorted(builtin_registry()["sms"].opt_out)
_AROUND_WORD = st.text(
    st.sampled_from(list(" .,!?¡¿…'\"“”‘’()[]*-~🛑✋🙏😡\u200b\u200e\u200f\u00a0\u3000")),
    max_size=4,
)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(_OPT_OUT),
    st.lists(st.booleans(), min_size=12, max_size=12),
    _AROUND_WORD,
    _AROUND_WORD,
    st.booleans(),
)
def test_any_opt_out_word_however_a_phone_writes_it_opts_out_and_start_opts_back_in(
    word: str, upper: list[bool], before: str, after: str, wide: bool
) -> None:
    cased = "".join(c.upper() if up else c.lower() for c, up in zip(word, upper * 2, strict=False))
    if wide:  # a phone's full-width keyboard (Japanese, Chinese input)
        cased = "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in cased)
    policy = ChannelPolicy()
    stop = sms(before + cased + after, timedelta(0))
    assert policy.observe_inbound(_conv(), stop, T0) == ("opted_out", "")
    message = OutboundMessage("c1", "sms", GBANK_SMS, CUSTOMER, "agent", {"text": "Hi"})
    assert policy.decide(message, _conv(), T0).reason_code == "opted_out"
    start = sms(f"{before}start{after}", timedelta(1))
    assert policy.observe_inbound(_conv(), start, T0) == ("opted_in", "")
    assert policy.decide(message, _conv(), T0).status == "sent"
