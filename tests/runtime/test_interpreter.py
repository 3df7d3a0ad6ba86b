"""The interpreter, construct by construct: what a flow does with each kind of step."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any, Literal, TypeVar

import pytest

from flowlang.runtime import effects as fx
from flowlang.runtime.interpreter import MAX_STEPS, RunResult, run
from flowlang.runtime.program import Program
from flowlang.runtime.state import FlowState, Trigger
from tests.runtime.helpers import NOW, facts, program

E = TypeVar("E")


def start(prog: Program, text: str = "hello", **extra: Any) -> RunResult:
    return run(prog, FlowState(), Trigger(kind="message", text=text), facts(text, **extra))


def of(result: RunResult, kind: type[E]) -> list[E]:
    return [e for e in result.effects if isinstance(e, kind)]


def test_reply_renders_template_with_flow_values() -> None:
    prog = program('reply "Hi {{ customer.name }}, you said {{ message.text }}"\nend')
    result = start(prog, "{{ 7 * 7 }}")
    (reply,) = of(result, fx.SendReply)
    # customer text is data: it is never evaluated as a template
    assert reply.content == {"kind": "text", "text": "Hi Ana, you said {{ 7 * 7 }}"}
    assert result.state.status == "ended"


def test_quick_replies_and_media_content() -> None:
    prog = program(
        'reply "Pick one" with quick replies "Loans", "Cards"\n'
        'reply image "https://x.test/a.png" caption "fees"'
    )
    first, second = of(start(prog), fx.SendReply)
    assert first.content == {
        "kind": "quick_replies",
        "text": "Pick one",
        "options": ["Loans", "Cards"],
    }
    assert second.content["kind"] == "image"
    assert second.content["caption"] == "fees"


def test_window_guard_travels_with_the_reply() -> None:
    prog = program('reply "Still there?" if window closed send template "follow" with n = 1')
    (reply,) = of(start(prog), fx.SendReply)
    assert reply.guard == {
        "action": "template",
        "content": {"kind": "template", "name": "follow", "parameters": {"n": 1}},
    }


def test_if_elif_else_and_variables() -> None:
    prog = program(
        """\
        if message.text contains "card":
            set topic to "cards"
        elif message.text contains "loan":
            set topic to "loans"
        else:
            set topic to "other"
        reply "{{ topic }}"
        """,
        header="var topic: text = not set",
    )
    assert of(start(prog, "a LOAN please"), fx.SendReply)[0].content["text"] == "loans"
    assert of(start(prog, "my card"), fx.SendReply)[0].content["text"] == "cards"
    assert of(start(prog, "hi"), fx.SendReply)[0].content["text"] == "other"


def test_switch_on_channel() -> None:
    prog = program("""\
        switch message.channel:
            case "line":
                set language to "ja"
            case "whatsapp", "sms":
                set language to "en"
            default:
                set language to "es"
        route to queue "Q"
        """)
    (route,) = of(start(prog), fx.RouteToQueue)
    assert route.language == "en"


def test_keywords_add_skills_and_priority_then_route() -> None:
    prog = program("""\
        match keywords:
            when "fee*":
                add skill "Billing" min 3
            when "#nothappy":
                add skill "Complaints"
                set priority to priority + 10
            otherwise:
                add skill "General"
        route to queue "Retail":
            skill "Accounts"
            language "en"
        """)
    (route,) = of(start(prog, "New FEES?! #nothappy"), fx.RouteToQueue)
    assert route.queue == "Retail"
    assert route.skills == [
        {"skill": "Billing", "min": 3},
        {"skill": "Complaints", "min": None},
        {"skill": "Accounts", "min": None},
    ]
    assert route.priority == 10
    (other,) = of(start(prog, "hello"), fx.RouteToQueue)
    assert [s["skill"] for s in other.skills] == ["General", "Accounts"]


def test_match_first_runs_only_the_first_matching_when() -> None:
    prog = program("""\
        match first keywords:
            when "card*":
                add skill "Cards"
            when "fee*":
                add skill "Billing"
        route to queue "Q"
        """)
    (route,) = of(start(prog, "fees on my card"), fx.RouteToQueue)
    assert [s["skill"] for s in route.skills] == ["Cards"]


def test_not_actionable_ends_the_flow() -> None:
    prog = program("""\
        match keywords:
            when "help":
                log "actionable"
            otherwise:
                mark not actionable "no keyword"
        route to queue "Q"
        """)
    result = start(prog, "nice weather")
    assert of(result, fx.MarkNotActionable)[0].reason == "no keyword"
    assert not of(result, fx.RouteToQueue)
    assert result.state.status == "ended"


def test_ask_suspends_and_the_answer_resumes() -> None:
    prog = program("""\
        ask "Account number?" into account wait 10m:
            on answer:
                link customer by "account_number" to account
                reply "Thanks {{ account }}"
            on timeout:
                reply "No answer"
        end
        """)
    first = start(prog)
    assert first.state.status == "waiting"
    (timer,) = of(first, fx.StartTimer)
    assert timer.at == NOW + timedelta(minutes=10)
    state = FlowState.from_json(json.loads(json.dumps(first.state.to_json())))  # survives JSON
    second = run(prog, state, Trigger(kind="message", text="12345678"), facts("12345678"))
    assert of(second, fx.LinkIdentity)[0].value == "12345678"
    assert of(second, fx.SendReply)[0].content["text"] == "Thanks 12345678"
    timed_out = run(prog, state, Trigger(kind="timer", timer=timer.timer), facts())
    assert of(timed_out, fx.SendReply)[0].content["text"] == "No answer"


def test_stale_timer_is_ignored() -> None:
    prog = program('ask "?" into a wait 1m:\n    on timeout:\n        end "late"')
    first = start(prog)
    result = run(prog, first.state, Trigger(kind="timer", timer="other#9"), facts())
    assert result.effects == []
    assert result.state.status == "waiting"


def test_bot_outcomes_and_slots() -> None:
    prog = program("""\
        hand off to bot "FAQ Bot" wait 15m:
            on resolved:
                end "resolved by bot"
            on escalate:
                switch bot.intent:
                    case "loans":
                        add skill "Loans"
            on failure:
                add skill "General"
        route to queue "Q"
        """)
    first = start(prog)
    assert of(first, fx.HandOffToBot)[0].bot == "FAQ Bot"
    esc = run(prog, first.state, Trigger(kind="bot", outcome="escalate", intent="loans"), facts())
    assert [s["skill"] for s in of(esc, fx.RouteToQueue)[0].skills] == ["Loans"]
    done = run(prog, first.state, Trigger(kind="bot", outcome="resolved"), facts())
    assert of(done, fx.EndFlow)[0].reason == "resolved by bot"


def test_data_action_outputs_become_a_record() -> None:
    prog = program("""\
        call data action "CRM Lookup" with phone = customer.phone into crm:
            on success:
                set participant data "segment" to crm.segment
            on not_found:
                log "new customer"
        end
        """)
    first = start(prog)
    assert of(first, fx.CallDataAction)[0].action == "CRM Lookup"
    ok = run(
        prog,
        first.state,
        Trigger(kind="data", outcome="success", outputs={"segment": "gold"}),
        facts(),
    )
    assert of(ok, fx.SetData)[0].value == "gold"
    missing = run(prog, first.state, Trigger(kind="data", outcome="not_found"), facts())
    assert of(missing, fx.LogMessage)[0].message == "new customer"


def test_tasks_return_named_outcomes() -> None:
    header = """\
        task identify outcomes found, missing:
            if customer.known:
                outcome found
            outcome missing
        """
    prog = program(
        """\
        call task identify:
            on found:
                reply "welcome back"
            on missing:
                reply "who are you?"
        end
        """,
        header=header,
    )
    assert (
        of(start(prog, customer={"known": True}), fx.SendReply)[0].content["text"] == "welcome back"
    )
    assert (
        of(start(prog, customer={"known": False}), fx.SendReply)[0].content["text"]
        == "who are you?"
    )


def test_recognize_uses_the_identities_the_engine_found() -> None:
    prog = program("""\
        recognize customer by platform id, phone:
            on known:
                reply "known"
            on unknown:
                reply "unknown"
        """)
    by_phone = start(prog, known_by=frozenset({"phone"}))
    assert of(by_phone, fx.SendReply)[0].content["text"] == "known"
    assert of(start(prog), fx.SendReply)[0].content["text"] == "unknown"


def test_schedule_outcomes_follow_the_oracle() -> None:
    prog = program("""\
        check schedule "Hours":
            on open:
                reply "open"
            on holiday:
                reply "holiday"
        reply "after"
        """)
    holiday = start(prog, schedule_state=lambda name, now: "holiday")
    assert [e.content["text"] for e in of(holiday, fx.SendReply)] == ["holiday", "after"]
    closed = start(prog, schedule_state=lambda name, now: "closed")  # no branch: continue
    assert [e.content["text"] for e in of(closed, fx.SendReply)] == ["after"]


def test_last_agent_routing_with_wait_and_fallback() -> None:
    prog = program("""\
        route to last agent wait 5m:
            on unavailable:
                log "fallback"
        route to queue "Q"
        """)
    nobody = start(prog)  # no last agent: straight to the fallback
    assert of(nobody, fx.LogMessage)
    assert of(nobody, fx.RouteToQueue)
    waiting = start(prog, conversation={"ongoing": True, "last_agent": "ana"})
    assert of(waiting, fx.RouteToAgent)[0].agent == "ana"
    assert waiting.state.status == "waiting"
    routed = run(prog, waiting.state, Trigger(kind="agent", outcome="routed"), facts())
    assert routed.state.status == "routed" and not routed.effects
    unavailable = run(prog, waiting.state, Trigger(kind="agent", outcome="unavailable"), facts())
    assert of(unavailable, fx.RouteToQueue)


def test_queue_timeout_runs_the_in_queue_branch() -> None:
    prog = program("""\
        route to queue "Q":
            timeout 30m
            on timeout:
                route to queue "Overflow"
        """)
    first = start(prog)
    assert first.state.status == "waiting"
    timer = of(first, fx.StartTimer)[0]
    later = run(prog, first.state, Trigger(kind="timer", timer=timer.timer), facts())
    assert of(later, fx.RouteToQueue)[0].queue == "Overflow"


def test_loops_are_bounded_and_break_leaves_them() -> None:
    prog = program(
        """\
        repeat 3 times:
            set n to n + 1
        while n < 100 at most 5 times:
            set n to n + 10
            if n > 20:
                break
        reply "{{ n }}"
        """,
        header="var n: number = 0",
    )
    assert of(start(prog), fx.SendReply)[0].content["text"] == "23"


def test_a_flow_that_loops_forever_stops_with_the_looping_line() -> None:
    prog = program("go to state start")
    result = start(prog)
    (failure,) = of(result, fx.FlowFailed)
    assert failure.code == "FL901"
    assert f"{MAX_STEPS:,} steps" in failure.message
    assert "line 5" in failure.message
    assert result.state.status == "failed"


def test_runtime_error_goes_to_on_error_with_the_source_line() -> None:
    header = 'on error:\n    reply "Sorry: {{ error.message }}"\n    route to queue "Q"'
    prog = program('set n to number("abc")\nend', header=header + "\nvar n: number = 0")
    result = start(prog)
    assert of(result, fx.SendReply)[0].content["text"].startswith("Sorry: cannot turn")
    assert of(result, fx.RouteToQueue)


@pytest.mark.parametrize("text", ["nan", "NaN", "inf", "-Infinity"])
def test_number_of_a_text_that_is_not_a_finite_number_is_the_flows_error(text: str) -> None:
    """Python reads "nan" and "inf" as floats; a flow does not: no such value reaches its
    variables (JSON, and so the store, has no way to keep it)."""
    header = 'on error:\n    reply "Sorry: {{ error.message }}"\n    end "x"'
    prog = program(f'set n to number("{text}")\nend', header=header + "\nvar n: number = 0")
    result = start(prog)
    reply = of(result, fx.SendReply)[0].content["text"]
    assert reply == f"Sorry: cannot turn {text!r} into a number"
    assert result.state.variables["n"] == 0


def test_runtime_error_without_handler_fails_only_this_run() -> None:
    prog = program("set n to 1 / 0\nend", header="var n: number = 0")
    (failure,) = of(start(prog), fx.FlowFailed)
    assert "division by zero" in failure.message
    assert failure.code == "FL900"
    assert failure.line == 5


@pytest.mark.parametrize(
    ("statement", "slots", "message"),
    [
        (
            "set n to length(bot.slots.visits)",
            {"visits": 3},
            "length needs a text or a list, got 3",
        ),
        ("set ok to bot.slots.waited > 5", {"waited": timedelta(minutes=3)}, "cannot compare"),
        ("set priority to bot.slots.level", {"level": "high"}, "cannot turn 'high'"),
    ],
)
def test_data_of_an_unexpected_type_fails_the_run_at_its_line(
    statement: str, slots: dict[str, object], message: str
) -> None:
    """What a bot, the CRM or the host sends has no static type: a value a step cannot use is
    an FL900 at the flow's line, with the value named, never an exception out of `run`."""
    prog = program(
        f'hand off to bot "B" wait 5m:\n    on escalate:\n        {statement}\n        end "x"',
        header="var n: number = 0\nvar ok: boolean = false",
    )
    escalated = Trigger(kind="bot", outcome="escalate", slots=slots)
    result = run(prog, start(prog).state, escalated, facts())
    (failure,) = of(result, fx.FlowFailed)
    assert (failure.code, failure.line) == ("FL900", 8)
    assert message in failure.message


