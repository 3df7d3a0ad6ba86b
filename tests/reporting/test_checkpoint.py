"""Report checkpoints: folding a checkpoint and the events after it gives the reports the
whole log gives, for every period that starts at or after the checkpoint."""

from __future__ import annotations

import itertools
import json
import random
import sqlite3
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from flowlang.reporting import InteractionLog, Scope, realtime
from flowlang.reporting.checkpoint import (
    FOLD_VERSION,
    KEPT,
    SETTLED_AFTER,
    fold_for_report,
    fold_live,
    restore,
    snapshot,
)
from flowlang.store import SqliteStore
from tests.reporting import day as d
from tests.reporting.figures import every_report

Event = Mapping[str, Any]


def from_checkpoint(events: list[Event], at: datetime, settled: timedelta) -> InteractionLog:
    before = InteractionLog.from_events(e for e in events if e["at"] < at)
    kept = json.loads(json.dumps(snapshot(before, at, settled)))  # as the store keeps it
    log = restore(kept)
    for event in events:
        if event["at"] >= at:
            log.apply(event)
    return log


def check_periods(events: list[Event], moments: Iterable[datetime], settled: timedelta) -> int:
    whole = InteractionLog.from_events(events)
    last = whole.last_event_at
    assert last is not None
    checked = 0
    for at in moments:
        resumed = from_checkpoint(events, at, settled)
        for start in (at, at + (last - at) / 3):
            scope = Scope(start, last + timedelta(seconds=1))
            assert every_report(resumed, scope, last) == every_report(whole, scope, last), (
                at,
                start,
            )
            checked += 1
    return checked


@pytest.fixture(scope="module")
def day_events(tmp_path_factory: pytest.TempPathFactory) -> list[Event]:
    with SqliteStore(d.run_day(tmp_path_factory.mktemp("day"))) as store:
        return list(store.iter_events())


def test_the_scripted_day_resumed_from_any_half_hour(day_events: list[Event]) -> None:
    """Real flows, ACD and store; settling after an hour so the checkpoints drop finished work."""
    moments = [d.SUNDAY + timedelta(minutes=30 * n) for n in range(22, 48 + 36)]
    assert check_periods(day_events, moments, timedelta(hours=1)) == 2 * len(moments)


