"""The stored fold (flowlang/reporting/stored_fold.py): every report gives the same figures
with it as from the first event, wherever in the log it was stored and whatever happened to the
log afterwards: more events, an event written late but dated before the fold's last one, events
lost below the fold (a store restored from an older copy) or committed late below it, a crash
while it was being written."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowlang.cli import main
from flowlang.reporting import InteractionLog, Scope
from flowlang.reporting import stored_fold as stored
from flowlang.reporting.checkpoint import fold_for_report
from flowlang.store import SqliteStore, open_store
from flowlang.store.sql import SqlStore
from tests.reporting.test_checkpoint import _store_with, _weeks
from tests.reporting.test_streaming_fold import _logs, _outputs

Event = dict[str, Any]
LATER = datetime(2030, 1, 1, tzinfo=UTC)  # "now" for the reports: after every event


def _append(store: SqlStore, events: Sequence[Mapping[str, Any]]) -> None:
    with store.transaction():
        for e in events:
            data = {k: v for k, v in e.items() if k not in ("kind", "at", "conversation_id")}
            store.append_event(e["kind"], e["at"], e["conversation_id"], data)


class Reads:
    """Counts the events each report reads from the log."""

    def __init__(self, store: SqlStore) -> None:
        self.store, self.read = store, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def iter_events(self, *args: Any, **kwargs: Any) -> Iterator[Event]:
        for event in self.store.iter_events(*args, **kwargs):
            self.read += 1
            yield event


def _report(
    store: SqlStore, fold_every: int = 10**9, spill_over: int = 3
) -> tuple[InteractionLog, int]:
    """The whole log's fold as `report all` folds it, and how many events it read."""
    reads = Reads(store)
    log, _ = fold_for_report(reads, None, [None, LATER], LATER, True, spill_over, fold_every)
    return log, reads.read


def _same_as_from_the_first_event(store: SqlStore, log: InteractionLog) -> None:
    events = list(store.iter_events())
    whole = InteractionLog.from_events(events)
    last = whole.last_event_at or LATER
    first = events[0]["at"] if events else last
    for scope in (Scope(), Scope(first + (last - first) / 3, last), Scope(media={"x_dm"})):
        assert _outputs(log, scope, last) == _outputs(whole, scope, last), scope


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_logs(), st.data())
def test_a_fold_stored_anywhere_in_a_log_then_more_events_gives_every_report_the_same(
    events: list[Event], data: st.DataObject
) -> None:
    split = data.draw(st.integers(1, len(events)))
    with SqliteStore(":memory:") as store:
        _append(store, events[:split])
        _report(store, fold_every=0)  # stores the fold of the first `split` events
        assert store.stored_fold(stored.VERSION) is not None
        _append(store, events[split:])
        log, read = _report(store)
        assert read == len(events) - split  # only the events after the fold
        _same_as_from_the_first_event(store, log)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_logs(), st.data())
def test_an_event_written_after_the_fold_but_dated_before_it_is_not_folded_out_of_order(
    events: list[Event], data: st.DataObject
) -> None:
    """A dead letter replayed days later: the stored fold is not used, the report folds from
    the first event (and stores a new fold, which the next report uses)."""
    split = data.draw(st.integers(1, len(events)))
    late = dict(events[data.draw(st.integers(0, split - 1))])
    late["at"] -= timedelta(seconds=1)
    with SqliteStore(":memory:") as store:
        _append(store, events[:split])
        _report(store, fold_every=0)
        _append(store, [*events[split:], late])
        assert store.stored_fold(stored.VERSION) is None
        log, read = _report(store, fold_every=0)
        assert read == len(events) + 1
        _same_as_from_the_first_event(store, log)
        log, read = _report(store)
        assert read == 0
        _same_as_from_the_first_event(store, log)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_logs(), st.data())