def test_an_internal_error_in_a_step_is_raised_and_on_error_does_not_run() -> None:
    """An exception that is not the flow's (here the host's schedule oracle breaks) is not
    FL900: `run` raises it (the Engine keeps the event as a dead letter), and the flow's
    `on error` is not taken, since the flow could not have acted on it."""

    def broken(_name: str, _now: object) -> str:
        raise KeyError("Contact Center Hours")

    header = 'on error:\n    reply "Sorry: {{ error.message }}"\n    route to queue "Q"'
    prog = program('check schedule "Hours":\n    on open:\n        end "open"', header=header)
    with pytest.raises(KeyError, match="Contact Center Hours"):
        start(prog, schedule_state=broken)
    assert of(start(prog), fx.EndFlow), "another conversation with a working oracle goes on"


def test_arithmetic_too_large_for_a_number_is_the_flows_error() -> None:
    """A whole number from data too large for a float is FL900 at the line, `on error` runs."""
    header = (
        'on error:\n    reply "Sorry: {{ error.message }}"\n    route to queue "Q"\n'
        "var n: number = 0"
    )
    prog = program(
        'hand off to bot "B" wait 5m:\n    on escalate:\n'
        '        set n to bot.slots.visits * 1.5\n        end "x"',
        header=header,
    )
    escalated = Trigger(kind="bot", outcome="escalate", slots={"visits": 10**400})
    result = run(prog, start(prog).state, escalated, facts())
    (reply,) = of(result, fx.SendReply)
    assert reply.content["text"] == "Sorry: the result of * is too large for a number"
    assert of(result, fx.RouteToQueue) and not of(result, fx.FlowFailed)