def _weeks(seed: int) -> list[Event]:
    """Three weeks of conversations: answered (with after-call work), transferred, abandoned,
    expired, left with an agent, reopened the next day; agents changing state."""
    rng = random.Random(seed)
    t0 = datetime(2026, 3, 2, tzinfo=UTC)
    events: list[dict[str, Any]] = []

    def add(kind: str, at: datetime, conv: str | None, **data: Any) -> None:
        events.append({"kind": kind, "at": at, "conversation_id": conv, **data})

    for n in range(300):
        conv, agent = f"c{n}", f"agent{rng.randrange(6)}"
        queue, other = rng.sample(["Retail", "Loans", "Cards"], 2)
        at = t0 + timedelta(minutes=rng.uniform(0, 21 * 24 * 60))
        channel = rng.choice(["web", "whatsapp", "x_public"])
        add("message_in", at, conv, channel=channel, message_kind="message", customer=f"k{n}")
        add("flow_path", at, conv, nodes=["start/0", "routing/1"])
        at += timedelta(seconds=5)
        add("queued", at, conv, queue=queue, skills=["Cards"])
        fate = rng.choice(["answered", "transferred", "abandoned", "expired", "open", "reopened"])
        if fate in ("abandoned", "expired"):
            add(fate, at + timedelta(minutes=rng.uniform(1, 90)), conv, reason="left")
            continue
        at += timedelta(minutes=rng.expovariate(1 / 5))
        add("offered", at, conv, agent=agent, queue=queue)
        add("accepted", at, conv, agent=agent, queue=queue)
        at += timedelta(minutes=rng.uniform(1, 20))
        add("message_out", at, conv, sender="agent", agent=agent)
        if fate == "open":
            continue
        if fate == "transferred":
            add("transferred", at, conv, to_queue=other)
            at += timedelta(minutes=3)
            add("accepted", at, conv, agent="agent9", queue=other)
            agent = "agent9"
        at += timedelta(minutes=rng.uniform(1, 20))
        add("completed", at, conv, agent=agent, wrap_up="Resolved")
        add("after_call_work", at, conv, agent=agent, queue=queue)
        add("wrap_up_ended", at + timedelta(minutes=2), conv, agent=agent, wrap_up="Resolved")
        if fate == "reopened":
            at += timedelta(hours=rng.uniform(1, 60))
            add("message_in", at, conv, channel=channel, message_kind="message", customer=f"k{n}")
            add("flow_ended", at + timedelta(seconds=1), conv, reason="resolved by bot")
    for hour in range(0, 21 * 24, 7):
        add("agent_state", t0 + timedelta(hours=hour), None, agent=f"agent{hour % 6}", state="away")
    events.sort(key=lambda e: e["at"])
    return events


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_three_weeks_resumed_from_checkpoints_that_settle_old_interactions(seed: int) -> None:
    events = _weeks(seed)
    first = events[0]["at"]
    moments = [first + timedelta(days=n, hours=n % 24) for n in range(8, 21, 3)]
    assert check_periods(events, moments, SETTLED_AFTER) == 2 * len(moments)
    # and the checkpoints do drop what is settled: a week-old finished conversation is gone
    at = moments[-1]
    before = InteractionLog.from_events(e for e in events if e["at"] < at)
    kept = snapshot(before, at)
    assert 0 < len(kept["interactions"]) < len(before.interactions) / 2


def _store_with(events: list[Event], path: Path) -> SqliteStore:
    store = SqliteStore(path)
    with store.transaction():
        for e in events:
            data = {k: v for k, v in e.items() if k not in ("kind", "at", "conversation_id")}
            store.append_event(e["kind"], e["at"], e["conversation_id"], data)
    return store


def _midnights(events: list[Event]) -> tuple[datetime, datetime, datetime]:
    """The first day's midnight, and a week and two weeks after it."""
    first = events[0]["at"].replace(hour=0, minute=0, second=0, microsecond=0)
    return first, first + timedelta(days=7), first + timedelta(days=14)


def _live_rows(log: InteractionLog, at: datetime) -> list[list[dict[str, Any]]]:
    return [r.rows for r in realtime(log, at, Scope())]


class Reads:
    """Records where each read of the log starts."""

    def __init__(self, store: SqliteStore) -> None:
        self.store, self.starts = store, []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def iter_events(self, start: Any = None, end: Any = None, through_seq: Any = None) -> Any:
        self.starts.append(start)
        return self.store.iter_events(start, end, through_seq)


def test_a_report_leaves_a_checkpoint_the_next_period_starts_from(tmp_path: Path) -> None:
    events = _weeks(4)
    first = events[0]["at"].replace(hour=0, minute=0, second=0, microsecond=0)
    week1, week2, week3 = (first + timedelta(days=7 * n) for n in (1, 2, 3))
    now = week3 + timedelta(days=30)
    with _store_with(events, tmp_path / "s.db") as store:
        reads = Reads(store)
        fold_for_report(reads, first, [week1], now)
        fold_for_report(reads, week1, [week2], now)
        (second,) = fold_for_report(reads, week2, [week3], now)
        assert reads.starts == [None, week1, week2]  # each period read from the last one's end

        whole = InteractionLog.from_events(e for e in events if e["at"] < week3)
        scope = Scope(week2, week3)
        assert every_report(second, scope, week3) == every_report(whole, scope, week3)
        (again,) = fold_for_report(reads, week2, [week3], now, use_checkpoints=False)
        assert reads.starts[-1] is None and every_report(again, scope, week3) == every_report(
            second, scope, week3
        )


