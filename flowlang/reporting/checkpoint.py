"""Report checkpoints: the event log folded up to a moment, kept so that later reports start
there instead of at the first event.

A report whose period starts at or after a checkpoint folds the checkpoint and the events from
its moment on: its cost follows the period, not the age of the store. A checkpoint keeps what
can still matter after its moment: interactions in progress and those with an event in the last
`SETTLED_AFTER` (a thread can reopen, after-call work can end), every agent's state, the live
indexes of the real-time view, and none of the activity before it. An interaction silent for
longer is settled: in the rare case that an event for it comes later still, it starts a new row.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import fields
from datetime import datetime, timedelta
from typing import Any, Protocol

from flowlang.reporting.interactions import AgentSegment, Interaction, InteractionLog, QueueVisit

FOLD_VERSION = 5
"""Bumped whenever folding changes what it derives: checkpoints of another version are unused."""

SPILL_OVER = 10_000
"""Interactions a report's fold keeps in memory at most (about): the rest wait on disk
(`spill.py`), so a report's memory does not grow with the log."""

KEPT = 14
"""Checkpoints a store keeps, the latest ones: two weeks of daily reports."""

SETTLED_AFTER = timedelta(days=4)
"""The longest threading window (72 h), and a day to spare for after-call work and late agent
actions."""


class CheckpointStore(Protocol):
    """An event log that keeps report checkpoints and a stored fold (`SqlStore`)."""

    def iter_events(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        through_seq: int | None = None,
        after_seq: int | None = None,
    ) -> Iterator[dict[str, Any]]: ...

    def stored_fold(self, version: int) -> dict[str, Any] | None: ...

    def stored_fold_items(self, generation: int) -> Iterator[tuple[str, int, str, bytes]]: ...

    def stored_fold_activity(
        self, generation: int
    ) -> Iterator[tuple[str, str, str, str, str | None, int]]: ...

    def save_stored_fold(
        self,
        version: int,
        through_seq: int,
        events: int,
        last_at: datetime | None,
        body: dict[str, Any],
        items: Iterable[tuple[str, int, str, bytes]],
        activity: Iterable[tuple[str, str, str, str, str | None]],
    ) -> None: ...

    def last_event_seq(self) -> int: ...

    def report_checkpoint(
        self, not_after: datetime | None, version: int
    ) -> tuple[datetime, dict[str, Any]] | None: ...

    def save_report_checkpoint(
        self, at: datetime, version: int, through_seq: int, body: dict[str, Any], keep: int
    ) -> None: ...


def fold_for_report(
    store: CheckpointStore,
    start: datetime | None,
    ends: Sequence[datetime | None],
    now: datetime,
    use_checkpoints: bool = True,
    spill_over: int | None = None,
    fold_every: int | None = None,
    store_fold: bool = True,
) -> list[InteractionLog]:
    """One log per end, as `InteractionLog.up_to_each` folds them, for reports whose period
    starts at `start`: from the latest checkpoint at or before `start` when there is one, else
    from the stored fold when the log still agrees with it (`stored_fold.py`), else from the
    first event. A period over by `now` leaves a checkpoint at its end (`ends[0]`) for the
    reports that follow it; a fold of the whole log (an end None) that read at least
    `fold_every` events (default `stored_fold.FOLD_EVERY`) is stored for the next report.
    `spill_over`: see `InteractionLog`. Without `use_checkpoints`, neither checkpoints nor the
    stored fold are used or left; without `store_fold`, the stored fold is used but never
    written (the service: writing it takes seconds, on the engine's thread)."""
    from flowlang.reporting import stored_fold  # it builds on this module's forms

    through = store.last_event_seq()  # events written while we read wait for the next report
    bounded = [e for e in ends if e is not None]
    # A checkpoint after an end (a real-time --at before --from) would hold events past it.
    found = (
        store.report_checkpoint(min([start, *bounded]), FOLD_VERSION)
        if start is not None and use_checkpoints
        else None
    )
    resumed = None
    if use_checkpoints and not found:
        resumed = stored_fold.resume(store, ends, spill_over)
    read_to = max(bounded) if len(bounded) == len(ends) else None
    if resumed is not None:
        events = stored_fold.Counted(
            store.iter_events(resumed.last_at, read_to, through, after_seq=resumed.through_seq)
        )
        logs = InteractionLog.up_to_each(events, ends, resumed.log, spill_over)
    else:
        since = found[0] if found else None
        events = stored_fold.Counted(store.iter_events(since, read_to, through))
        start_from = restore(found[1]) if found else None
        logs = InteractionLog.up_to_each(events, ends, start_from, spill_over)
    end = ends[0]
    if use_checkpoints and end is not None and end <= now and (found is None or found[0] < end):
        store.save_report_checkpoint(end, FOLD_VERSION, through, snapshot(logs[0], end), KEPT)
    every = stored_fold.FOLD_EVERY if fold_every is None else fold_every
    if (
        store_fold
        and use_checkpoints
        and not found
        and None in ends
        and events.count >= max(every, 1)
    ):
        folded = events.count + (resumed.events if resumed is not None else 0)
        stored_fold.save(store, logs[ends.index(None)], through, folded)
    return logs


