"""The fold from events to interactions, on hand-written event logs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from click.testing import CliRunner

from flowlang.cli import main
from flowlang.reporting import InteractionLog, Scope, agent_performance, queue_performance
from flowlang.reporting.render import format_seconds
from flowlang.store import SqliteStore

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def ev(kind: str, minute: float, conv: str | None = "c1", **data: Any) -> dict[str, Any]:
    return {"kind": kind, "at": at(minute), "conversation_id": conv, **data}


def message(minute: float, conv: str = "c1", channel: str = "web") -> dict[str, Any]:
    return ev("message_in", minute, conv, channel=channel, message_kind="message", customer="k1")


def test_after_call_work_counts_in_handle_time_until_the_wrap_up_ends() -> None:
    log = InteractionLog.from_events(
        [
            message(0),
            ev("queued", 1, queue="Q", skills=["Cards"]),
            ev("accepted", 3, agent="ann", queue="Q"),
            ev("withdrawn", 10, agent="ann", queue="Q", phase="active"),
            ev("after_call_work", 10, agent="ann", queue="Q", needs_wrap_up=True),
            ev("abandoned", 10, reason="chat closed"),
            ev("wrap_up_ended", 12, agent="ann", queue="Q", wrap_up="Resolved"),
        ]
    )
    item = log.interactions["c1"]
    segment = item.segments[0]
    assert (segment.end, segment.ended_at, segment.work_ended_at) == (
        "customer_left",
        at(10),
        at(12),
    )
    assert item.handle_seconds(at(60)) == 9 * 60  # 09:03 to 09:12
    assert item.outcome == "customer left"  # answered first: not an abandon
    figures = queue_performance(log, Scope()).rows[0]
    assert (figures["abandoned"], figures["answered"]) == (0, 1)


def test_declines_and_no_answers_keep_the_interaction_waiting() -> None:
    log = InteractionLog.from_events(
        [
            message(0),
            ev("queued", 0, queue="Q"),
            ev("offered", 0, agent="ann", queue="Q"),
            ev("declined", 1, agent="ann", queue="Q"),
            ev("requeued", 1, queue="Q"),
            ev("offered", 1, agent="bo", queue="Q"),
            ev("not_responding", 3, agent="bo"),
            ev("requeued", 3, queue="Q"),
            ev("offered", 4, agent="cy", queue="Q"),
            ev("accepted", 5, agent="cy", queue="Q"),
        ]
    )
    item = log.interactions["c1"]
    assert len(item.visits) == 1 and item.visits[0].wait_seconds(at(9)) == 5 * 60
    rows = {r["agent"]: r for r in agent_performance(log, Scope()).rows}
    assert (rows["ann"]["offered"], rows["ann"]["declined"]) == (1, 1)
    assert rows["bo"]["not_responding"] == 1
    assert rows["cy"]["answered"] == 1


def test_an_agent_who_let_an_offer_time_out_is_not_responding_until_they_set_a_state() -> None:
    events = [
        {"kind": "agent_state", "at": at(0), "conversation_id": None, "agent": "bo",
         "state": "available"},
        message(0),
        ev("queued", 0, queue="Q"),
        ev("offered", 1, agent="bo", queue="Q"),
        ev("not_responding", 3, agent="bo"),
        ev("requeued", 3, queue="Q"),
    ]  # fmt: skip
    log = InteractionLog.from_events(events)
    assert log.agent_states["bo"] == ("not_responding", at(3))
    back = {"kind": "agent_state", "at": at(9), "conversation_id": None, "agent": "bo"}
    log.apply({**back, "state": "available"})
    assert log.agent_states["bo"] == ("available", at(9))


def test_a_route_to_one_agent_is_not_a_queue() -> None:
    log = InteractionLog.from_events(
        [
            message(0),
            ev("agent_requested", 0, agent="ann"),
            ev("agent_unavailable", 0, agent="ann"),
            ev("queued", 0, queue="Q"),
            ev("accepted", 2, agent="bo", queue="Q"),
        ]
    )
    item = log.interactions["c1"]
    assert [(v.queue, v.result) for v in item.visits] == [(None, "unavailable"), ("Q", "answered")]
    assert [r["queue"] for r in queue_performance(log, Scope()).rows] == ["Q"]


def test_a_message_after_completion_reopens_the_conversation() -> None:
    log = InteractionLog.from_events(
        [
            message(0),
            ev("queued", 0, queue="Q"),
            ev("accepted", 1, agent="ann", queue="Q"),
            ev("completed", 5, agent="ann", wrap_up="Resolved", queue="Q"),
            message(30),
        ]
    )
    item = log.interactions["c1"]
    assert (item.outcome, item.state, item.ended_at) == ("", "flow", None)
    assert "c1" in log.active["message"]
    assert item.messages_in == 2


def test_a_transfer_to_an_agent_waits_in_the_queue_it_came_from() -> None:
    log = InteractionLog.from_events(
        [
            message(0),
            ev("queued", 0, queue="Q"),
            ev("accepted", 1, agent="ann", queue="Q"),
            ev("transferred", 4, agent="ann", to_queue=None, to_agent="bo"),
            ev("accepted", 6, agent="bo", queue="Q"),
            ev("completed", 9, agent="bo", queue="Q"),
        ]
    )
    row = queue_performance(log, Scope()).rows[0]
    assert (row["routed"], row["answered"], row["transferred"]) == (2, 2, 1)
    assert row["handle_total"] == (3 + 3) * 60


def test_inactive_customer_disconnected_then_after_call_work() -> None:
    log = InteractionLog.from_events(
        [
            message(0),
            ev("queued", 0, queue="Q"),
            ev("accepted", 0, agent="ann", queue="Q"),
            ev("disconnected", 30, agent="ann", queue="Q", reason="inactive"),
            ev("after_call_work", 30, agent="ann", queue="Q"),
            ev("wrap_up_ended", 32, agent="ann", queue="Q"),
        ]
    )
    item = log.interactions["c1"]
    assert item.outcome == "disconnected"
    assert item.handle_seconds(at(99)) == 32 * 60


def test_events_it_does_not_know_or_without_a_conversation_are_skipped() -> None:
    log = InteractionLog.from_events(
        [ev("receipt", 0, None, channel="web"), ev("something_new", 1), message(2)]
    )
    assert list(log.interactions) == ["c1"]
    assert log.last_event_at == at(2)


def test_one_pass_gives_a_log_up_to_each_end_the_same_as_folding_each() -> None:
    events = [
        message(0),
        ev("queued", 1, queue="Q", skills=["Cards"]),
        ev("accepted", 3, agent="ann", queue="Q"),
        message(4, conv="c2"),
        ev("queued", 5, conv="c2", queue="Q"),
    ]
    ends = [at(4), None, at(4), at(2)]
    logs = InteractionLog.up_to_each(iter(events), ends)
    for end, log in zip(ends, logs, strict=True):
        alone = InteractionLog.from_events(e for e in events if end is None or e["at"] < end)
        assert queue_performance(log, Scope()).rows == queue_performance(alone, Scope()).rows
        assert (log.last_event_at, list(log.interactions)) == (
            alone.last_event_at,
            list(alone.interactions),
        )
    assert logs[0] is logs[2] and logs[1] is not logs[0]
    assert [len(log.interactions) for log in logs] == [1, 2, 1, 1]


def test_durations_read_like_a_clock() -> None:
    assert [format_seconds(v) for v in (0, 4.5, 65, 3725, 90000)] == [
        "0:00",
        "0:05",
        "1:05",
        "1:02:05",
        "25:00:00",
    ]


def test_command_line_mistakes_are_reported_not_raised(tmp_path: Any) -> None:
    runner = CliRunner()
    missing = runner.invoke(main, ["report", "queues", "--store", str(tmp_path / "none.db")])
    assert missing.exit_code == 2 and "does not exist" in missing.output
    store = tmp_path / "cc.db"
    SqliteStore(store).close()
    bad = runner.invoke(main, ["report", "queues", "--store", str(store), "--from", "monday"])
    assert bad.exit_code == 2
    assert "'monday' is not a date or time" in bad.output
    backwards = runner.invoke(
        main,
        ["report", "queues", "--store", str(store), "--from", "2026-01-06", "--to", "2026-01-05"],
    )
    assert backwards.exit_code == 2 and "--to must be after --from" in backwards.output
    empty = runner.invoke(main, ["report", "agents", "--store", str(store)])
    assert empty.exit_code == 0 and "(nothing in this period)" in empty.output


def test_an_interaction_given_to_an_auto_answer_agent_counts_as_offered_to_them() -> None:
    log = InteractionLog.from_events(
        [
            message(0),
            ev("queued", 1, queue="Q"),
            ev("accepted", 1, agent="ann", queue="Q", auto_answer=True),
            message(2, conv="c2"),
            ev("queued", 2, conv="c2", queue="Q"),
            ev("offered", 3, conv="c2", agent="bob", queue="Q"),
            ev("accepted", 4, conv="c2", agent="bob", queue="Q"),
        ]
    )
    rows = {r["agent"]: r for r in agent_performance(log, Scope()).rows}
    assert [(rows[a]["offered"], rows[a]["answered"]) for a in ("ann", "bob")] == [(1, 1), (1, 1)]


def test_closing_the_chat_or_deleting_the_post_is_not_a_message_in() -> None:
    log = InteractionLog.from_events(
        [
            message(0),
            ev("message_in", 1, channel="web", message_kind="message", customer="k1"),
            ev("message_in", 2, channel="web", message_kind="close", customer="k1"),
            ev("message_in", 0, conv="p1", channel="x_public", message_kind="post"),
            ev("message_in", 1, conv="p1", channel="x_public", message_kind="edit"),
            ev("message_in", 2, conv="p1", channel="x_public", message_kind="delete"),
        ]
    )
    assert log.interactions["c1"].messages_in == 2
    assert log.interactions["p1"].messages_in == 2  # the post and its edit


def test_unsending_a_message_is_not_a_message_in_and_does_not_reopen() -> None:
    log = InteractionLog.from_events(
        [
            ev("message_in", 0, conv="i1", channel="instagram", message_kind="message"),
            ev("completed", 1, conv="i1"),
            ev("message_in", 2, conv="i1", channel="instagram", message_kind="unsend"),
        ]
    )
    item = log.interactions["i1"]
    assert item.messages_in == 1 and item.state == "ended"
