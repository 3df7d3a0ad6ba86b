"""Every report over the scripted day (tests/reporting/day.py), against figures computed here
from the script's own times."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from flowlang.cli import main
from flowlang.reporting import (
    InteractionLog,
    Scope,
    agent_performance,
    interaction_details,
    queue_performance,
    realtime,
)
from flowlang.store import SqliteStore
from tests.reporting import day as d

DEPLOYMENT = str(d.ROOT / "examples" / "deployment.yaml")
GOLDEN = Path(__file__).parent / "golden"
MONDAY = Scope(d.DAY, d.DAY + timedelta(days=1))
TARGETS = {"Social Public": timedelta(minutes=30)}  # the deployment's; others: 5 minutes
FIVE_MINUTES = timedelta(minutes=5).total_seconds()


def s(delta: timedelta) -> float:
    return delta.total_seconds()


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return d.run_day(tmp_path_factory.mktemp("day"))


def fold(store_path: Path, end: datetime | None) -> InteractionLog:
    with SqliteStore(store_path) as store:
        return InteractionLog.from_events(store.iter_events(end=end))


@pytest.fixture(scope="module")
def monday(store_path: Path) -> InteractionLog:
    return fold(store_path, MONDAY.end)


def by_queue(log: InteractionLog, scope: Scope = MONDAY) -> dict[str, dict[str, object]]:
    report = queue_performance(log, scope, TARGETS)
    return {row["queue"]: row for row in report.rows}


# ---------------------------------------------------------------------- queues
def test_retail_banking_over_monday(monday: InteractionLog) -> None:
    ana_wait, ben_wait = s(d.BOB_AVAILABLE - d.ANA_QUEUED), s(d.ALICE_AVAILABLE - d.BEN_QUEUED)
    dan_wait = s(d.DAN_CLOSED - d.DAN_QUEUED)
    bob_handle = s(d.ANA_WORK_ENDS - d.BOB_AVAILABLE)
    alice_handle = s(d.BEN_TRANSFERRED - d.ALICE_AVAILABLE)
    within = (ana_wait <= FIVE_MINUTES) + (ben_wait <= FIVE_MINUTES)
    row = by_queue(monday)["Retail Banking"]
    assert row == {
        "queue": "Retail Banking",
        "routed": 3,  # ana, ben, dan (chloe entered on Sunday)
        "answered": 2,
        "wait_average": (ana_wait + ben_wait) / 2,
        "wait_longest": max(ana_wait, ben_wait, dan_wait),
        "abandoned": 1,
        "expired": 0,
        "timed_out": 0,  # chloe's timeout was on Sunday
        "transferred": 1,
        "wrap_up_timed_out": 0,  # bob gave his code; alice transferred hers
        "handle_total": bob_handle + alice_handle,
        "handle_average": (bob_handle + alice_handle) / 2,
        "service_level": within / 3,
        "answer_within": FIVE_MINUTES,
        "rated": 0,  # no survey that day
        "satisfaction": None,
    }


def test_complaints_overflow_and_social_queues(monday: InteractionLog) -> None:
    queues = by_queue(monday)
    dave_wait = s(d.DAVE_AVAILABLE - d.BEN_TRANSFERRED)
    assert queues["Complaints"]["routed"] == 1  # by the transfer
    assert queues["Complaints"]["wait_average"] == dave_wait
    assert queues["Complaints"]["handle_total"] == s(d.BEN_COMPLETED - d.DAVE_AVAILABLE)
    assert queues["Complaints"]["service_level"] == (1.0 if dave_wait <= FIVE_MINUTES else 0.0)

    chloe_overflow_wait = s(d.CHLOE_EXPIRES - d.SUN_TIMEOUT)
    overflow = queues["Overflow"]
    assert (overflow["routed"], overflow["answered"], overflow["expired"]) == (0, 0, 1)
    assert overflow["wait_longest"] == chloe_overflow_wait
    assert overflow["service_level"] == 0.0

    tom_wait = s(d.ERIN_AVAILABLE - d.TOM_QUEUED)
    wes_wait = s(d.WES_DELETED - d.WES_QUEUED)
    public = queues["Social Public"]
    erin_handle = s(d.TOM_COMPLETED - d.ERIN_AVAILABLE) + s(d.UMA_COMPLETED - d.UMA_QUEUED)
    assert public["routed"] == 3  # tom, uma, wes; val was not actionable
    assert (public["answered"], public["abandoned"]) == (2, 1)
    assert public["wait_average"] == (tom_wait + 0) / 2
    assert public["wait_longest"] == max(tom_wait, wes_wait)
    assert public["handle_total"] == erin_handle
    assert public["service_level"] == 2 / 3  # both answered within 30 minutes, wes abandoned
    assert public["answer_within"] == s(timedelta(minutes=30))

    dm = queues["Social DM"]
    assert (dm["routed"], dm["answered"], dm["wait_average"]) == (1, 1, 0.0)
    assert dm["handle_total"] == s(d.XIA_COMPLETED - d.XIA_QUEUED)


def test_two_halves_of_the_day_add_up_to_the_day(store_path: Path) -> None:
    noon = d.t("10:15")
    log = fold(store_path, MONDAY.end)
    morning = by_queue(log, Scope(MONDAY.start, noon))
    rest = by_queue(log, Scope(noon, MONDAY.end))
    whole = by_queue(log)
    for queue, row in whole.items():
        for key in ("routed", "answered", "abandoned", "expired", "transferred", "handle_total"):
            parts = [half[queue][key] for half in (morning, rest) if queue in half]
            assert sum(parts) == row[key], (queue, key)  # type: ignore[arg-type]


def test_media_filter_keeps_only_public_social(monday: InteractionLog) -> None:
    scope = Scope(MONDAY.start, MONDAY.end, media={"social_public"})
    assert list(by_queue(monday, scope)) == ["Social Public"]
    agents = {row["agent"] for row in agent_performance(monday, scope).rows}
    assert agents == {"erin"}


# ---------------------------------------------------------------------- agents
def test_agent_performance(monday: InteractionLog) -> None:
    rows = {row["agent"]: row for row in agent_performance(monday, MONDAY).rows}
    bob = s(d.ANA_WORK_ENDS - d.BOB_AVAILABLE)
    alice = s(d.BEN_TRANSFERRED - d.ALICE_AVAILABLE)
    dave = s(d.BEN_COMPLETED - d.DAVE_AVAILABLE) + s(d.XIA_COMPLETED - d.XIA_QUEUED)
    erin = s(d.TOM_COMPLETED - d.ERIN_AVAILABLE) + s(d.UMA_COMPLETED - d.UMA_QUEUED)
    expected = {  # answered, handled, messages sent, total handle, transferred
        "alice": (1, 1, 1, alice, 1),
        "bob": (1, 1, 2, bob, 0),
        "dave": (2, 2, 2, dave, 0),
        "erin": (2, 2, 2, erin, 0),
    }
    assert set(rows) == set(expected)
    for agent, (answered, handled, messages, handle, transferred) in expected.items():
        row = rows[agent]
        assert (row["answered"], row["handled"], row["messages"]) == (answered, handled, messages)
        assert row["handle_total"] == handle
        assert row["handle_average"] == handle / handled
        assert row["transferred_share"] == transferred / handled


# ---------------------------------------------------------------------- interactions
def test_interaction_details(monday: InteractionLog) -> None:
    rows = {(r["channel"], r["started"]): r for r in interaction_details(monday, MONDAY).rows}
    assert len(rows) == 10  # chloe's Sunday conversation expired on Monday: it is there

    ben = rows[("whatsapp", d.t("09:30"))]
    assert ben["queues"] == ["Retail Banking", "Complaints"]
    assert ben["agents"] == ["alice", "dave"]
    assert ben["skills"] == ["Cards", "Billing"]
    assert ben["transfers"] == 1
    assert ben["wait"] == s(d.ALICE_AVAILABLE - d.BEN_QUEUED) + s(
        d.DAVE_AVAILABLE - d.BEN_TRANSFERRED
    )
    assert ben["handle"] == s(d.BEN_TRANSFERRED - d.ALICE_AVAILABLE) + s(
        d.BEN_COMPLETED - d.DAVE_AVAILABLE
    )
    assert (ben["outcome"], ben["wrap_up"]) == ("completed", "Resolved")
    assert ben["duration"] == s(d.BEN_COMPLETED - d.t("09:30"))
    assert ben["ended"] == d.BEN_COMPLETED
    # the survey after the wrap-up code (`on wrap up`) comes last
    assert ben["flow_path"][-3:] == ["skills", "routing", "on_wrap_up"]

    chloe = rows[("whatsapp", d.SUN_FIRST)]
    assert chloe["outcome"] == "expired"
    assert chloe["queues"] == ["Retail Banking", "Overflow"]
    assert chloe["wait"] == s(d.CHLOE_EXPIRES - d.SUN_QUEUED)

    dan = rows[("web", d.t("10:30"))]
    assert (dan["outcome"], dan["wait"], dan["agents"]) == (
        "abandoned",
        s(d.DAN_CLOSED - d.DAN_QUEUED),
        [],
    )

    assert rows[("facebook_page", d.VAL_POSTED)]["outcome"] == "not actionable"
    assert rows[("line", d.t("11:30"))]["outcome"] == "resolved by bot"
    tom = rows[("x_public", d.TOM_QUEUED)]
    assert (tom["media"], tom["wrap_up"]) == ("social_public", "Moved to DM")


def test_interaction_details_for_one_agent(monday: InteractionLog) -> None:
    scope = Scope(MONDAY.start, MONDAY.end, agents={"dave"})
    rows = interaction_details(monday, scope).rows
    assert sorted(r["channel"] for r in rows) == ["whatsapp", "x_dm"]


# ---------------------------------------------------------------------- real time
def test_realtime_mid_morning(store_path: Path) -> None:
    at = d.t("10:35")
    queues, media, agents = realtime(fold(store_path, at), at, Scope())
    waiting = {r["queue"]: (r["waiting"], r["longest_waiting"]) for r in queues.rows}
    assert waiting["Retail Banking"] == (1, s(at - d.DAN_QUEUED))
    assert waiting["Overflow"] == (1, s(at - d.SUN_TIMEOUT))
    active = {r["media"]: r for r in media.rows}
    assert active["Messages"]["active"] == 2  # chloe and dan
    assert active["Messages"]["longest"] == s(at - d.SUN_FIRST)
    states = {r["agent"]: r["state"] for r in agents.rows}
    assert states["alice"] == "away" and states["bob"] == "available"


def test_realtime_social_statistics(store_path: Path) -> None:
    at = d.t("11:15")
    queues, media, _agents = realtime(fold(store_path, at), at, Scope())
    public = {r["queue"]: r for r in queues.rows}["Social Public"]
    assert (public["waiting"], public["longest_waiting"]) == (1, s(at - d.WES_QUEUED))
    active = {r["media"]: r for r in media.rows}
    assert active["Social conversations (public)"]["active"] == 1
    assert active["Social conversations (public)"]["longest"] == s(at - d.WES_QUEUED)
    assert active["Social direct messages"]["active"] == 0
    at = d.t("12:05")
    queues, media, agents = realtime(fold(store_path, at), at, Scope())
    active = {r["media"]: r for r in media.rows}
    assert active["Social direct messages"]["active"] == 1
    assert active["Social direct messages"]["longest"] == s(at - d.XIA_QUEUED)
    assert {r["queue"]: r["in_progress"] for r in queues.rows}["Social DM"] == 1
    assert {r["agent"]: r["conversations"] for r in agents.rows}["dave"] == 1


# ---------------------------------------------------------------------- the command
def run(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_report_all_as_a_table_matches_the_golden_file(store_path: Path) -> None:
    output = run(
        "report", "all", "--store", str(store_path), "-d", DEPLOYMENT,
        "--from", "2026-01-05", "--to", "2026-01-06", "--at", "2026-01-05T10:35:00Z",
    )  # fmt: skip
    golden = GOLDEN / "day_all.txt"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(output, "utf-8")
    assert output == golden.read_text("utf-8")


def test_json_and_csv_carry_the_same_figures(store_path: Path, monday: InteractionLog) -> None:
    args = ["report", "queues", "--store", str(store_path), "-d", DEPLOYMENT]
    args += ["--from", "2026-01-05", "--to", "2026-01-06"]
    data = json.loads(run(*args, "--format", "json"))
    rows = {r["queue"]: r for r in data["reports"][0]["rows"]}
    assert (
        rows["Retail Banking"]["handle_total"] == by_queue(monday)["Retail Banking"]["handle_total"]
    )
    assert data["period"]["from"] == "2026-01-05T00:00:00+00:00"
    csv_lines = run(*args, "--format", "csv").splitlines()
    assert csv_lines[0].startswith("queue,routed,answered,wait_average")
    assert any(line.startswith("Retail Banking,3,2,360.0,540.0,1,0,0,1,") for line in csv_lines)


class _Svgs(HTMLParser):
    """Collects the raw text of each inline <svg> element of a page."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.page, self.svgs, self._start = page, [], -1
        self._lines = [0]
        for line in page.splitlines(keepends=True):
            self._lines.append(self._lines[-1] + len(line))
        self.feed(page)

    def _offset(self) -> int:
        line, column = self.getpos()
        return self._lines[line - 1] + column

    def handle_starttag(self, tag: str, attrs: object) -> None:
        if tag == "svg":
            self._start = self._offset()

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg":
            end = self.page.index("</svg>", self._offset()) + len("</svg>")
            self.svgs.append(self.page[self._start : end])