@pytest.mark.parametrize("trigger", ["bot", "agent", "queue", "data"])
def test_events_nobody_waits_for_are_ignored(
    trigger: Literal["bot", "agent", "queue", "data"],
) -> None:
    prog = program("end")
    result = run(prog, FlowState(), Trigger(kind=trigger), facts())
    assert result.effects == [] and result.trace[0].op == "ignored"


def test_a_run_never_changes_the_state_it_was_given() -> None:
    """The state is copied only when a run resumes it; fresh, resumed and ignored runs alike
    leave the caller's state as it was."""
    prog = program(
        """\
        add skill "Loans"
        hand off to bot "FAQ Bot" wait 15m:
            on escalate:
                set priority to priority + 5
                set topic to bot.intent
                route to queue "Q"
        """,
        header="var topic: text = not set",
    )
    waiting = start(prog).state
    before = json.dumps(waiting.to_json(), sort_keys=True)
    escalated = run(prog, waiting, Trigger(kind="bot", outcome="escalate", intent="loans"), facts())
    assert escalated.state.variables["topic"] == "loans"
    assert escalated.state.interaction.priority == 5 and escalated.state is not waiting
    stale = run(prog, waiting, Trigger(kind="timer", timer="old#9"), facts())
    assert stale.trace[0].op == "ignored" and stale.state is not waiting
    fresh = FlowState()
    run(prog, fresh, Trigger(kind="message", text="hi"), facts())
    assert json.dumps(waiting.to_json(), sort_keys=True) == before
    assert fresh.to_json() == FlowState().to_json()