def test_a_late_event_dated_before_a_checkpoint_makes_it_stale(tmp_path: Path) -> None:
    events = _weeks(5)
    first, week1, week2 = _midnights(events)
    now = week2 + timedelta(days=30)
    with _store_with(events, tmp_path / "s.db") as store:
        fold_for_report(store, first, [week1], now)
        assert store.report_checkpoint(week1, FOLD_VERSION) is not None
        # a dead letter replayed today, with the time it happened: before the checkpoint
        late = week1 - timedelta(hours=1)
        with store.transaction():
            store.append_event("message_in", late, "late-1", {"channel": "web", "customer": "k"})
        assert store.report_checkpoint(week1, FOLD_VERSION) is None  # dropped, not trusted
        reads = Reads(store)
        (log,) = fold_for_report(reads, week1, [week2], now)
        assert reads.starts == [None] and "late-1" in log.interactions
        assert store.report_checkpoint(week1, FOLD_VERSION + 1) is None  # another fold's


def test_the_report_command_reads_the_same_figures_with_and_without_checkpoints(
    tmp_path: Path,
) -> None:
    from click.testing import CliRunner

    from flowlang.cli import main

    path = d.run_day(tmp_path)
    args = ["report", "all", "--store", str(path), "--format", "json", "--at", "2026-01-05T12:00Z"]
    monday, morning = (
        ["--from", "2026-01-04", "--to", "2026-01-05T10:00Z"],
        [
            "--from",
            "2026-01-05T10:00Z",
            "--to",
            "2026-01-06",
        ],
    )
    runner = CliRunner()
    assert runner.invoke(main, [*args, *monday]).exit_code == 0  # leaves a checkpoint at 10:00
    with SqliteStore(path) as store:
        at = datetime(2026, 1, 5, 10, tzinfo=UTC)
        assert store.report_checkpoint(at, FOLD_VERSION) is not None
    resumed = runner.invoke(main, [*args, *morning])
    whole = runner.invoke(main, [*args, *morning, "--no-checkpoints"])
    assert resumed.exit_code == 0 and resumed.output == whole.output
    assert json.loads(whole.output)["reports"][0]["rows"]  # the period has interactions
    live = ["report", "realtime", "--store", str(path), "--format", "json"]
    for at in ("2026-01-05T10:00Z", "2026-01-05T11:30Z"):  # from the checkpoint at 10:00
        resumed = runner.invoke(main, [*live, "--at", at])
        whole = runner.invoke(main, [*live, "--at", at, "--no-checkpoints"])
        assert resumed.exit_code == 0 and resumed.output == whole.output
        assert any(r["rows"] for r in json.loads(whole.output)["reports"])


def test_a_real_time_moment_before_the_period_does_not_start_from_a_later_checkpoint(
    tmp_path: Path,
) -> None:
    events = _weeks(6)
    first, week1, week2 = _midnights(events)
    now = week2 + timedelta(days=30)
    with _store_with(events, tmp_path / "s.db") as store:
        fold_for_report(store, first, [week1], now)  # a checkpoint at week1
        moment = week1 - timedelta(days=2)
        _history, live = fold_for_report(store, week1, [week2, moment], now)
        alone = InteractionLog.from_events(e for e in events if e["at"] < moment)
        assert _live_rows(live, moment) == _live_rows(alone, moment)


