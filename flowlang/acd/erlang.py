"""Erlang C: waiting in an M/M/c queue (Poisson arrivals, exponential handle times, c agents).

    erlang_c(agents=5, load=4.0)                    # probability an arrival has to wait
    average_wait(5, arrival_rate=1.0, handle_time=4.0)
    service_level(5, 1.0, 4.0, answer_within=1.0)   # share answered within the threshold

Rates and times in any one unit (per minute and minutes, say). The simulation is checked
against these (tests/acd/test_simulation.py).
"""

from __future__ import annotations

import math


def erlang_c(agents: int, load: float) -> float:
    """P(wait > 0) for `load` Erlangs (arrival rate × handle time) offered to `agents`."""
    if load <= 0:
        return 0.0
    if load >= agents:
        return 1.0
    blocking = 1.0  # Erlang B by its stable recurrence
    for k in range(1, agents + 1):
        blocking = load * blocking / (k + load * blocking)
    return blocking / (1 - (load / agents) * (1 - blocking))


def average_wait(agents: int, arrival_rate: float, handle_time: float) -> float:
    """Mean wait of all arrivals (answered at once count as 0)."""
    load = arrival_rate * handle_time
    if load >= agents:
        return math.inf
    return erlang_c(agents, load) * handle_time / (agents - load)


def service_level(
    agents: int, arrival_rate: float, handle_time: float, answer_within: float
) -> float:
    """Share of arrivals answered within `answer_within`."""
    load = arrival_rate * handle_time
    if load >= agents:
        return 0.0
    waiting = erlang_c(agents, load)
    return 1 - waiting * math.exp(-(agents - load) * answer_within / handle_time)
