"""Reports from the engine's event log: interaction details, agent and queue performance,
real-time views.

    log = InteractionLog.from_events(store.iter_events(end=scope.end))
    print(to_table(queue_performance(log, scope)))
"""

from flowlang.reporting.checkpoint import fold_live
from flowlang.reporting.html import to_html
from flowlang.reporting.interactions import AgentSegment, Interaction, InteractionLog, QueueVisit
from flowlang.reporting.render import to_csv, to_json, to_table
from flowlang.reporting.reports import (
    Report,
    Scope,
    agent_performance,
    interaction_details,
    queue_performance,
    realtime,
)
from flowlang.reporting.timeline import Timeline, choose_interval, timeline

__all__ = [
    "AgentSegment",
    "Interaction",
    "InteractionLog",
    "QueueVisit",
    "Report",
    "Scope",
    "Timeline",
    "agent_performance",
    "choose_interval",
    "fold_live",
    "interaction_details",
    "queue_performance",
    "realtime",
    "timeline",
    "to_csv",
    "to_html",
    "to_json",
    "to_table",
]