def test_names_from_params_follow_the_environments_values() -> None:
    prog = program(
        """\
        add skill extra
        add skill "Cards"
        remove skill "Cards"
        route to queue main_queue:
            skill extra min 2
            priority priority + 5
        """,
        header='param extra: skill = "VIP"\nparam main_queue: queue = "Retail"',
    )
    defaults = start(prog)
    (route,) = of(defaults, fx.RouteToQueue)
    assert (route.queue, route.skills, route.priority) == (
        "Retail",
        [{"skill": "VIP", "min": 2}],
        5,
    )
    assert [step.detail for step in defaults.trace][:3] == [
        "skill VIP",
        "skill Cards",
        "skill Cards removed",
    ]
    (route,) = of(start(prog, params={"extra": "Gold", "main_queue": "Overflow"}), fx.RouteToQueue)
    assert (route.queue, route.skills) == ("Overflow", [{"skill": "Gold", "min": 2}])


def test_switch_compares_numbers_as_numbers_and_language_can_be_computed() -> None:
    prog = program("""\
        switch length(message.text):
            case 2:
                set language to lower("ES")
            default:
                set language to upper(message.text)
        route to queue "Retail"
        """)
    by_length = {text: of(start(prog, text), fx.RouteToQueue)[0].language for text in ("hi", "hey")}
    assert by_length == {"hi": "es", "hey": "HEY"}
    assert [step.detail for step in start(prog, "hey").trace][:2] == ["default", "language HEY"]


