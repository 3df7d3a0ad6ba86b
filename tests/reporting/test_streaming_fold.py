"""A fold that sets interactions aside on disk (`InteractionLog(spill_over=N)`) gives every
report exactly as the fold that keeps everything in memory, in every output format, while it
holds at most about N interactions."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from flowlang.cli import main
from flowlang.reporting import (
    InteractionLog,
    Scope,
    agent_performance,
    interaction_details,
    timeline,
    to_csv,
    to_html,
    to_json,
    to_table,
)
from flowlang.reporting import checkpoint as checkpoints
from flowlang.reporting.render import to_data
from flowlang.reporting.requested import Known, reports_of
from flowlang.store import SqliteStore
from tests.reporting import day as d
from tests.reporting.test_checkpoint import _store_with, _weeks

Event = Mapping[str, Any]


KNOWN = Known({"Loans": timedelta(minutes=1)}, ["Idle"], ["nobody"])


def _outputs(log: InteractionLog, scope: Scope, now: datetime) -> list[Any]:
    """Every report's rows and total, and each output format's text."""
    reports = reports_of("all", log, log, scope, now, KNOWN)
    assert [r.kind for r in reports][:3] == ["interactions", "agents", "queues"]
    whole = {"period": {}, "reports": [to_data(r) for r in reports]}  # JSON, held whole
    assert to_json(reports, {}) == json.dumps(whole, indent=2, ensure_ascii=False)
    return [
        [(r.kind, list(r.rows), r.total) for r in reports],
        [to_table(r) for r in reports],
        [to_csv(r) for r in reports],
        to_json(reports, {}),
        to_html(reports, "t", "p", None),
    ]


def _same_reports(events: Sequence[Event], spill_over: int) -> InteractionLog:
    whole = InteractionLog.from_events(events)
    streamed = InteractionLog.from_events(events, spill_over=spill_over)
    last = whole.last_event_at
    assert last is not None
    first = events[0]["at"]
    scopes = [
        Scope(),
        Scope(first + (last - first) / 3, last - (last - first) / 4),
        Scope(media={"social_public"}),
        Scope(queues={"Loans"}, agents={"agent1", "agent9"}),
    ]
    for scope in scopes:
        assert _outputs(streamed, scope, last) == _outputs(whole, scope, last), scope
    span = Scope(first, last)
    series = timeline(streamed, first, last, span, timedelta(hours=6))
    assert series == timeline(whole, first, last, span, timedelta(hours=6))
    return streamed


@pytest.mark.parametrize("seed", [1, 2])
def test_three_weeks_set_aside_give_every_report_the_whole_fold_gives(seed: int) -> None:
    events = _weeks(seed)
    streamed = _same_reports(events, spill_over=20)
    conversations = {e["conversation_id"] for e in events if e["conversation_id"]}
    # it did set them aside: memory holds at most about 20 of the 300
    assert streamed.spilled and len(streamed.interactions) <= 21
    assert sum(1 for _ in streamed.all_interactions()) == len(conversations)
    assert len(streamed.agent_activity) < 100


def test_the_scripted_day_set_aside_gives_every_report_the_whole_fold_gives(
    tmp_path: Path,
) -> None:
    with SqliteStore(d.run_day(tmp_path)) as store:
        events = list(store.iter_events())
    assert _same_reports(events, spill_over=2).spilled


def test_a_conversation_set_aside_is_taken_back_when_it_writes_again() -> None:
    """Not a new row: the reopened conversation is the same interaction, with its history."""
    t0 = datetime(2026, 3, 2, tzinfo=UTC)
    log = InteractionLog(spill_over=2)
    log.apply({"kind": "message_in", "at": t0, "conversation_id": "old", "channel": "web"})
    log.apply({"kind": "queued", "at": t0, "conversation_id": "old", "queue": "Q"})
    log.apply({"kind": "expired", "at": t0, "conversation_id": "old"})
    for n in range(5):  # others push it out of memory
        at = t0 + timedelta(days=n + 1)
        log.apply({"kind": "message_in", "at": at, "conversation_id": f"c{n}", "channel": "web"})
    assert "old" not in log.interactions and log.find("old") is not None
    later = t0 + timedelta(days=9)
    log.apply({"kind": "message_in", "at": later, "conversation_id": "old", "channel": "web"})
    (row,) = [r for r in interaction_details(log, Scope()).rows if r["conversation"] == "old"]
    assert row["started"] == t0 and row["messages_in"] == 2 and row["queues"] == ["Q"]
    assert sum(1 for i in log.all_interactions() if i.id == "old") == 1


_KINDS = [
    "message_in",
    "queued",
    "offered",
    "accepted",
    "declined",
    "message_out",
    "transferred",
    "completed",
    "after_call_work",
    "wrap_up_ended",
    "abandoned",
    "expired",
    "requeued",
    "flow_ended",
    "agent_state",
    "survey_answer",
]


@st.composite
def _logs(draw: st.DrawFn) -> list[dict[str, Any]]:
    at = datetime(2026, 3, 2, tzinfo=UTC)
    events: list[dict[str, Any]] = []
    for _ in range(draw(st.integers(1, 60))):
        at += timedelta(minutes=draw(st.sampled_from([0, 1, 7, 90, 3 * 24 * 60, 6 * 24 * 60])))
        kind = draw(st.sampled_from(_KINDS))
        conv = f"c{draw(st.integers(0, 8))}"
        agent = f"agent{draw(st.integers(0, 2))}"
        events.append(
            {
                "kind": kind,
                "at": at,
                "conversation_id": None if kind == "agent_state" else conv,
                "channel": draw(st.sampled_from(["web", "x_public", "x_dm"])),
                "queue": draw(st.sampled_from(["Retail", "Loans"])),
                "agent": agent,
                "sender": "agent",
                "state": "away",
                "wrap_up": draw(st.sampled_from([None, "Resolved"])),
                "message_kind": draw(st.sampled_from(["message", "close"])),
                "survey": "csat",
                "question": draw(st.sampled_from(["score", "comment"])),
                "answer": "rating",
                "value": draw(st.integers(1, 5)),
                "high": 5,
            }
        )
    return events


@settings(max_examples=60, deadline=None)
@given(_logs(), st.integers(1, 4))
def test_any_log_set_aside_gives_the_reports_the_whole_fold_gives(
    events: list[dict[str, Any]], spill_over: int
) -> None:
    _same_reports(events, spill_over)


def test_report_all_from_the_command_is_the_same_with_a_small_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`flowlang report all` in every format, folding with 3 interactions in memory at most,
    writes what it writes when everything fits (to the terminal and to a file)."""
    events = _weeks(4)
    path = tmp_path / "weeks.sqlite"
    _store_with(events, path).close()
    runner = CliRunner()
    base = ["report", "all", "--store", str(path), "--at", "2026-03-20T12:00Z", "--no-checkpoints"]
    for fmt in ("table", "csv", "json", "html"):
        args = [*base, "--format", fmt, "--from", "2026-03-05", "--to", "2026-03-19"]
        monkeypatch.setattr(checkpoints, "SPILL_OVER", 1_000_000)
        whole = runner.invoke(main, args)
        monkeypatch.setattr(checkpoints, "SPILL_OVER", 3)
        streamed = runner.invoke(main, args)
        written = runner.invoke(main, [*args, "-o", str(tmp_path / f"out.{fmt}")])
        assert whole.exit_code == 0 and streamed.exit_code == 0, streamed.output
        assert streamed.output == whole.output
        assert written.exit_code == 0
        assert (tmp_path / f"out.{fmt}").read_text(encoding="utf-8") == whole.output
        if fmt == "json":
            assert len(json.loads(whole.output)["reports"][0]["rows"]) > 100


