"""Agents act only on their own work: scripted agents through the engine and the built-in ACD.

An action on a conversation the agent does not hold (or an offer no longer open to them) is
refused in the outcome, and nothing is sent or changed: not the store, not the ACD, not the log.
"""

from __future__ import annotations

import copy
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from flowlang.acd import AgentProfile, QueueSettings, SkillsAcd
from flowlang.events import AgentAction, AgentEvent, InboundEvent
from flowlang.harness import load_samples, run_samples
from flowlang.project import load_project
from flowlang.runtime.memory import MemoryStore, RecordingAdapter
from tests.runtime.helpers import NOW, engine_of, program

ROOT = Path(__file__).resolve().parents[2]
FLOW = """\
route to queue "Social":
    timeout 30h
    on timeout:
        reply "Sorry, nobody is free."
"""


def agent(name: str, auto: bool = True, capacity: int = 1) -> AgentProfile:
    return AgentProfile(name, frozenset({"Social"}), {}, frozenset(), {"message": capacity}, auto)


class Center:
    """An engine on a memory store, the built-in ACD and a recording adapter."""

    def __init__(self, *agents: AgentProfile, queue: QueueSettings | None = None) -> None:
        self.store = MemoryStore()
        self.acd = SkillsAcd([queue or QueueSettings("Social")], agents)
        self.sent = RecordingAdapter()
        self.engine = engine_of(program(FLOW), store=self.store, acd=self.acd, adapters=[self.sent])
        self._ids = 0

    def customer(self, sender: str, minutes: float = 0) -> str:
        outcome = self.engine.handle(
            InboundEvent(
                event_id=f"{sender}-{minutes}",
                channel="whatsapp",
                sender_id=sender,
                text="hello",
                timestamp=NOW + timedelta(minutes=minutes),
            )
        )
        return outcome.conversation_id or ""

    def act(
        self, who: str, action: AgentAction, conversation: str, minutes: float, **extra: Any
    ) -> Any:
        self._ids += 1
        return self.engine.handle(
            AgentEvent(
                event_id=f"a{self._ids}",
                conversation_id=conversation,
                agent_id=who,
                action=action,
                text="Hi, I can help" if action is AgentAction.REPLY else "",
                timestamp=NOW + timedelta(minutes=minutes),
                **extra,
            )
        )

    def snapshot(self) -> Any:
        """Everything a refused action must leave as it was."""
        return copy.deepcopy(
            (
                {k: asdict(v) for k, v in self.store.conversations.items()},
                list(self.store.events),
                list(self.store.history),
                self.store.pending_outbound(),
                list(self.sent.sent),
                {
                    i.id: (i.phase, i.agent, i.wrap_up, i.version)
                    for i in self.acd.interactions.values()
                },
                {a.id: (a.state, dict(a.holding)) for a in self.acd.agents.values()},
            )
        )


def test_an_agent_cannot_reply_on_another_agents_conversation() -> None:
    center = Center(agent("dave"), agent("erin"))
    daves = center.customer("tom")
    assert center.store.get_conversation(daves).agent == "dave"  # type: ignore[union-attr]
    before = center.snapshot()
    refused = center.act("erin", AgentAction.REPLY, daves, 1)
    assert refused.refusal is not None
    assert (refused.refusal.agent, refused.refusal.action, refused.refusal.code) == (
        "erin",
        AgentAction.REPLY,
        "not_holder",
    )
    assert refused.refusal.reason == f"erin does not hold {daves}: it is with dave"
    assert refused.note == f"erin's reply refused: erin does not hold {daves}: it is with dave"
    assert refused.deliveries == [] and center.sent.sent == []
    assert center.snapshot() == before
    # dave, who holds it, replies as before
    sent = center.act("dave", AgentAction.REPLY, daves, 2)
    assert sent.refusal is None
    assert [m.content["text"] for m in center.sent.sent] == ["Hi, I can help"]


@pytest.mark.parametrize(
    ("action", "extra", "code"),
    [
        (AgentAction.REPLY, {}, "not_holder"),
        (AgentAction.TRANSFER, {"transfer_queue": "Social"}, "not_holder"),
        (AgentAction.COMPLETE, {"wrap_up": "Resolved"}, "not_holder"),
        (AgentAction.WRAP_UP, {"wrap_up": "Resolved"}, "not_in_after_call_work"),
        (AgentAction.ACCEPT, {}, "offer_not_open"),
        (AgentAction.DECLINE, {}, "offer_not_open"),
    ],
)
def test_every_agent_action_on_a_conversation_held_by_another_is_refused(
    action: AgentAction, extra: dict[str, str], code: str
) -> None:
    center = Center(agent("dave"), agent("erin"))
    daves = center.customer("tom")
    before = center.snapshot()
    refused = center.act("erin", action, daves, 1, **extra)
    assert refused.refusal is not None and refused.refusal.code == code
    assert refused.refusal.conversation_id == daves
    assert refused.notices == [] and refused.deliveries == []
    assert center.snapshot() == before
    view = center.store.get_conversation(daves)
    assert view is not None and (view.status, view.agent) == ("with_agent", "dave")


