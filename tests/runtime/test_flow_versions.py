"""Flow versions: the version is the flow's content, wherever its file lies, and a restart keeps
a conversation in flight on the version it started on."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from flowlang.events import InboundEvent
from flowlang.store import SqliteStore
from tests.runtime.helpers import NOW, engine_of, program

ASK = """\
ask "Your account number?" into account wait 1h:
    on answer:
        reply "{}"
"""


def test_the_same_flow_in_another_folder_is_the_same_version() -> None:
    here = program('reply "Hi"', name="messaging.flow").graph
    there = program('reply "Hi"', name="flows/messaging.flow").graph
    assert here.version == there.version
    assert here.nodes["start/0"].source.file != there.nodes["start/0"].source.file
    assert program('reply "Hello"').graph.version != here.version


def message(text: str, minutes: int) -> InboundEvent:
    return InboundEvent(
        event_id=f"m{minutes}",
        channel="web",
        sender_id="v1",
        text=text,
        timestamp=NOW + timedelta(minutes=minutes),
    )


def test_after_a_restart_a_conversation_in_flight_resumes_on_the_version_it_started_on(
    tmp_path: Path,
) -> None:
    path = tmp_path / "cc.sqlite"
    first, second = program(ASK.format("Thanks (first version)")), program(ASK.format("Thanks!"))
    with SqliteStore(path) as store:
        engine_of(first, store=store).handle(message("hi", 0))  # waits for the answer
    with SqliteStore(path) as store:  # a new process, which runs the newer version
        engine = engine_of(second, store=store)
        engine.recover(NOW + timedelta(minutes=1))
        answered = engine.handle(message("12345678", 2))
        assert [d.message.content["text"] for d in answered.deliveries] == [
            "Thanks (first version)"
        ]
        assert store.flow_version(first.graph.version) is not None
        assert store.flow_version(second.graph.version) is not None