def test_a_fold_ahead_of_the_log_or_missing_an_event_below_it_is_not_used(
    events: list[Event], data: st.DataObject
) -> None:
    """The fold holds events the log lost (a store restored from an older copy: the fold is
    ahead of it), or the log gained an event numbered below the fold's last after it was
    stored (PostgreSQL commits numbers out of order: the fold is behind): either way reports
    fold from the first event."""
    split = data.draw(st.integers(1, len(events)))
    ahead = data.draw(st.booleans()) or split == 1
    # ahead: events from `gone` on are lost; behind: `gone`, below the fold's last, is late
    gone = data.draw(st.integers(1, split if ahead else split - 1))
    with SqliteStore(":memory:") as store:
        _append(store, events[:split])
        if not ahead:  # a number left free below the fold's last, committed after it
            (row,) = store.db.execute("SELECT * FROM events WHERE seq = ?", (gone,)).fetchall()
            store.db.execute("DELETE FROM events WHERE seq = ?", (gone,))
        _report(store, fold_every=0)
        if ahead:
            store.db.execute("DELETE FROM events WHERE seq >= ?", (gone,))
        else:
            placeholders = ", ".join("?" * len(row))
            store.db.execute(f"INSERT INTO events VALUES ({placeholders})", row)
        _append(store, events[split:])
        assert store.stored_fold(stored.VERSION) is None
        log, _ = _report(store)
        _same_as_from_the_first_event(store, log)


def test_a_crash_while_the_fold_is_written_leaves_the_one_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = _weeks(3)
    path = tmp_path / "s.db"
    half = len(events) // 2
    with _store_with(events[:half], path) as store:
        _report(store, fold_every=0)
        before = store.stored_fold(stored.VERSION)
        assert before is not None and before["events"] == half

        def broken(log: InteractionLog) -> Iterator[tuple[str, str, str, str]]:
            yield ("2026-03-02T00:00:00+00:00", "a", "offered", "c1")
            raise KeyboardInterrupt  # the process is stopped mid-write

        _append(store, events[half:])
        monkeypatch.setattr(stored, "_activity_rows", broken)
        with pytest.raises(KeyboardInterrupt):
            _report(store, fold_every=0)
        monkeypatch.undo()
    with SqliteStore(path) as store:
        assert store.stored_fold(stored.VERSION) == before
        log, read = _report(store)
        assert read == len(events) - half
        _same_as_from_the_first_event(store, log)


def test_the_stored_fold_on_both_databases(durable_location: str | Path) -> None:
    events = _weeks(5)
    with open_store(durable_location) as store:
        assert isinstance(store, SqlStore)
        _append(store, events[:500])
        _report(store, fold_every=0)
        found = store.stored_fold(stored.VERSION)
        assert found is not None and found["events"] == 500 and found["items"] > 10
        _append(store, events[500:])
        log, read = _report(store)
        assert read == len(events) - 500
        _same_as_from_the_first_event(store, log)
        assert store.clear_stored_fold() == 1
        assert store.stored_fold(stored.VERSION) is None


def test_report_all_reads_the_same_with_the_stored_fold_and_the_store_command_writes_it(
    tmp_path: Path,
) -> None:
    events = _weeks(6)
    path = tmp_path / "weeks.sqlite"
    _store_with(events[: len(events) // 2], path).close()
    runner = CliRunner()
    made = runner.invoke(main, ["store", "fold", "--store", str(path)])
    assert made.exit_code == 0, made.output
    with SqliteStore(path) as store:
        found = store.stored_fold(stored.VERSION)
        assert found is not None
        assert made.output.strip() == (
            f"stored fold: {found['items']:,} interactions, {found['events']:,} events "
            f"(through event #{found['through_seq']:,})"
        )
        _append(store, events[len(events) // 2 :])
    base = ["report", "all", "--store", str(path), "--at", "2026-03-30T12:00Z"]
    for fmt in ("table", "csv", "json"):
        with_fold = runner.invoke(main, [*base, "--format", fmt])
        without = runner.invoke(main, [*base, "--format", fmt, "--no-checkpoints"])
        assert with_fold.exit_code == 0 and without.exit_code == 0, with_fold.output
        assert with_fold.output == without.output
    cleared = runner.invoke(main, ["store", "fold", "--store", str(path), "--clear"])
    assert cleared.output.strip() == "stored fold dropped"
