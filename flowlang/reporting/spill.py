"""Where a report's fold sets interactions aside so that its memory does not grow with the log.

A fold over a large log (`InteractionLog(spill_over=N)`) keeps at most about N interactions in
memory: when it holds more, the half it touched least recently move here, into a private
temporary SQLite database (deleted when it is closed), each as a `marshal` of its fields (times
as ISO text, which `datetime.fromisoformat` reads back fastest). An event for a conversation
set aside takes it back, so the fold gives exactly what folding everything in memory gives.
Agents' activity (offers, answers, messages) is set aside the same way. Reports then read both
back, a pass each.
"""

from __future__ import annotations

import marshal
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from typing import Any

from flowlang.reporting.interactions import AgentSegment, Interaction, QueueVisit

Activity = tuple[datetime, str, str, str]  # at, agent, what, conversation
# ... and the media of its interaction when final (its channel known), else None
MediaActivity = tuple[datetime, str, str, str, str | None]
PackedItem = tuple[str, int, str, bytes]  # id, start (`start_key`), media, packed fields
# at (ISO), agent, what, conversation, media when final (else None)
PackedActivity = tuple[str, str, str, str, str | None]
NumberedActivity = tuple[str, str, str, str, str | None, int]  # ... and its number, in order
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def start_key(item: Interaction) -> int:
    """The interaction's start in microseconds since the epoch (SQLite sorts it exactly; a
    time without a zone counts as UTC)."""
    at = item.started_at
    if at is None:
        return 0
    return ((at if at.tzinfo else at.replace(tzinfo=UTC)) - _EPOCH) // _MICROSECOND


def pack_row(item: Interaction) -> PackedItem:
    """The interaction as the spill (and a stored fold) keeps it."""
    return item.id, start_key(item), item.media, marshal.dumps(_pack(item))


