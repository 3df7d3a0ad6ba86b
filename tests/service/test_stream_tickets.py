"""Stream tickets cost the service what one user may hold, however many they ask for: each user
holds at most `TICKETS_HELD` unused ones (a new one replaces their oldest), and asking for one
does not take longer the more were asked for before."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from flowlang.service.access import Credential
from flowlang.service.stream import TICKET_SECONDS, TICKETS_HELD, AgentFeed

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
FRANK, ALICE = Credential("frank", "f-hash"), Credential("alice", "a-hash")


def feed() -> AgentFeed:
    return AgentFeed(cast(Any, None), cast(Any, None))  # tickets need neither engine nor store


def test_a_users_oldest_ticket_gives_way_to_one_beyond_those_held() -> None:
    tickets = feed()
    alices = tickets.ticket(ALICE, NOW)[0]
    franks = [tickets.ticket(FRANK, NOW)[0] for _ in range(TICKETS_HELD + 1)]
    assert tickets.redeem(franks[0], NOW) is None  # replaced
    assert [tickets.redeem(t, NOW) for t in franks[1:]] == [FRANK] * TICKETS_HELD
    assert tickets.redeem(alices, NOW) == ALICE  # another user's are not touched
    assert [tickets.redeem(t, NOW) for t in franks] == [None] * (TICKETS_HELD + 1)  # one use


def test_an_expired_ticket_opens_nothing_and_is_forgotten() -> None:
    tickets = feed()
    old = tickets.ticket(FRANK, NOW)[0]
    later = NOW + timedelta(seconds=TICKET_SECONDS)
    fresh = [tickets.ticket(FRANK, later)[0] for _ in range(TICKETS_HELD)]
    assert tickets.redeem(old, later) is None
    assert [tickets.redeem(t, later) for t in fresh] == [FRANK] * TICKETS_HELD


def test_asking_for_tickets_over_and_over_costs_no_more_each_time() -> None:
    """20,000 tickets within their minute: quadratic before (every ticket copied them all,
    under the lock the engine's thread takes for each event: tens of seconds), linear now."""
    tickets = feed()
    started = time.perf_counter()
    for i in range(20_000):
        tickets.ticket(FRANK if i % 2 else ALICE, NOW + timedelta(milliseconds=i))
    assert time.perf_counter() - started < 5.0
    last = tickets.ticket(FRANK, NOW + timedelta(seconds=30))[0]
    assert tickets.redeem(last, NOW + timedelta(seconds=30)) == FRANK
