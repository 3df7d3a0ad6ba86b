"""What the agents' live streams cost the engine's thread: the feed turns the log's events into
stream events after each commit, outside any transaction, so every conversation it reads is a
round trip of its own on PostgreSQL. A customer's message in a conversation no agent has reads
nothing; an offer or an assignment reads its conversation once (docs/scaling.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast

from flowlang.acd import SkillsAcd
from flowlang.acd.model import Interaction
from flowlang.service.stream import AgentFeed

AT = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
CONVERSATION = SimpleNamespace(
    id="conv1",
    channel="whatsapp",
    account="+442079460000",
    customer_id="c1",
    queue="Retail Banking",
    status="with_agent",
    agent="frank",
)


class Reads:
    """The store as the feed reads it: one conversation, one message; what was asked."""

    def __init__(self, conversation: SimpleNamespace) -> None:
        self.conversation = conversation
        self.asked: list[str] = []

    def get_conversation(self, conv_id: str) -> Any:
        self.asked.append(conv_id)
        return self.conversation if conv_id == self.conversation.id else None

    def history(self, customer_id: str, limit: int) -> Any:
        message = {"seq": 7, "content": {"text": "Are you there?"}, "at": AT}
        return SimpleNamespace(messages=[message])


def feed_of(
    acd: SkillsAcd, conversation: SimpleNamespace = CONVERSATION
) -> tuple[AgentFeed, Reads]:
    reads = Reads(conversation)
    policy = SimpleNamespace(window_closes_at=lambda conv: AT + timedelta(hours=24))
    engine = SimpleNamespace(store=reads, acd=acd, policy=policy)
    return AgentFeed(cast(Any, engine), cast(Any, reads)), reads


def message_in(conv_id: str) -> dict[str, Any]:
    return {"kind": "message_in", "at": AT, "conversation_id": conv_id, "channel": "whatsapp"}


def test_a_message_in_a_conversation_no_agent_has_reads_nothing() -> None:
    queued = SimpleNamespace(**{**vars(CONVERSATION), "status": "queued", "agent": None})
    feed, reads = feed_of(SkillsAcd(), queued)
    assert feed.translate(message_in("conv1")) == []
    assert reads.asked == []


def test_an_offer_reads_its_conversation_once_for_the_offer_and_its_window() -> None:
    feed, reads = feed_of(SkillsAcd())
    offered = {"kind": "offered", "at": AT, "conversation_id": "conv1", "agent": "frank"}
    made = feed.translate(offered)
    assert [(agent, item["type"]) for agent, item in made] == [
        ("frank", "offer"),
        ("frank", "window"),
    ]
    assert made[0][1]["customer_id"] == "c1"
    assert reads.asked == ["conv1"]
    reads.asked.clear()  # and the customer's next message, now that frank has it
    (message, window) = feed.translate(message_in("conv1"))
    assert message == ("frank", message[1] | {"type": "message", "text": "Are you there?"})
    assert window[1]["type"] == "window"
    assert reads.asked == ["conv1"]


def test_a_message_reaches_the_agent_the_acd_gave_the_conversation_to_before_the_feed_began() -> (
    None
):
    """A new leader's recovery gives conversations back to their agents without an event the
    feed would hear: who has one is the ACD's to say."""
    acd = SkillsAcd()
    interaction = Interaction(
        id="conv1",
        queue="Retail Banking",
        media="messaging",
        skills={},
        language=None,
        priority=0.0,
        entered_at=AT,
    )
    acd.interactions["conv1"] = interaction
    feed, reads = feed_of(acd)
    assert feed.translate(message_in("conv1")) == []  # waiting in the queue: no one's
    interaction.phase, interaction.agent = "offered", "frank"
    assert feed.translate(message_in("conv1")) == []  # offered without the feed's hearing
    assert reads.asked == []
    interaction.phase = "active"
    ((agent, item), _window) = feed.translate(message_in("conv1"))
    assert agent == "frank" and item["text"] == "Are you there?"


def test_a_streamed_message_is_the_one_the_event_is_of_not_the_latest_in_the_history() -> None:
    """The flow's reply (a card) is in the history before the feed hears of the customer's
    message, and two messages of the customer may come in one turn: each event is shown as
    its own message, with its own place in the history, never the reply as the customer's."""
    feed, reads = feed_of(SkillsAcd())
    feed.translate({"kind": "offered", "at": AT, "conversation_id": "conv1", "agent": "frank"})

    def said(seq: int, event_id: str, text: str) -> dict[str, Any]:
        content = {"kind": "text", "text": text, "event_id": event_id}
        return {
            "seq": seq,
            "conversation_id": "conv1",
            "direction": "in",
            "content": content,
            "at": AT,
        }

    card = {
        "seq": 9,
        "conversation_id": "conv1",
        "direction": "out",
        "at": AT,
        "content": {"kind": "card", "text": "", "title": "Our fees, explained"},
    }
    history = [said(7, "wamid.1", "Fees?"), said(8, "wamid.2", "On my card"), card]
    reads.history = lambda customer_id, limit: SimpleNamespace(messages=history)  # type: ignore[method-assign]
    shown = []
    for event_id in ("wamid.1", "wamid.2"):
        ((_agent, item), _window) = feed.translate(message_in("conv1") | {"event_id": event_id})
        shown.append((item["seq"], item["text"], item["kind"]))
    assert shown == [(7, "Fees?", "text"), (8, "On my card", "text")]
