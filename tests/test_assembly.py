"""An Engine is built with every part it uses; `flowlang.assembly` is the one place that
chooses the built-in ones, and what a host gets from it are the channel rules, not nothing."""

from __future__ import annotations

import dataclasses
import inspect
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from flowlang.acd import SkillsAcd
from flowlang.assembly import assemble_engine
from flowlang.events import InboundEvent
from flowlang.project import load_project
from flowlang.runtime.engine import Engine
from flowlang.runtime.memory import AllowAll, MemoryStore
from flowlang.runtime.ports import Acd, ConversationStore, Ports, ReplyPolicy
from flowlang.store import SqliteStore
from flowlang.store.postgres import PostgresStore
from tests.runtime.helpers import program

ROOT = Path(__file__).resolve().parent.parent
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def sms(text: str, event_id: str, at: datetime = T0) -> InboundEvent:
    return InboundEvent(
        event_id=event_id, channel="sms", sender_id="+447700900123", text=text, timestamp=at
    )


def test_the_engine_has_no_default_part() -> None:
    """`Engine(program)` alone is refused: every port is required, none has a default."""
    assert [f.name for f in dataclasses.fields(Ports) if f.default is not dataclasses.MISSING] == []
    assert inspect.signature(Engine).parameters["ports"].default is inspect.Parameter.empty
    with pytest.raises(TypeError, match="ports"):
        Engine(program('reply "Hello"'))  # type: ignore[call-arg]


def test_a_part_with_a_mistyped_name_is_refused_not_ignored() -> None:
    with pytest.raises(TypeError, match=r"no part named stor \(parts: store, acd,"):
        assemble_engine(program("end"), stor=MemoryStore())  # type: ignore[call-arg]
    project, _ = load_project(ROOT / "flows/messaging.flow", ROOT / "examples/deployment.yaml")
    assert project is not None
    with pytest.raises(TypeError, match="no part named adaptors"):
        project.engine(adaptors=[])  # type: ignore[call-arg]


def test_an_assembled_engine_applies_the_channel_rules() -> None:
    """The built-in policy is the channel registry's: an SMS STOP opts the customer out, and
    the flow's reply to their next message is blocked. A host that wants no rules says so."""
    flow = program('reply "Hello"', header="")
    engine = assemble_engine(flow)
    stopped = engine.handle(sms("STOP", "s1"))
    assert stopped.note == "the customer opted out; nothing more will be sent to them"
    after = engine.handle(sms("hi", "s2", T0 + timedelta(minutes=1)))
    assert [(d.status, d.reason_code) for d in after.deliveries] == [("blocked", "opted_out")]

    lawless = assemble_engine(flow, policy=AllowAll())
    assert lawless.handle(sms("STOP", "s1")).deliveries[0].status == "sent"


def test_the_deployments_parts_are_assembled_from_it() -> None:
    """Queues and agents of the deployment are the ACD's; its schedules answer the flow."""
    project, ws = load_project(ROOT / "flows/messaging.flow", ROOT / "examples/deployment.yaml")
    assert project is not None, ws.diagnostics
    engine = project.engine()
    assert isinstance(engine.acd, SkillsAcd)
    assert set(engine.acd.queues) == set(project.deployment.queues)  # type: ignore[union-attr]
    assert engine.ports.schedule_state("no such schedule", T0) == "open"


@pytest.mark.parametrize("store", [MemoryStore, SqliteStore, PostgresStore])
def test_the_built_in_stores_have_every_member_of_their_port(store: type, tmp_path: Path) -> None:
    """What the Engine once looked for with hasattr is a Protocol member now: the built-in
    stores, ACD and policies have all of them."""
    for port, implementations in [
        (ConversationStore, [store]),
        (Acd, [SkillsAcd]),
        (ReplyPolicy, [AllowAll, type(assemble_engine(program("end")).policy)]),
    ]:
        members = {m for m in vars(port) if not m.startswith("_")}
        for implementation in implementations:
            missing = sorted(m for m in members if not callable(getattr(implementation, m, None)))
            assert missing == [], f"{implementation.__name__} lacks {missing} of {port.__name__}"


def test_a_memory_store_recovers_an_accepted_but_unprocessed_event() -> None:
    """The memory store keeps the inbound log like the durable one: an event accepted but not
    processed (the host stopped in between) is processed by `recover`, once."""
    store = MemoryStore()
    event = sms("hi", "s1")
    assert store.accept_inbound("sms", "s1", event.model_dump(mode="json"))
    engine = assemble_engine(program('reply "Hello"'), store=store, policy=AllowAll())
    (recovered,) = engine.recover(T0)
    assert [d.message.content["text"] for d in recovered.deliveries] == ["Hello"]
    assert engine.recover(T0) == []