def fold_live(
    store: CheckpointStore,
    at: datetime | None = None,
    use_checkpoints: bool = True,
    spill_over: int | None = None,
) -> InteractionLog:
    """The log of the events before `at` (None: all of them), for the real-time view: from the
    latest checkpoint at or before `at` when there is one (it keeps every live index and agent
    state), else from the first event. A host seeds its live log with it before
    `engine.listen(log.apply)`. It leaves no checkpoint: a view refreshed every minute would
    otherwise push the periods' checkpoints out of the store."""
    through = store.last_event_seq()
    found = store.report_checkpoint(at, FOLD_VERSION) if use_checkpoints else None
    events = store.iter_events(found[0] if found else None, at, through)
    (log,) = InteractionLog.up_to_each(
        events, [at], restore(found[1]) if found else None, spill_over
    )
    return log


def snapshot(
    log: InteractionLog, at: datetime, settled_after: timedelta = SETTLED_AFTER
) -> dict[str, Any]:
    """The JSON form of `log` (the events before `at`) as a checkpoint at `at`."""
    indexed = {
        conv
        for index in (log.waiting, log.with_agent, log.active, log.holding)
        for entries in index.values()
        for conv in entries
    }
    settled = at - settled_after
    kept: list[Interaction] = []
    settled_queues = {media: set(queues) for media, queues in log.settled_queues.items()}
    for item in log.all_interactions():
        if (
            item.id in indexed
            or item.ended_at is None
            or item.open_segment is not None
            or (item.last_at is not None and item.last_at >= settled)
        ):
            kept.append(item)
        else:
            settled_queues.setdefault(item.media, set()).update(item.queues)
    return {
        "version": FOLD_VERSION,
        "at": at.isoformat(),
        "interactions": [_encode(item) for item in kept],
        "agent_activity": [
            [_iso(when), agent, what, conv] for when, agent, what, conv in log.activity_since(at)
        ],
        **live_state(log),
        "settled_queues": {media: sorted(queues) for media, queues in settled_queues.items()},
    }


def live_state(log: InteractionLog) -> dict[str, Any]:
    """The JSON form of what `log` holds besides its interactions and activity: the time of
    its last event, the queues of interactions settled, agents' states, the live indexes."""
    return {
        "last_event_at": _iso(log.last_event_at),
        "settled_queues": {media: sorted(queues) for media, queues in log.settled_queues.items()},
        "agent_states": {a: [state, _iso(since)] for a, (state, since) in log.agent_states.items()},
        "indexes": {
            name: [
                [key, [[conv, _iso(when)] for conv, when in entries.items()]]
                for key, entries in index.items()  # empty ones too: realtime lists their keys
            ]
            for name, index in (
                ("waiting", log.waiting),
                ("with_agent", log.with_agent),
                ("active", log.active),
                ("holding", log.holding),
            )
        },
    }


def restore(data: dict[str, Any]) -> InteractionLog:
    """The InteractionLog a checkpoint holds, ready to take the events from its moment on."""
    log = InteractionLog()
    for raw in data["interactions"]:
        item = _decode(Interaction, raw)
        item.visits = [_decode(QueueVisit, v) for v in raw["visits"]]
        item.segments = [_decode(AgentSegment, s) for s in raw["segments"]]
        log.interactions[item.id] = item
    log.agent_activity = [
        (_required(when), agent, what, conv) for when, agent, what, conv in data["agent_activity"]
    ]
    restore_live(log, data)
    return log


def restore_live(log: InteractionLog, data: dict[str, Any]) -> None:
    """Give `log` what `live_state` kept."""
    log.last_event_at = _when(data["last_event_at"])
    log.settled_queues = {media: set(queues) for media, queues in data["settled_queues"].items()}
    log.agent_states = {
        agent: (state, _required(since)) for agent, (state, since) in data["agent_states"].items()
    }
    for name, entries_by_key in data["indexes"].items():
        index = getattr(log, name)
        for key, entries in entries_by_key:
            index[key] = OrderedDict((conv, _required(when)) for conv, when in entries)


_TIMES = {
    cls: tuple(f.name for f in fields(cls) if "datetime" in str(f.type))
    for cls in (Interaction, QueueVisit, AgentSegment)
}


def _plain(value: Interaction | QueueVisit | AgentSegment) -> dict[str, Any]:
    data = dict(vars(value))
    for name in _TIMES[type(value)]:
        if data[name] is not None:
            data[name] = data[name].isoformat()
    return data


def _encode(item: Interaction) -> dict[str, Any]:
    data = _plain(item)
    data["visits"] = [_plain(v) for v in item.visits]
    data["segments"] = [_plain(s) for s in item.segments]
    return data


def _decode(cls: Any, raw: dict[str, Any]) -> Any:
    values = dict(raw)
    for name in _TIMES[cls]:
        if values[name] is not None:
            values[name] = datetime.fromisoformat(values[name])
    return cls(**values)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None


def _required(value: str) -> datetime:
    return datetime.fromisoformat(value)