class Spill:
    """Interactions and activity set aside on disk, for one fold."""

    def __init__(self) -> None:
        self._db = sqlite3.connect("")  # a private temporary database on disk
        self._db.executescript(
            """
            CREATE TABLE items (id TEXT PRIMARY KEY, start INTEGER, media TEXT, body BLOB);
            CREATE TABLE activity (seq INTEGER PRIMARY KEY, at TEXT, agent TEXT, what TEXT,
                                   conv TEXT, media TEXT);
            """
        )
        self.count = 0

    def put(self, items: Iterable[Interaction]) -> None:
        rows = [pack_row(item) for item in items]
        self._db.executemany("INSERT INTO items VALUES (?, ?, ?, ?)", rows)
        self.count += len(rows)

    def put_packed(self, rows: Iterable[PackedItem]) -> int:
        """Take interactions already packed (`pack_row`, a stored fold's); how many."""
        taken = self._db.executemany("INSERT INTO items VALUES (?, ?, ?, ?)", rows).rowcount
        self.count += taken
        return taken

    def packed_items(self) -> Iterator[PackedItem]:
        """Every interaction set aside, packed as `pack_row` packs it."""
        yield from self._db.execute("SELECT id, start, media, body FROM items")

    def take(self, conversation_id: str) -> Interaction | None:
        """The interaction set aside under this id, removed from here (None: not here)."""
        found = self.peek(conversation_id)
        if found is not None:
            self._db.execute("DELETE FROM items WHERE id = ?", (conversation_id,))
            self.count -= 1
        return found

    def peek(self, conversation_id: str) -> Interaction | None:
        row = self._db.execute("SELECT body FROM items WHERE id = ?", (conversation_id,)).fetchone()
        return _load(row[0]) if row is not None else None

    def items(self, by_start: bool = False) -> Iterator[Interaction]:
        order = " ORDER BY start, id" if by_start else ""
        for (body,) in self._db.execute(f"SELECT body FROM items{order}"):
            yield _load(body)

    def add_activity(self, entries: Iterable[MediaActivity]) -> None:
        """Set activity aside, each with the media of its interaction when that is final (an
        interaction's media changes only when its channel is first known): reading it back
        then looks up only the others' interactions."""
        self._db.executemany(
            "INSERT INTO activity (at, agent, what, conv, media) VALUES (?, ?, ?, ?, ?)",
            [(at.isoformat(), *rest) for at, *rest in entries],
        )

    def add_packed_activity(self, rows: Iterable[NumberedActivity]) -> int:
        """Take activity with its time as ISO text and its number in order (a stored fold's,
        before any other); how many."""
        return self._db.executemany(
            "INSERT INTO activity (at, agent, what, conv, media, seq) VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        ).rowcount

    def packed_activity(self) -> Iterator[PackedActivity]:
        """The activity set aside, in order, its time as ISO text."""
        yield from self._db.execute(
            "SELECT at, agent, what, conv, media FROM activity ORDER BY seq"
        )

    def activity(self) -> Iterator[tuple[datetime, str, str, str | None]]:
        """Each activity set aside, in order, with the media of its interaction when that
        interaction is set aside too."""
        rows = self._db.execute(
            "SELECT at, agent, what, "
            "coalesce(media, (SELECT i.media FROM items i WHERE i.id = conv)) "
            "FROM activity ORDER BY seq"
        )
        for at, agent, what, media in rows:
            yield datetime.fromisoformat(at), agent, what, media

    def activity_since(self, at: datetime) -> list[Activity]:
        rows = self._db.execute("SELECT at, agent, what, conv FROM activity ORDER BY seq")
        return [
            (when, agent, what, conv)
            for text, agent, what, conv in rows
            if (when := datetime.fromisoformat(text)) >= at
        ]

    def copy(self) -> Spill:
        twin = Spill.__new__(Spill)
        twin._db = sqlite3.connect("")
        # A backup cannot read a database its own connection is writing to (the open
        # transaction of the last insert): it would wait for it forever.
        self._db.commit()
        self._db.backup(twin._db)
        twin.count = self.count
        return twin

    def close(self) -> None:
        self._db.close()


def _shape(cls: type) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """The class's field names, and the positions of those that hold a time."""
    names = tuple(f.name for f in fields(cls))
    times = tuple(i for i, f in enumerate(fields(cls)) if "datetime" in str(f.type))
    return names, times


_ITEM, _VISIT, _SEGMENT = _shape(Interaction), _shape(QueueVisit), _shape(AgentSegment)
Shape = tuple[tuple[str, ...], tuple[int, ...]]


def _flat(value: Any, shape: Shape) -> list[Any]:
    names, times = shape
    out = list(value.__dict__.values())  # a dataclass's fields, in order, set by __init__
    if len(out) != len(names):  # an attribute set besides the fields
        out = [getattr(value, name) for name in names]
    for index in times:
        if out[index] is not None:
            out[index] = out[index].isoformat()
    return out


def _pack(item: Interaction) -> list[Any]:
    flat = _flat(item, _ITEM)
    flat[_VISITS] = [_flat(v, _VISIT) for v in item.visits]
    flat[_SEGMENTS] = [_flat(s, _SEGMENT) for s in item.segments]
    return flat


def _built(cls: Any, values: list[Any], shape: Shape) -> Any:
    for index in shape[1]:
        if values[index] is not None:
            values[index] = datetime.fromisoformat(values[index])
    return cls(*values)


def _load(body: bytes) -> Interaction:
    values = marshal.loads(body)
    values[_VISITS] = [_built(QueueVisit, v, _VISIT) for v in values[_VISITS]]
    values[_SEGMENTS] = [_built(AgentSegment, s, _SEGMENT) for s in values[_SEGMENTS]]
    item: Interaction = _built(Interaction, values, _ITEM)
    return item


_VISITS = _ITEM[0].index("visits")
_SEGMENTS = _ITEM[0].index("segments")
