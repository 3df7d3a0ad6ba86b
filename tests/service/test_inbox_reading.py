"""The engine's side of the inbox: the rows the intake (of this process or of the front
process) committed, read in arrival order; a row that no longer reads as an event is kept as a
dead letter with its reason, not lost and not retried forever."""

from __future__ import annotations

from pathlib import Path

from flowlang.service.worker import Staged
from flowlang.store import SqliteStore
from flowlang.store.inbox import Entry, InboxReader, SqliteInbox
from tests.service.test_process import web_message


def test_the_reader_sees_what_the_writer_committed_in_arrival_order(tmp_path: Path) -> None:
    store = tmp_path / "cc.sqlite"
    SqliteStore(store).close()
    writer, reader = SqliteInbox(store), InboxReader(store)
    try:
        assert reader.id == writer.id and reader.after(0) == []
        first = [Entry("web", "e1", {"n": 1}), Entry("web", "e2", {"n": 2})]
        writer.append([first])
        rows = reader.after(0)
        assert [entry.event_id for _, entry in rows] == ["e1", "e2"]
        writer.append([[Entry("web", "e3", {"n": 3})]])
        assert [entry.event_id for _, entry in reader.after(rows[-1][0])] == ["e3"]
    finally:
        writer.close()
        reader.close()


def test_a_row_that_is_not_an_inbound_event_becomes_a_dead_letter_with_its_reason() -> None:
    payload = {"channel": "web", "event_id": "e9", "text": "no such shape"}
    row = Staged.of(7, Entry("web", "e9", payload))
    assert row.event is None and row.letter is not None
    assert row.letter.payload == payload  # kept whole, for `flowlang replay`
    assert row.letter.reason.startswith("an inbox row that is not an inbound event")


def test_an_event_row_reads_back_as_the_event(tmp_path: Path) -> None:
    from flowlang.channels.inbound import normalise

    [event] = normalise("web", web_message(3))
    row = Staged.of(1, Entry("web", event.event_id, event.model_dump(mode="json")))
    assert row.letter is None and row.event == event