@pytest.mark.parametrize(
    "action",
    [AgentAction.REPLY, AgentAction.TRANSFER, AgentAction.COMPLETE, AgentAction.WRAP_UP],
)
def test_nobody_acts_on_a_conversation_still_waiting_or_closed(action: AgentAction) -> None:
    center = Center(agent("dave"))
    daves = center.customer("tom")
    waiting = center.customer("uma", 1)  # dave can take one at a time
    before = center.snapshot()
    early = center.act("dave", action, waiting, 2, wrap_up="Resolved")
    assert early.refusal is not None and center.snapshot() == before
    assert early.refusal.reason.endswith(": it is waiting in Social")
    done = center.act("dave", AgentAction.COMPLETE, daves, 3)
    assert [(n.kind, n.conversation_id) for n in done.notices] == [("accepted", waiting)]
    before = center.snapshot()
    late = center.act("dave", action, daves, 4, wrap_up="Resolved")  # closed: no more
    assert late.refusal is not None and center.snapshot() == before


def test_an_offer_that_timed_out_gives_the_agent_nothing() -> None:
    """The race: ana's offer times out as she clicks accept; her accept is refused, and so are
    her reply and her complete; the conversation still waits in the queue."""
    center = Center(agent("ana", auto=False))
    conv = center.customer("tom")
    center.engine.advance(NOW + timedelta(minutes=2))  # offer timeout: 2 minutes
    view = center.store.get_conversation(conv)
    assert view is not None and view.status == "queued"
    before = center.snapshot()
    accept = center.act("ana", AgentAction.ACCEPT, conv, 2)
    assert accept.refusal is not None and accept.refusal.code == "offer_not_open"
    assert accept.note == (
        f"ana's accept refused: the offer of {conv} is not open to ana: it is waiting in Social"
    )
    reply = center.act("ana", AgentAction.REPLY, conv, 3)
    complete = center.act("ana", AgentAction.COMPLETE, conv, 4, wrap_up="Resolved")
    assert [o.refusal.code for o in (reply, complete)] == ["not_holder", "not_holder"]
    assert reply.refusal.reason == f"ana does not hold {conv}: it is waiting in Social"
    assert center.sent.sent == [] and center.snapshot() == before
    assert [i.id for i in center.acd.waiting("Social")] == [conv]
    assert center.store.get_conversation(conv).status == "queued"  # type: ignore[union-attr]


@pytest.mark.parametrize("action", [AgentAction.ACCEPT, AgentAction.DECLINE])
def test_an_offer_is_closed_at_its_timeout_even_before_the_engine_ticks(
    action: AgentAction,
) -> None:
    """The accept arrives at the very moment the offer times out, before any `advance`: it is
    refused, and the timeout then takes the offer back as usual."""
    center = Center(agent("ana", auto=False))
    conv = center.customer("tom")
    before = center.snapshot()
    at_timeout = center.act("ana", action, conv, 2)  # offer timeout: 2 minutes
    assert at_timeout.refusal is not None and at_timeout.refusal.code == "offer_not_open"
    assert center.snapshot() == before
    (tick,) = center.engine.advance(NOW + timedelta(minutes=2))
    assert [n.kind for n in tick.notices] == ["not_responding", "requeued"]
    assert center.store.get_conversation(conv).status == "queued"  # type: ignore[union-attr]


def test_an_accept_just_before_the_offer_times_out_is_taken() -> None:
    center = Center(agent("ana", auto=False))
    conv = center.customer("tom")
    taken = center.act("ana", AgentAction.ACCEPT, conv, 1.99)
    assert taken.refusal is None and [n.kind for n in taken.notices] == ["accepted"]
    assert center.engine.advance(NOW + timedelta(minutes=3)) == []


def test_a_decline_of_an_offer_made_to_another_agent_is_refused() -> None:
    center = Center(agent("ana", auto=False), agent("bob", auto=False))
    conv = center.customer("tom")
    (offered,) = [i for i in center.acd.interactions.values() if i.phase == "offered"]
    other = "bob" if offered.agent == "ana" else "ana"
    before = center.snapshot()
    refused = center.act(other, AgentAction.DECLINE, conv, 1)
    assert refused.refusal is not None and refused.refusal.code == "offer_not_open"
    assert center.snapshot() == before