def test_a_question_can_use_the_customers_values() -> None:
    prog = program(
        """\
        ask "What is your account number, {{ customer.name }}?" into n wait 5m:
            on answer:
                log "answered"
        """,
        header="var n: text = not set",
    )
    result = start(prog)
    (question,) = of(result, fx.SendReply)
    assert question.content == {"kind": "text", "text": "What is your account number, Ana?"}
    assert result.trace[0].detail == "asks 'What is your account number, Ana?'; waits"
    assert result.state.waiting is not None
    assert result.state.waiting.deadline == NOW + timedelta(minutes=5)


def test_an_agent_param_the_environment_leaves_unset_means_the_last_agent() -> None:
    prog = program(
        """\
        route to agent vip wait 1m:
            on unavailable:
                log "nobody to go back to"
        route to queue "Retail"
        """,
        header='param vip: agent = "maria"',
    )
    ongoing = {"ongoing": True, "last_agent": "ana"}
    (named,) = of(start(prog, conversation=ongoing), fx.RouteToAgent)
    assert (named.agent, named.last_agent, named.wait_seconds) == ("maria", False, 60)
    (last,) = of(start(prog, conversation=ongoing, params={"vip": None}), fx.RouteToAgent)
    assert (last.agent, last.last_agent) == ("ana", True)
    nobody = start(prog, params={"vip": None})
    assert [e.message for e in of(nobody, fx.LogMessage)] == ["nobody to go back to"]
    assert of(nobody, fx.RouteToQueue)[0].queue == "Retail"


def test_log_shows_the_values_it_names_not_the_braces() -> None:
    prog = program('log "{{ customer.name }} wrote {{ message.text }}"\nend')
    result = start(prog, "{{ 7 * 7 }}")
    assert [e.message for e in of(result, fx.LogMessage)] == ["Ana wrote {{ 7 * 7 }}"]
    assert "Ana wrote" in str(result.trace[0])


def test_a_log_line_that_cannot_be_rendered_is_kept_as_written_and_the_flow_goes_on() -> None:
    prog = program('log "segment {{ customer.name.upper() }}"\nreply "ok"')
    result = start(prog, customer={"name": None})
    (logged,) = of(result, fx.LogMessage)
    assert logged.message.startswith("segment {{ customer.name.upper() }} (not rendered:")
    assert [e.content["text"] for e in of(result, fx.SendReply)] == ["ok"]
