"""The reports one request asks for, from a store's event log: `flowlang report` and the
service's supervisor API build them here, the same way."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

from flowlang.reporting import checkpoint
from flowlang.reporting.checkpoint import CheckpointStore, fold_for_report, fold_live
from flowlang.reporting.flows import flow_reports
from flowlang.reporting.interactions import InteractionLog
from flowlang.reporting.reports import (
    Report,
    Scope,
    agent_performance,
    interaction_details,
    queue_performance,
    realtime,
)

if TYPE_CHECKING:
    from flowlang.config import Deployment

KINDS = ("interactions", "agents", "queues", "realtime", "all", "flows")


def requested_reports(
    store: CheckpointStore,
    kind: str,
    scope: Scope,
    moment: datetime,
    now: datetime,
    deployment: Deployment | None = None,
    checkpoints: bool = True,
    spill_over: int | None = None,
    store_fold: bool = True,
) -> tuple[list[Report], InteractionLog]:
    """The reports of `kind` (one of `KINDS`) for `scope`, the real-time ones at `moment`, and
    the log of the period they were counted from. The deployment gives the queues' service-level
    targets and the queues and agents a real-time view lists even when idle. The fold keeps
    about `spill_over` (default `SPILL_OVER`) interactions in memory at most (`InteractionLog`).
    Without `store_fold` it never writes the stored fold (`fold_for_report`)."""
    spill_over = spill_over or checkpoint.SPILL_OVER
    live: InteractionLog | None = None
    if kind == "flows":  # milestones and splits, read from the period's events alone
        return flow_reports(store.iter_events(scope.start, scope.end), scope), InteractionLog()
    if kind == "realtime":
        history = live = fold_live(store, moment, checkpoints, spill_over)
    else:
        # One read of the log serves both the period's reports and the real-time view.
        ends = [scope.end, moment] if kind == "all" else [scope.end]
        history, *rest = fold_for_report(
            store, scope.start, ends, now, checkpoints, spill_over, store_fold=store_fold
        )
        live = rest[0] if rest else None
    if deployment is None:
        return reports_of(kind, history, live, scope, moment), history
    targets = {name: q.service_level.answer_within for name, q in deployment.queues.items()}
    known = Known(targets, list(deployment.queues), list(deployment.agents))
    return reports_of(kind, history, live, scope, moment, known), history


class Known(NamedTuple):
    """What a deployment tells the reports: each queue's service-level target, and the
    queues and agents a real-time view lists even when idle."""

    answer_within: Mapping[str, timedelta] = {}
    queues: Sequence[str] = ()
    agents: Sequence[str] = ()


def reports_of(
    kind: str,
    history: InteractionLog,
    live: InteractionLog | None,
    scope: Scope,
    moment: datetime,
    known: Known | None = None,
) -> list[Report]:
    """The reports of `kind` from a folded log (`live`: the one the real-time views read at
    `moment`, None for none)."""
    known = known or Known()
    reports: list[Report] = []
    if kind in ("interactions", "all"):
        reports.append(interaction_details(history, scope))
    if kind in ("agents", "all"):
        reports.append(agent_performance(history, scope))
    if kind in ("queues", "all"):
        reports.append(queue_performance(history, scope, known.answer_within))
    if live is not None:
        reports.extend(realtime(live, moment, scope, known.queues, known.agents))
    return reports


def period_data(log: InteractionLog, scope: Scope) -> dict[str, Any]:
    """The period a set of reports covers, for their JSON form."""
    return {
        "from": scope.start.isoformat() if scope.start else None,
        "to": scope.end.isoformat() if scope.end else None,
        "media": sorted(scope.media),
        "queues": sorted(scope.queues),
        "agents": sorted(scope.agents),
        "last_event": log.last_event_at.isoformat() if log.last_event_at else None,
    }
