"""Every report over one log, in a form two logs can be compared by."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flowlang.reporting import (
    InteractionLog,
    Scope,
    agent_performance,
    interaction_details,
    queue_performance,
    realtime,
)


def every_report(log: InteractionLog, scope: Scope, now: datetime) -> list[Any]:
    """Interaction details, agent and queue performance over `scope`, real time at `now`."""
    tables = [
        interaction_details(log, scope),
        agent_performance(log, scope),
        queue_performance(log, scope),
        *realtime(log, now, Scope()),
    ]
    return [(t.kind, t.rows, t.total) for t in tables]
