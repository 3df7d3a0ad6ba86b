"""The stored fold: the whole event log folded once and kept in the store, so that a report
resumes from it and folds only the events written since (`flowlang store fold`, and reports
that folded many events past it, write it).

It holds every interaction of the log (packed as `spill.py` packs them), the agents' activity,
their states and the real-time indexes, as of the event numbered `through_seq`. A report takes
the interactions into its own spill (the fold set aside on disk, as a large fold sets them
aside) and folds the newer events on top: an event for a stored conversation takes it back,
so the figures are exactly those of folding every event from the first.

A stored fold is used only when it is exactly the fold of the log's events up to `through_seq`
as the log stands now (`SqlStore.stored_fold`): of this fold's version, the log holding as many
events up to that number as were folded (none lost with a store restored from a copy, none
committed late below it: PostgreSQL's numbers may commit out of order), no event after it dated
before its last one (a dead letter replayed later: folding it after would be out of time
order), and read whole (another writer may replace it meanwhile). Otherwise the report folds
from the first event, as without one, and may leave a new one.
"""

from __future__ import annotations

import marshal
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from flowlang.reporting import checkpoint
from flowlang.reporting.checkpoint import CheckpointStore
from flowlang.reporting.interactions import InteractionLog
from flowlang.reporting.spill import Spill, pack_row

VERSION = checkpoint.FOLD_VERSION * 100 + marshal.version
"""A stored fold of another version (another fold, or a Python whose `marshal` writes another
format) is not used."""

FOLD_EVERY = 50_000
"""A report that folded at least this many events past the stored fold (or from the first
event, when there is none) stores its fold for the next one."""

ItemRow = tuple[str, int, str, bytes]  # id, start (microseconds), media, packed interaction
ActivityRow = tuple[str, str, str, str, str | None]  # at (ISO), agent, what, conversation, media


class Resumed:
    """A report's fold started from the stored fold."""

    def __init__(self, log: InteractionLog, found: dict[str, Any]) -> None:
        self.log = log
        self.through_seq: int = found["through_seq"]
        self.events: int = found["events"]
        self.last_at: datetime | None = found["last_at"]


def resume(
    store: CheckpointStore, ends: Sequence[datetime | None], spill_over: int | None
) -> Resumed | None:
    """The log the stored fold holds, for folding the events after it up to each of `ends`;
    None when there is no stored fold the log still agrees with, or when an end comes before
    its last event (the stored fold would hold events past that end)."""
    found = store.stored_fold(VERSION)
    if found is None:
        return None
    last_at = found["last_at"]
    if last_at is not None and any(end is not None and end <= last_at for end in ends):
        return None
    spill = Spill()
    generation = found["generation"]
    items = spill.put_packed(store.stored_fold_items(generation))
    activity = spill.add_packed_activity(store.stored_fold_activity(generation))
    if (items, activity) != (found["items"], found["activity"]):  # replaced as we read it
        spill.close()
        return None
    log = InteractionLog(spill_over, spill=spill)
    checkpoint.restore_live(log, found["body"])
    return Resumed(log, found)


def save(store: CheckpointStore, log: InteractionLog, through_seq: int, events: int) -> None:
    """Store `log`, the fold of the `events` events numbered up to `through_seq`, as the
    stored fold (replacing the one before)."""
    store.save_stored_fold(
        VERSION,
        through_seq,
        events,
        log.last_event_at,
        checkpoint.live_state(log),
        _item_rows(log),
        _activity_rows(log),
    )


def _item_rows(log: InteractionLog) -> Iterator[ItemRow]:
    for item in log.interactions.values():
        yield pack_row(item)
    spill = log.aside
    if spill is not None:
        yield from spill.packed_items()


def _activity_rows(log: InteractionLog) -> Iterator[ActivityRow]:
    spill = log.aside
    if spill is not None:
        yield from spill.packed_activity()
    for at, agent, what, conv, media in log.final_media(log.agent_activity):
        yield at.isoformat(), agent, what, conv, media


class Counted:
    """Events passed on, counted."""

    def __init__(self, events: Iterable[dict[str, Any]]) -> None:
        self.events = events
        self.count = 0

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for event in self.events:
            self.count += 1
            yield event
