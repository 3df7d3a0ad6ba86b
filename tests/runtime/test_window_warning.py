"""`on window closing`: the flow's "still there?" an hour before the channel's reply window
closes (the registry's `warn_before_minutes`), from the engine's timer to the send, checked by
the channel's rules; moved by each customer message, once per window, kept across a restart,
and never sent once the window has closed."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from flowlang.acd import AgentProfile, SkillsAcd
from flowlang.channels.policy import ChannelPolicy
from flowlang.runtime.engine import Engine
from flowlang.runtime.memory import RecordingAdapter
from flowlang.runtime.ports import ConversationStore
from flowlang.store import SqliteStore
from tests.runtime.helpers import NOW, engine_of, program
from tests.runtime.test_engine import message

HEADER = """\
on window closing:
    reply "Are you still there? {{ window.remaining }} left."
    set conversation data "warned" to "yes"
"""
BODY = """\
ask "Your account number?" into account wait 48h:
    on answer:
        reply "Thanks"
    on timeout:
        end
"""


QUEUED = 'reply "Your account number?"\nroute to queue "Retail"\n'  # nobody is there
TWO_QUESTIONS = """\
ask "Your account number?" into account wait 48h:
    on answer:
        ask "And your name?" into name wait 48h:
            on answer:
                reply "Thanks"
            on timeout:
                end
    on timeout:
        end
"""


def _engine(
    store: ConversationStore | None = None, body: str = QUEUED
) -> tuple[Engine, RecordingAdapter]:
    sent = RecordingAdapter()
    parts = {"store": store} if store is not None else {}
    acd = SkillsAcd(agents=[AgentProfile("ana", frozenset({"Retail"}), state="away")])
    engine = engine_of(
        program(body, "var account: text = not set\nvar name: text = not set\n" + HEADER),
        adapters=[sent],
        acd=acd,
        policy=ChannelPolicy(),
        **parts,
    )
    return engine, sent


def _texts(sent: RecordingAdapter) -> list[str]:
    return [str(m.content.get("text")) for m in sent.sent]


def _at(hours: float) -> datetime:
    return NOW + timedelta(hours=hours)


def test_an_hour_before_the_whatsapp_window_closes_the_block_runs_and_sends() -> None:
    engine, sent = _engine(body=BODY)
    conversation = engine.handle(message("hi")).conversation_id or ""
    engine.advance(_at(22.99))
    assert _texts(sent) == ["Your account number?"]  # not yet
    engine.advance(_at(23))
    assert _texts(sent) == ["Your account number?", "Are you still there? 1:00:00 left."]
    conv = engine.store.get_conversation(conversation)
    assert conv is not None and conv.data["conversation.warned"] == "yes"
    # beside the flow's wait: the answer still reaches the `ask`
    engine.handle(message("12345678", at=timedelta(hours=23, minutes=30)))
    assert _texts(sent)[-1] == "Thanks"


def test_each_customer_message_moves_it_and_it_runs_once_per_window() -> None:
    engine, sent = _engine(body=TWO_QUESTIONS)
    engine.handle(message("hi"))
    engine.handle(message("still thinking", at=timedelta(hours=10)))  # the window now ends at 34h
    engine.advance(_at(32.9))
    assert not any(t.startswith("Are you still there") for t in _texts(sent))
    engine.advance(_at(33))
    engine.advance(_at(47))
    assert [t for t in _texts(sent) if t.startswith("Are you")] == [
        "Are you still there? 1:00:00 left."
    ]


def test_its_reply_is_checked_by_the_channel_rules_like_any_other() -> None:
    engine, sent = _engine()
    conversation = engine.handle(message("hi")).conversation_id or ""
    conv = engine.store.get_conversation(conversation)
    assert conv is not None
    # WhatsApp said the window is closed already (error 131047): only templates may go out
    assert ChannelPolicy().vendor_failed(conv, "131047", NOW + timedelta(hours=2))
    engine.store.save_conversation(conv)
    outcomes = engine.advance(_at(23))
    assert not any(t.startswith("Are you still there") for t in _texts(sent))
    held = [d for o in outcomes for d in o.deliveries if d.status != "sent"]
    assert [d.message.content["text"] for d in held] == ["Are you still there? 0:00:00 left."]


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


def test_a_warning_that_runs_after_the_window_closed_is_held_back_not_sent() -> None:
    """The engine was down from 22h to 25h: the warning due at 23h runs at 25h, outside the
    window, and the channel's rules hold its reply back."""
    sent = RecordingAdapter()
    clock = Clock(NOW)
    engine = engine_of(
        program(QUEUED, "var account: text = not set\n" + HEADER),
        adapters=[sent],
        acd=SkillsAcd(agents=[AgentProfile("ana", frozenset({"Retail"}), state="away")]),
        policy=ChannelPolicy(),
        clock=clock,
    )
    engine.handle(message("hi"))
    clock.at = _at(25)
    outcomes = engine.advance(_at(25))
    assert not any(t.startswith("Are you still there") for t in _texts(sent))
    held = [d for o in outcomes for d in o.deliveries if d.status != "sent"]
    assert held and str(held[0].message.content["text"]).startswith("Are you still there")


def test_a_channel_without_a_window_never_runs_it() -> None:
    engine, sent = _engine()
    engine.handle(message("hi", channel="web", sender="visitor-1"))
    engine.advance(_at(48))
    assert not any(t.startswith("Are you still there") for t in _texts(sent))


def test_the_warning_is_armed_again_after_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "cc.sqlite"
    with SqliteStore(path) as store:
        engine, _sent = _engine(store)
        engine.handle(message("hi"))
    with SqliteStore(path) as store:  # a new process
        engine, sent = _engine(store)
        engine.recover(_at(1))
        engine.advance(_at(23))
    assert _texts(sent) == ["Are you still there? 1:00:00 left."]
