"""The deployment file as a flow admin uses it: the example loads, names resolve, schedules answer
open / closed / holiday / emergency in their own time zone, positions point into the YAML."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from flowlang.cli import main
from flowlang.config import load_deployment, load_deployment_text
from flowlang.config.models import Schedule
from flowlang.diagnostics import source_lines

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "deployment.yaml"
LONDON_TZ = ZoneInfo("Europe/London")


def test_the_example_deployment_loads_clean() -> None:
    deployment, problems = load_deployment(EXAMPLE)
    assert problems == []
    assert deployment is not None
    assert deployment.threading_window == timedelta(hours=72)
    assert set(deployment.queues) >= {"Retail Banking", "Social Public", "Social DM", "Overflow"}
    assert deployment.agents["kenji"].skills["Cards"] == 4
    assert deployment.templates["whatsapp_followup"].whatsapp is not None
    assert deployment.templates["whatsapp_followup"].whatsapp.parameters == ["name"]


def test_accounts_are_found_by_name_or_platform_id() -> None:
    deployment, _ = load_deployment(EXAMPLE)
    assert deployment is not None
    by_id = deployment.account("whatsapp", "+442079460000")
    by_name = deployment.account("whatsapp", "GBank WhatsApp")
    assert by_id is not None and by_id is by_name
    assert deployment.account("whatsapp", "+440000000000") is None
    assert deployment.account("telegram", "x") is None


def test_span_of_points_at_the_value_in_the_file() -> None:
    deployment, _ = load_deployment(EXAMPLE)
    assert deployment is not None
    span = deployment.span_of(("templates", "welcome", "text"))
    assert span is not None
    line = EXAMPLE.read_text("utf-8").split("\n")[span.line - 1]
    assert line[span.column - 1 :].startswith('"Welcome to GBank')


LONDON = Schedule.model_validate(
    {
        "time_zone": "Europe/London",
        "hours": {"mon": ["08:00-20:00"], "sat": ["09:00-13:00"], "sun": ["22:00-24:00"]},
        "holidays": [{"date": "2026-12-25", "name": "Christmas Day"}, "2026-12-26"],
        "emergencies": [
            {"start": "2026-03-02T10:00:00Z", "end": "2026-03-02T11:00:00Z", "reason": "outage"}
        ],
    }
)


@pytest.mark.parametrize(
    ("instant", "state"),
    [
        ("2026-01-05T08:00:00Z", "open"),  # Monday 08:00 in London (GMT): opening minute
        ("2026-01-05T07:59:59Z", "closed"),
        ("2026-01-05T19:59:59Z", "open"),
        ("2026-01-05T20:00:00Z", "closed"),  # the end of a range is not inside it
        ("2026-06-01T07:30:00Z", "open"),  # Monday 08:30 in London summer time (BST)
        ("2026-06-01T19:30:00Z", "closed"),  # 20:30 BST
        ("2026-01-10T12:59:00Z", "open"),  # Saturday
        ("2026-01-11T23:59:59Z", "open"),  # Sunday until midnight (24:00)
        ("2026-01-06T10:00:00Z", "closed"),  # Tuesday: no hours at all
        ("2026-12-25T10:00:00Z", "holiday"),
        ("2026-12-26T10:00:00Z", "holiday"),
        ("2026-03-02T10:30:00Z", "emergency"),  # a Monday, inside the emergency period
        ("2026-03-02T11:00:00Z", "open"),  # the emergency has ended
    ],
)
def test_schedule_states_in_the_schedules_time_zone(instant: str, state: str) -> None:
    assert LONDON.state_at(datetime.fromisoformat(instant)) == state


def test_emergency_switch_overrides_everything() -> None:
    switched = LONDON.model_copy(update={"emergency": True})
    assert switched.state_at(datetime(2026, 12, 25, 10, tzinfo=UTC)) == "emergency"


@settings(max_examples=200, deadline=None)
@given(st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 12, 31)))
def test_a_schedule_always_answers_one_of_its_four_states(moment: datetime) -> None:
    state = LONDON.state_at(moment.replace(tzinfo=UTC))
    assert state in ("open", "closed", "holiday", "emergency")
    local = moment.replace(tzinfo=UTC).astimezone(LONDON_TZ)
    if state == "open":
        assert local.weekday() in (0, 5, 6)


def test_a_deployment_with_warnings_only_still_loads() -> None:
    deployment, problems = load_deployment_text(
        "skills: [Loans]\nqueues:\n  Loans:\n    members: []\n", "d.yaml"
    )
    assert deployment is not None
    assert [(d.code, d.is_error) for d in problems] == [("FL517", False)]


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=300))
def test_any_text_loads_or_gives_located_diagnostics_never_an_exception(text: str) -> None:
    deployment, problems = load_deployment_text(text, "random.yaml")
    if deployment is None:
        assert problems
        lines = source_lines(text)  # as YAML counts them: \r alone also ends a line
        for d in problems:
            assert 1 <= d.span.line <= max(len(lines), 1) + 1


@pytest.mark.parametrize("value", ["-_", "+_", "0b_", "0x_", "._"])
def test_a_value_yaml_takes_for_a_number_but_cannot_read_is_located(value: str) -> None:
    # ruamel.yaml resolves these as numbers, then fails to build them (IndexError, ValueError)
    _deployment, problems = load_deployment_text(f"skills: [Loans]\nnote: {value}\n", "d.yaml")
    assert [(d.code, d.span.line, d.span.column) for d in problems] == [("FL503", 2, 7)]
    assert f"'{value}' looks like a number to YAML but is not one" in problems[0].message


def test_a_file_with_old_mac_line_breaks_is_located_on_the_line_the_editor_shows() -> None:
    text = "skills: [Loans]\rqueues:\r  Loans: {note: \x01}\r"
    _deployment, problems = load_deployment_text(text, "d.yaml")
    assert [(d.code, d.span.line, d.span.column) for d in problems] == [("FL512", 3, 17)]


def test_dry_run_with_an_environment_uses_its_parameters(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    args = ["dry-run", "flows/messaging.flow", "-d", "examples/deployment.yaml"]
    args += ["-m", "examples/messages.yaml", "--allow-blocked"]
    runner = CliRunner()
    with_test = runner.invoke(main, [*args, "-e", "test"], catch_exceptions=False)
    assert with_test.exit_code == 0
    assert "queue Overflow (Loans" in with_test.output
    unknown = runner.invoke(main, [*args, "-e", "staging"])
    assert unknown.exit_code == 2
    assert "environments: production, test" in unknown.output


@pytest.mark.parametrize(
    ("good", "bad", "code"),
    [
        ("threading_window: 72h", "threading_window: 96h", "FL510"),
        ('id: "+442079460000"', 'id: "02079460000"', "FL515"),
    ],
)
def test_one_bad_value_in_the_deployment_is_one_error_not_a_flow_full_of_unknown_names(
    tmp_path: Path, good: str, bad: str, code: str
) -> None:
    from flowlang.workspace import validate

    root = Path(__file__).resolve().parents[2]
    text = (root / "examples" / "deployment.yaml").read_text("utf-8")
    assert good in text
    broken = tmp_path / "deployment.yaml"
    broken.write_text(text.replace(good, bad, 1), "utf-8")
    ws = validate([root / "flows" / "messaging.flow", broken])
    assert [d.code for d in ws.diagnostics if d.is_error] == [code]


def test_a_connection_names_environment_variables_and_refuses_a_secret_written_inline() -> None:
    good = "channels:\n  whatsapp:\n    connection:\n      signing_secret_env: WA_APP_SECRET\n"
    deployment, problems = load_deployment_text(good, "d.yaml")
    assert deployment is not None and problems == []
    connection = deployment.channels["whatsapp"].connection
    assert connection is not None and connection.signing_secret_env == "WA_APP_SECRET"

    inline = "channels:\n  whatsapp:\n    connection:\n      signing_secret_env: 3f9a-secret\n"
    _deployment, problems = load_deployment_text(inline, "d.yaml")
    assert [(d.code, d.span.line) for d in problems] == [("FL503", 4)]
    _deployment, problems = load_deployment_text(
        "channels:\n  whatsapp:\n    connection:\n      signing_secret: hunter2\n", "d.yaml"
    )
    assert [d.code for d in problems] == ["FL502"]


def test_canned_responses_name_known_queues_and_compile_or_are_located_errors() -> None:
    text = (
        "queues:\n  Loans:\n    members: []\n"
        "canned_responses:\n"
        "  Hello:\n    text: \"Hi {{ customer.name or 'there' }}\"\n"
        "  Wrong queue:\n    text: ok\n    queues: [Lonas]\n"
        '  Broken:\n    text: "{{ customer.name "\n'
    )
    deployment, problems = load_deployment_text(text, "d.yaml")
    errors = [(d.code, d.span.line, d.message) for d in problems if d.is_error]
    assert errors == [
        ("FL505", 9, "unknown queue 'Lonas'"),
        ("FL514", 11, errors[1][2]),
    ]
    assert "canned response 'Broken' is refused" in errors[1][2]
    assert deployment is None
    good, _ = load_deployment_text(text.split("  Wrong queue:")[0], "d.yaml")
    assert good is not None and good.canned_responses["Hello"].queues == []


def test_access_sets_the_sessions_and_the_metrics_token_or_takes_the_defaults() -> None:
    deployment, problems = load_deployment_text("skills: [Loans]\n", "d.yaml")
    assert problems == [] and deployment is not None
    assert deployment.access.session_idle_timeout == timedelta(minutes=30)
    assert deployment.access.session_lifetime == timedelta(hours=12)
    assert deployment.access.metrics_token_env is None
    assert deployment.access.failed_signin_limit == 10
    assert deployment.access.failed_signin_window == timedelta(minutes=1)
    text = (
        "access:\n"
        "  session_idle_timeout: 15m\n"
        "  session_lifetime: 9h\n"
        "  metrics_token_env: FLOWLANG_METRICS_TOKEN\n"
        "  failed_signin_limit: 5\n"
        "  failed_signin_window: 5m\n"
    )
    deployment, problems = load_deployment_text(text, "d.yaml")
    assert problems == [] and deployment is not None
    assert deployment.access.session_idle_timeout == timedelta(minutes=15)
    assert deployment.access.session_lifetime == timedelta(hours=9)
    assert deployment.access.metrics_token_env == "FLOWLANG_METRICS_TOKEN"
    assert deployment.access.failed_signin_limit == 5
    assert deployment.access.failed_signin_window == timedelta(minutes=5)


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("access:\n  session_idle_timeout: 0s\n", 2),
        ("access:\n  session_lifetime: soon\n", 2),
        ("access:\n  metrics_token_env: my-secret-token\n", 2),
        ("access:\n  session_idle: 10m\n", 2),
        ("access:\n  failed_signin_limit: 0\n", 2),
        ("access:\n  failed_signin_window: 0s\n", 2),
    ],
    ids=["zero", "not-a-duration", "a-secret-inline", "misspelt", "no-attempts", "no-window"],
)
def test_access_refuses_what_it_cannot_use_and_says_where(text: str, line: int) -> None:
    deployment, problems = load_deployment_text(text, "d.yaml")
    assert deployment is None
    assert [d.span.line for d in problems] == [line], problems