def test_after_call_work_is_only_its_agents_to_wrap_up() -> None:
    queue = QueueSettings(
        "Social", after_call_work=timedelta(minutes=5), wrap_up_codes=frozenset({"Resolved"})
    )
    center = Center(agent("dave"), agent("erin"), queue=queue)
    daves = center.customer("tom")
    done = center.act("dave", AgentAction.COMPLETE, daves, 1)
    assert [n.kind for n in done.notices] == ["after_call_work"]
    view = center.store.get_conversation(daves)
    assert view is not None and (view.status, view.wrap_up_agent) == ("closed", "dave")
    before = center.snapshot()
    for action in (AgentAction.WRAP_UP, AgentAction.COMPLETE):
        refused = center.act("erin", action, daves, 2, wrap_up="Resolved")
        assert refused.refusal is not None
        assert center.snapshot() == before
    assert refused.refusal.reason == (
        f"erin does not hold {daves}: it is closed, in after-call work with dave"
    )
    # dave gives the code during his after-call work (complete with it works the same)
    coded = center.act("dave", AgentAction.COMPLETE, daves, 3, wrap_up="Resolved")
    assert coded.refusal is None
    assert [n.kind for n in coded.notices] == ["wrap_up_ended"]
    view = center.store.get_conversation(daves)
    assert view is not None and (view.wrap_up, view.wrap_up_agent) == ("Resolved", None)
    assert center.acd.agents["dave"].holding == {}
    again = center.act("dave", AgentAction.WRAP_UP, daves, 4, wrap_up="Resolved")
    assert again.refusal is not None and again.refusal.code == "not_in_after_call_work"


def test_a_wrap_up_code_while_still_in_the_conversation_goes_with_complete() -> None:
    center = Center(agent("dave"))
    daves = center.customer("tom")
    before = center.snapshot()
    early = center.act("dave", AgentAction.WRAP_UP, daves, 1, wrap_up="Resolved")
    assert early.refusal is not None and early.refusal.code == "not_in_after_call_work"
    assert early.refusal.reason == f"dave is still in {daves}; a wrap-up code goes with complete"
    assert center.snapshot() == before


def test_an_action_on_an_unknown_conversation_is_refused_and_kept() -> None:
    center = Center(agent("dave"))
    refused = center.act("dave", AgentAction.REPLY, "conv-nope", 1)
    assert refused.refusal is not None and refused.refusal.code == "unknown_conversation"
    assert center.sent.sent == []
    assert [letter["source"] for letter in center.store.dead_letters()] == ["agent"]


SCRIPT = """\
start: 2026-01-05T09:00:00Z
agents_away: [dave]
conversations:
  - name: erins-tweet
    channel: x_public
    account: "@GbankSocial"
    customer: {id: "x-1", name: "@tom"}
    events:
      - post: "@GbankSocial my card was charged a fee twice, help"
        post_id: "1870000000000000001"
      - {at: +1m, available: dave}
      - at: +2m
        reply: "Dave here, I will refund you."
        agent: dave
      - at: +3m
        complete: Resolved
        agent: dave
      - at: +4m
        reply: "Erin here: sorry about that, refunded."
"""


def test_a_scripted_agent_on_another_agents_tweet_is_refused(tmp_path: Path) -> None:
    project, workspace = load_project(ROOT / "flows/social.flow", ROOT / "examples/deployment.yaml")
    assert project is not None, workspace.diagnostics
    samples = tmp_path / "samples.yaml"
    samples.write_text(SCRIPT, "utf-8")
    report = run_samples(project, load_samples(samples))
    steps = [s.outcome for s in report.steps]
    (routed,) = [n for o in steps for n in o.notices if n.kind == "accepted"]
    assert routed.agent == "erin"
    refused = [o.refusal for o in steps if o.refusal is not None]
    assert [(r.agent, r.action, r.code) for r in refused] == [
        ("dave", AgentAction.REPLY, "not_holder"),
        ("dave", AgentAction.COMPLETE, "not_holder"),
    ]
    sent = [d.message.content.get("text") for o in steps for d in o.deliveries]
    assert sent == ["Erin here: sorry about that, refunded."]
    assert (
        f"dave's reply refused: dave does not hold {routed.conversation_id}: it is with erin"
        in (report.render())
    )


def test_an_agent_whose_after_call_work_was_cut_short_cannot_close_the_next_agents_work() -> None:
    queue = QueueSettings(
        "Social", after_call_work=timedelta(minutes=5), wrap_up_codes=frozenset({"Resolved"})
    )
    center = Center(agent("dave"), agent("erin"), queue=queue)
    toms = center.customer("tom")
    center.act("dave", AgentAction.COMPLETE, toms, 1)  # dave's after-call work begins
    center.engine.set_agent_state("dave", "away", NOW + timedelta(minutes=1))
    center.customer("tom", 2)  # tom writes again: the same conversation, now erin's
    view = center.store.get_conversation(toms)
    assert view is not None and (view.status, view.agent) == ("with_agent", "erin")
    before = center.snapshot()
    for action in (AgentAction.COMPLETE, AgentAction.WRAP_UP):
        refused = center.act("dave", action, toms, 3, wrap_up="Resolved")
        assert refused.refusal is not None, action
        assert refused.refusal.reason.endswith(": it is with erin")
        assert center.snapshot() == before
    # erin's conversation is still hers
    assert center.act("erin", AgentAction.REPLY, toms, 4).refusal is None
    assert center.act("erin", AgentAction.COMPLETE, toms, 5, wrap_up="Resolved").refusal is None