def test_the_real_time_view_starts_from_the_latest_checkpoint_before_it_and_leaves_none(
    tmp_path: Path,
) -> None:
    events = _weeks(9)
    first, week1, week2 = _midnights(events)
    with _store_with(events, tmp_path / "s.db") as store:
        fold_for_report(store, first, [week1], week2 + timedelta(days=30))
        fold_for_report(store, week1, [week2], week2 + timedelta(days=30))
        saved = store.db.execute("SELECT count(*) FROM report_checkpoints").fetchone()
        reads = Reads(store)
        for moment in (week1 + timedelta(hours=30), week2 + timedelta(days=3), week1):
            alone = InteractionLog.from_events(e for e in events if e["at"] < moment)
            live = fold_live(reads, moment)
            assert _live_rows(live, moment) == _live_rows(alone, moment)
        assert reads.starts == [week1, week2, week1]
        assert store.db.execute("SELECT count(*) FROM report_checkpoints").fetchone() == saved
        everything = fold_live(reads)  # a host seeding its live log: every event
        assert reads.starts[-1] == week2
        whole = InteractionLog.from_events(events)
        last = whole.last_event_at
        assert last is not None and everything.last_event_at == last
        assert _live_rows(everything, last) == _live_rows(whole, last)
        before = first + timedelta(days=3)
        fold_live(reads, before)
        fold_live(reads, week2, use_checkpoints=False)
        assert reads.starts[-2:] == [None, None]


def test_a_store_keeps_only_the_latest_checkpoints(tmp_path: Path) -> None:
    events = _weeks(7)
    first = events[0]["at"].replace(hour=0, minute=0, second=0, microsecond=0)
    days = [first + timedelta(days=n) for n in range(KEPT + 3)]
    with _store_with(events, tmp_path / "s.db") as store:
        for start, end in itertools.pairwise(days):
            fold_for_report(store, start, [end], days[-1] + timedelta(days=30))
        kept = [row[0] for row in store.db.execute("SELECT at FROM report_checkpoints")]
        assert sorted(kept) == [day.isoformat() for day in days[-KEPT:]]


def test_a_store_opened_read_only_still_reports_and_keeps_no_checkpoint(tmp_path: Path) -> None:
    events = _weeks(8)
    first, week1, _ = _midnights(events)
    path = tmp_path / "s.db"
    _store_with(events, path).close()
    store = SqliteStore(path)
    store.db.close()
    store.db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    (log,) = fold_for_report(store, first, [week1], week1 + timedelta(days=30))
    whole = InteractionLog.from_events(e for e in events if e["at"] < week1)
    scope = Scope(first, week1)
    assert every_report(log, scope, week1) == every_report(whole, scope, week1)
    assert store.db.execute("SELECT count(*) FROM report_checkpoints").fetchone() == (0,)
    store.db.close()


def test_the_store_command_lists_the_checkpoints_and_clears_them(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from flowlang.cli import main

    events = _weeks(10)
    first, week1, week2 = _midnights(events)
    path = tmp_path / "s.db"
    with _store_with(events, path) as store:
        fold_for_report(store, first, [week1], week2 + timedelta(days=30))
        fold_for_report(store, week1, [week2], week2 + timedelta(days=30))
        store.db.execute(
            "UPDATE report_checkpoints SET version = 0 WHERE at = ?", (week1.isoformat(),)
        )
        total = store.last_event_seq()
    runner = CliRunner()
    listed = runner.invoke(main, ["store", "checkpoints", "--store", str(path)])
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert lines[0].startswith(f"{week2.isoformat()}  ") and lines[0].endswith(
        f"(taken when the log ended at event #{total:,})"
    )
    assert lines[1].startswith(week1.isoformat()) and lines[1].endswith(
        f"(unused: folded by version 0, reports use {FOLD_VERSION})"
    )
    assert lines[2] == "2 checkpoint(s)"
    rows = json.loads(
        runner.invoke(
            main, ["store", "checkpoints", "--store", str(path), "--format", "json"]
        ).output
    )
    assert [(r["at"], r["used"]) for r in rows] == [
        (week2.isoformat(), True),
        (week1.isoformat(), False),
    ]
    assert all(r["bytes"] > 0 and r["through_seq"] == total for r in rows)
    cleared = runner.invoke(main, ["store", "checkpoints", "--store", str(path), "--clear"])
    assert cleared.output == "2 checkpoint(s) dropped\n"
    with SqliteStore(path) as store:
        assert store.report_checkpoints() == []
