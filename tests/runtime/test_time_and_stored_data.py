"""Reading back stored data (`participant data "k"`, `{{ participant_data['k'] }}`) and time in
expressions (`now("Europe/London").hour`), through the interpreter and the Engine."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from flowlang.runtime import effects as fx
from flowlang.runtime.interpreter import RunResult, run
from flowlang.runtime.program import Program
from flowlang.runtime.state import FlowState, Trigger
from flowlang.store.sqlite import SqliteStore
from tests.runtime.helpers import facts, program
from tests.runtime.test_engine import make_engine, message


def start(prog: Program, **extra: Any) -> RunResult:
    return run(prog, FlowState(), Trigger(kind="message", text="hi"), facts("hi", **extra))


def replies(result: RunResult) -> list[str]:
    return [str(e.content.get("text")) for e in result.effects if isinstance(e, fx.SendReply)]


# ---------------------------------------------------------------- stored data


def test_data_set_earlier_in_the_run_reads_back_as_text() -> None:
    prog = program(
        """\
        set participant data "Customer Segment" to "gold"
        set conversation data "tries" to 2
        if participant data "Customer Segment" == "gold":
            reply "vip {{ participant_data['Customer Segment'] }}"
        reply "tries {{ conversation_data.tries }} is text: {{ conversation_data.tries is string }}"
        if conversation data "tries" == "2":
            reply "as text"
        """
    )
    assert replies(start(prog)) == ["vip gold", "tries 2 is text: True", "as text"]


def test_data_never_stored_is_not_set_in_expressions_and_templates() -> None:
    prog = program(
        """\
        if participant data "segment" is not set:
            reply "unknown segment, {{ participant_data['segment'] or 'none' }}"
        reply "{{ conversation_data.topic is none }}"
        """
    )
    assert replies(start(prog)) == ["unknown segment, none", "True"]


def test_data_stored_by_an_earlier_run_of_the_conversation_is_read() -> None:
    prog = program('reply "segment {{ participant_data.segment }}"')
    stored = {"participant.segment": "gold", "conversation.segment": "not this one"}
    assert replies(start(prog, data=stored)) == ["segment gold"]


def test_a_later_run_reads_what_an_earlier_run_stored_through_the_engine() -> None:
    body = """\
    if participant data "segment" is set:
        reply "welcome back, {{ participant_data['segment'] }} customer"
        end
    set participant data "segment" to "gold"
    reply "first time"
    end
    """
    engine, sent = make_engine(body)
    engine.handle(message("hi"))
    engine.handle(message("hello again", at=timedelta(minutes=1)))
    assert [m.content["text"] for m in sent.sent] == [
        "first time",
        "welcome back, gold customer",
    ]


def test_reading_stored_data_is_text_typed_for_the_checker() -> None:
    from flowlang.language.checker import check
    from flowlang.language.context import FlowContext
    from flowlang.language.parser import parse_text

    text = (
        'flow "T"\nserve messages on web\n\nstate start:\n'
        '    if participant data "age" > 18:\n        end\n'
    )
    parsed = parse_text(text, "t.flow")
    assert parsed.flow is not None
    found = check(parsed.flow, FlowContext()).diagnostics
    assert [d.code for d in found] == ["FL201"]
    assert "a text" in found[0].message


# ---------------------------------------------------------------- time

SUMMER_EVENING = datetime(2026, 7, 1, 17, 30, tzinfo=UTC)  # 18:30 in London (BST)


def test_now_is_the_run_clock_in_the_named_zone() -> None:
    prog = program(
        """\
        if now("Europe/London").hour >= 18:
            reply "London closed"
        if now("UTC").hour >= 18:
            reply "UTC closed"
        """
    )
    assert replies(start(prog, now=SUMMER_EVENING)) == ["London closed"]


def test_fields_of_times_and_dates() -> None:
    prog = program(
        """\
        set t to now("America/New_York")
        reply "{{ wd }}"
        """,
        header="var t: time = not set\nvar wd: text = not set",
    )
    state = start(prog, now=SUMMER_EVENING).state
    t = state.variables["t"]
    assert (t.hour, t.minute) == (13, 30)
    fields = program(
        """\
        set wd to now("Asia/Tokyo").weekday
        set dow to now("Asia/Tokyo").day_of_week
        set tod to now("Asia/Tokyo").time_of_day
        set d to now("Asia/Tokyo").date
        set m to now("Asia/Tokyo").date.month
        """,
        header=(
            "var wd: text = not set\nvar dow: number = 0\nvar tod: duration = 0s\n"
            "var d: date = not set\nvar m: number = 0"
        ),
    )
    v = start(fields, now=SUMMER_EVENING).state.variables
    # 17:30 UTC on Wednesday 1 July is 02:30 on Thursday 2 July in Tokyo
    assert v["wd"] == "Thursday" and v["dow"] == 4
    assert v["tod"] == timedelta(hours=2, minutes=30)
    assert v["d"] == date(2026, 7, 2) and v["m"] == 7


def test_time_of_day_compares_with_durations_and_dates_with_dates() -> None:
    prog = program(
        """\
        if now("Europe/London").time_of_day >= 9h and now("Europe/London").time_of_day < 17h30m:
            reply "open"
        else:
            reply "closed"
        if now("UTC").date < date("2026-12-25") and now("UTC") + 1d > now("UTC"):
            reply "before christmas"
        if date("2026-12-25") - now("UTC").date == 177d:
            reply "177 days to go"
        """
    )
    assert replies(start(prog, now=SUMMER_EVENING)) == [
        "closed",
        "before christmas",
        "177 days to go",
    ]
    morning = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)  # 10:00 in London
    assert replies(start(prog, now=morning))[0] == "open"


def test_a_time_variable_survives_the_state_json_form() -> None:
    prog = program(
        """\
        set t to now("Europe/Paris") + 2h
        set d to now("Europe/Paris").date
        ask "when?" into answer:
            on answer:
                reply "{{ t.hour }} {{ d }}"
        """,
        header="var t: time = not set\nvar d: date = not set",
    )
    first = start(prog, now=SUMMER_EVENING)
    stored = FlowState.from_json(json.loads(json.dumps(first.state.to_json())))
    assert stored.variables["t"].hour == 21 and stored.variables["d"] == date(2026, 7, 1)
    again = run(prog, stored, Trigger(kind="message", text="soon"), facts("soon"))
    assert replies(again) == ["21 2026-07-01"]


def test_an_unknown_zone_from_a_parameter_takes_on_error() -> None:
    prog = program(
        'if now(zone).hour > 3:\n    reply "late"',
        header=(
            'param zone: text = "Mars/Olympus"\n'
            'on error:\n    reply "failed: {{ error.message }}"\n    end'
        ),
    )
    result = start(prog, now=SUMMER_EVENING)
    assert replies(result) == ["failed: unknown time zone 'Mars/Olympus'"]


@settings(max_examples=60, deadline=None)
@given(
    st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ),
    st.sampled_from(["UTC", "Europe/London", "Asia/Kolkata", "America/Los_Angeles"]),
)
def test_fields_agree_with_zoneinfo(clock: datetime, zone: str) -> None:
    from zoneinfo import ZoneInfo

    prog = program(
        """\
        set h to now(z).hour
        set wd to now(z).day_of_week
        set tod to now(z).time_of_day
        """,
        header=f'param z: text = "{zone}"\nvar h: number = 0\nvar wd: number = 0\n'
        "var tod: duration = 0s",
    )
    v = start(prog, now=clock).state.variables
    local = clock.astimezone(ZoneInfo(zone))
    assert v["h"] == local.hour and v["wd"] == local.isoweekday()
    assert v["tod"] == timedelta(hours=local.hour, minutes=local.minute, seconds=local.second)


def test_the_engine_clock_drives_now_so_samples_are_deterministic(tmp_path: Any) -> None:
    body = 'reply "hour {{ h }}"\nend'
    engine, sent = make_engine(
        'set h to now("Europe/London").hour\n' + body,
        header="var h: number = 0",
        store=SqliteStore(str(tmp_path / "s.db")),
    )
    engine.handle(message("hi"))
    assert [m.content["text"] for m in sent.sent] == ["hour 10"]


def test_a_duration_parameter_is_a_duration_in_expressions() -> None:
    """Its value used to reach expressions as a number of seconds: `idle > patience` failed."""
    prog = program(
        'if conversation.idle > patience:\n    reply "welcome back"\nreply "{{ patience }}"',
        header="param patience: duration = 10m",
    )
    idle = {"ongoing": True, "idle": timedelta(minutes=11)}
    assert replies(start(prog, conversation=idle)) == ["welcome back", "0:10:00"]
    # an environment's value, as the deployment file writes it
    longer = start(prog, conversation=idle, params={"patience": "15m"})
    assert replies(longer) == ["0:15:00"]