def test_activity_set_aside_before_its_channel_is_known_counts_in_the_channels_media() -> None:
    """An offer logged before the conversation's channel is known, set aside, then the
    channel comes: the agent's offer counts in that channel's media, as when nothing is set
    aside (the media of activity set aside is kept only once it can no longer change)."""
    t0 = datetime(2026, 3, 2, tzinfo=UTC)
    events: list[dict[str, Any]] = [
        {"kind": "offered", "at": t0, "conversation_id": "late", "agent": "agent1"},
        {"kind": "offered", "at": t0, "conversation_id": "web1", "agent": "agent1"},
        {"kind": "message_in", "at": t0, "conversation_id": "web1", "channel": "web"},
    ]
    for n in range(6):  # others push both out of memory
        at = t0 + timedelta(minutes=n + 1)
        events.append(
            {"kind": "message_in", "at": at, "conversation_id": f"c{n}", "channel": "web"}
        )
    later = t0 + timedelta(hours=1)
    events.append(
        {"kind": "message_in", "at": later, "conversation_id": "late", "channel": "x_public"}
    )
    for media in ("social_public", "message"):
        scope = Scope(media={media})
        whole = agent_performance(InteractionLog.from_events(events), scope)
        streamed_log = InteractionLog.from_events(events, spill_over=2)
        assert streamed_log.spilled
        streamed = agent_performance(streamed_log, scope)
        assert list(streamed.rows) == list(whole.rows)
        (row,) = whole.rows
        assert row["offered"] == 1, media
