"""The simulation against queueing theory, and `flowlang simulate` as a user runs it."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from flowlang.acd import erlang
from flowlang.acd.simulate import SimulationSpec, simulate
from flowlang.cli import main

ROOT = Path(__file__).resolve().parents[2]


def spec(**fields: Any) -> SimulationSpec:
    return SimulationSpec.model_validate(fields)


def test_erlang_c_matches_known_values() -> None:
    # Two agents, one Erlang: P(wait) = 1/3, mean wait = h/3, a classic textbook case.
    assert erlang.erlang_c(2, 1.0) == pytest.approx(1 / 3)
    assert erlang.average_wait(2, 0.25, 4.0) == pytest.approx(4 / 3)
    assert erlang.erlang_c(5, 5.0) == 1.0 and erlang.erlang_c(5, 0) == 0.0
    assert erlang.service_level(2, 0.25, 4.0, 0) == pytest.approx(2 / 3)


@pytest.mark.parametrize(
    ("agents", "per_hour", "handle_minutes", "hours"),
    [(5, 60, 4, 3000), (2, 15, 4, 1000)],
    ids=["5 agents at 80% load", "2 agents at 50% load"],
)
def test_an_m_m_c_queue_waits_as_erlang_c_says(
    agents: int, per_hour: int, handle_minutes: int, hours: int
) -> None:
    """Poisson arrivals, exponential handle times, identical agents with capacity 1.

    Tolerance: mean wait within 8 % of Erlang C, service level (answered within 1 minute)
    within 2 points, occupancy within 1.5 points of the offered load per agent. With a fixed
    seed the run is repeatable; at these lengths seeds 1-3 all land well inside (at 80 % load,
    3,000 h: 1-3 % on the wait, under 1 point on the service level).
    """
    result = simulate(
        spec(
            duration=f"{hours}h",
            warmup="2h",
            seed=3,
            answer_within="1m",
            agents=[{"count": agents, "queues": ["Q"]}],
            traffic=[
                {
                    "queue": "Q",
                    "per_hour": per_hour,
                    "handle_time": {"exponential": f"{handle_minutes}m"},
                }
            ],
        )
    )
    q = result.queues["Q"]
    rate = per_hour / 60  # per minute
    expected_wait = erlang.average_wait(agents, rate, handle_minutes) * 60
    expected_level = erlang.service_level(agents, rate, handle_minutes, 1.0)
    assert q.offered > 10_000 and q.answered == q.offered and q.abandoned == 0
    assert q.average_speed_of_answer == pytest.approx(expected_wait, rel=0.08)
    assert q.service_level == pytest.approx(expected_level, abs=0.02)
    assert result.occupancy == pytest.approx(rate * handle_minutes / agents, abs=0.015)


def test_impatient_customers_abandon_and_everyone_is_accounted_for() -> None:
    result = simulate(
        spec(
            duration="20h",
            agents=[{"count": 2, "queues": ["Q"]}],
            traffic=[
                {
                    "queue": "Q",
                    "per_hour": 40,
                    "handle_time": {"fixed": "4m"},
                    "patience": {"exponential": "3m"},
                }
            ],
        )
    )
    q = result.queues["Q"]
    assert q.abandoned > 0.1 * q.offered
    assert q.answered + q.abandoned == q.offered
    assert q.longest_wait < 60 * 60


def test_interactions_nobody_can_take_expire_with_the_reply_window() -> None:
    result = simulate(
        spec(
            duration="5h",
            agents=[{"count": 3, "queues": ["Q"], "skills": {"Cards": 2}}],
            traffic=[
                {
                    "queue": "Q",
                    "per_hour": 10,
                    "skills": {"Cards": 5},
                    "handle_time": {"exponential": "4m"},
                    "reply_window": "1h",
                }
            ],
        )
    )
    q = result.queues["Q"]
    assert q.offered > 0 and q.expired == q.offered and q.answered == 0


def test_bullseye_rings_from_the_file_let_waiting_interactions_through() -> None:
    fields: dict[str, Any] = {
        "duration": "5h",
        "agents": [{"count": 3, "queues": ["Q"], "skills": {"Cards": 2}}],
        "traffic": [
            {
                "queue": "Q",
                "per_hour": 10,
                "skills": {"Cards": 5},
                "handle_time": {"exponential": "4m"},
            }
        ],
        "queues": {"Q": {"bullseye": [{"after": "3m", "remove_skills": "all"}]}},
    }
    q = simulate(spec(**fields)).queues["Q"]
    assert q.answered == q.offered > 0
    # Everyone waits for the ring (3 minutes); a few a little longer, when all are busy.
    assert 180 <= q.average_speed_of_answer < 190


def test_simulated_agents_give_the_wrap_up_code_a_queue_requires() -> None:
    """A queue that requires a code refuses completions without one: the simulated agents give
    one (any, where the queue declares none), so every agent is freed to take the next."""
    fields: dict[str, Any] = {
        "duration": "5h",
        "agents": [{"count": 1, "queues": ["Q"]}],
        "traffic": [{"queue": "Q", "per_hour": 6, "handle_time": {"fixed": "3m"}}],
        "queues": {"Q": {"wrap_up_required": True}},
    }
    q = simulate(spec(**fields)).queues["Q"]
    assert q.answered == q.offered > 10


def test_the_cli_prints_the_figures_and_draws_the_queue(tmp_path: Path) -> None:
    chart = tmp_path / "queue.svg"
    args = ["simulate", str(ROOT / "examples" / "simulation.yaml")]
    args += ["-d", str(ROOT / "examples" / "deployment.yaml"), "--plot", str(chart)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "Retail Banking" in result.output and "occupancy" in result.output
    svg = ET.fromstring(chart.read_text("utf-8"))
    lines = svg.findall(".//{http://www.w3.org/2000/svg}polyline")
    assert {line.get("data-series") for line in lines} == {
        "Retail Banking",
        "Loans",
        "Social Public",
    }
    assert all(len((line.get("points") or "").split()) > 10 for line in lines[:2])


def test_the_cli_gives_json(tmp_path: Path) -> None:
    args = ["simulate", str(ROOT / "examples" / "simulation.yaml")]
    args += ["-d", str(ROOT / "examples" / "deployment.yaml"), "--format", "json"]
    result = CliRunner().invoke(main, args)
    data = json.loads(result.output)
    names = [q["queue"] for q in data["queues"]]
    assert names == ["Retail Banking", "Loans", "Social Public"]
    assert all(0 <= q["service_level"] <= 1 for q in data["queues"])


def test_a_misspelt_key_in_the_simulation_file_is_located(tmp_path: Path) -> None:
    bad = tmp_path / "sim.yaml"
    bad.write_text(
        "duration: 1h\ntraffic:\n  - queue: Q\n    per_hour: 5\n"
        "    handle_tme: {exponential: 4m}\n",
        "utf-8",
    )
    result = CliRunner().invoke(main, ["simulate", str(bad)])
    assert result.exit_code == 1
    assert f"{bad}:5:5" in result.output
    assert "unknown key 'handle_tme'" in result.output
    assert "did you mean 'handle_time'?" in result.output


def test_a_simulation_without_agents_is_a_usage_error(tmp_path: Path) -> None:
    empty = tmp_path / "sim.yaml"
    empty.write_text(
        "duration: 1h\ntraffic:\n  - {queue: Q, per_hour: 5, handle_time: {fixed: 1m}}\n"
    )
    result = CliRunner().invoke(main, ["simulate", str(empty)])
    assert result.exit_code == 2
    assert "no agents" in result.output


def test_answer_within_0s_is_kept_not_replaced_by_the_queues_target() -> None:
    fields: dict[str, Any] = {
        "duration": "8h",
        "agents": [{"count": 1, "queues": ["Q"]}],
        "traffic": [{"queue": "Q", "per_hour": 20, "handle_time": {"fixed": "2m"}}],
    }
    instant = simulate(spec(answer_within="0s", **fields)).queues["Q"]
    assert instant.answer_within == 0
    default = simulate(spec(**fields)).queues["Q"]  # the same seed: only the target differs
    assert default.answer_within == 300
    assert instant.service_level < default.service_level


def _stepped(prefer: list[dict[str, Any]]) -> SimulationSpec:
    """Plenty of silver agents, no gold one; every interaction prefers gold agents."""
    return spec(
        duration="20h",
        seed=2,
        answer_within="1m",
        agents=[{"name": "silver", "count": 5, "queues": ["Q"], "attributes": {"tier": "silver"}}],
        traffic=[
            {
                "queue": "Q",
                "per_hour": 6,
                "handle_time": {"fixed": "2m"},
                "patience": {"fixed": "30m"},
                "prefer_agents": prefer,
            }
        ],
    )


def test_a_simulation_offers_only_to_the_current_steps_agents_then_widens() -> None:
    """`prefer_agents` in a traffic stream: the simulator's ACD is the engine's, steps and all."""
    plain = simulate(_stepped([])).queues["Q"]
    assert plain.answered == plain.offered and plain.longest_wait == 0  # silver agents free
    # gold for 3 minutes, then anyone: every answer waits the 3 minutes, none longer
    widened = simulate(_stepped([{"where": {"tier": "gold"}, "for": "3m"}])).queues["Q"]
    assert widened.answered == widened.offered > 50
    assert widened.average_speed_of_answer == pytest.approx(180)
    assert widened.longest_wait == pytest.approx(180)
    # gold only, never widened: nobody is offered it; every customer gives up after 30 minutes
    gold_only = simulate(_stepped([{"where": {"tier": "gold"}}])).queues["Q"]
    assert gold_only.answered == 0 and gold_only.abandoned == gold_only.offered > 50