def test_html_report_has_tables_and_readable_charts(store_path: Path, tmp_path: Path) -> None:
    page_path = tmp_path / "day.html"
    run(
        "report", "all", "--store", str(store_path), "-d", DEPLOYMENT, "--format", "html",
        "--from", "2026-01-05", "--to", "2026-01-06", "-o", str(page_path),
    )  # fmt: skip
    page = page_path.read_text("utf-8")
    for section in ("interactions", "agents", "queues", "realtime"):
        assert f'<section id="{section}">' in page
    charts = [ET.fromstring(svg) for svg in _Svgs(page).svgs]
    ns = {"svg": "http://www.w3.org/2000/svg"}
    titles = [c.findtext("svg:title", namespaces=ns) for c in charts]
    assert titles == [
        "Interactions routed per hour, per queue",
        "Average wait of answered interactions per hour (minutes)",
        "Interactions waiting, per queue",
    ]
    routed = charts[0]
    lines = {p.get("data-series"): p for p in routed.iterfind("svg:polyline", ns)}
    assert set(lines) == {"Complaints", "Overflow", "Retail Banking", "Social DM", "Social Public"}
    # Read the Retail Banking line back through the chart's own y axis: routed per hour.
    per_hour = _step_values(routed, lines["Retail Banking"], ns)
    expected = [0.0] * 24
    for queued in (d.ANA_QUEUED, d.BEN_QUEUED, d.DAN_QUEUED):
        expected[queued.hour] += 1
    assert per_hour == expected


def _step_values(chart: ET.Element, line: ET.Element, ns: dict[str, str]) -> list[float]:
    """The y value of each step of a step line, in data units, from the axis labels."""
    ticks = []
    for text in chart.iterfind("svg:text", ns):
        if text.get("text-anchor") == "end":
            ticks.append((float(text.get("y", 0)) - 4, float(text.text or 0)))
    (y0, v0), (y1, v1) = ticks[0], ticks[-1]
    points = [tuple(map(float, p.split(","))) for p in (line.get("points") or "").split()]
    # A step line draws (x, previous y), (x, y) at each change: keep one y per step.
    values = [round(v0 + (y - y0) * (v1 - v0) / (y1 - y0), 6) for _x, y in points[::2]]
    return values[:-1]
