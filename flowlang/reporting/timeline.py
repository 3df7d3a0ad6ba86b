"""Figures over time for the HTML report's charts: per queue, per interval."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from flowlang.reporting.interactions import InteractionLog
from flowlang.reporting.reports import Scope

Points = list[tuple[float, float]]


def choose_interval(span: timedelta) -> timedelta:
    """A bucket size that gives a readable number of points for the period."""
    for limit, interval in (
        (timedelta(hours=6), timedelta(minutes=15)),
        (timedelta(days=2), timedelta(hours=1)),
        (timedelta(days=14), timedelta(hours=6)),
    ):
        if span <= limit:
            return interval
    return timedelta(days=1)


@dataclass
class Timeline:
    """Series per queue; x is seconds since `start`."""

    start: datetime
    interval: timedelta
    routed: dict[str, Points]  # interactions entering the queue per interval
    average_wait: dict[str, Points]  # average wait (minutes) of those answered per interval
    waiting: dict[str, Points]  # interactions waiting, as a step line


def timeline(
    log: InteractionLog, start: datetime, end: datetime, scope: Scope, interval: timedelta
) -> Timeline:
    buckets = max(1, -(-int((end - start).total_seconds()) // int(interval.total_seconds())))
    routed: dict[str, list[float]] = defaultdict(lambda: [0.0] * buckets)
    # waits in microseconds: integer sums, the same in any order
    wait_sum: dict[str, list[float]] = defaultdict(lambda: [0.0] * buckets)
    answered: dict[str, list[int]] = defaultdict(lambda: [0] * buckets)
    changes: dict[str, list[tuple[datetime, int]]] = defaultdict(list)

    def bucket(at: datetime) -> int | None:
        if at < start or at >= end:
            return None
        return int((at - start) / interval)

    for item in log.all_interactions():
        if not scope.takes(item):
            continue
        for visit in item.visits:
            queue = visit.queue
            if queue is None or (scope.queues and queue not in scope.queues):
                continue
            index = bucket(visit.entered_at)
            if index is not None:
                routed[queue][index] += 1
            if visit.result == "answered" and visit.left_at is not None:
                index = bucket(visit.left_at)
                if index is not None:
                    wait_sum[queue][index] += visit.wait_micros(visit.left_at)
                    answered[queue][index] += 1
            changes[queue].append((visit.entered_at, 1))
            if visit.left_at is not None:
                changes[queue].append((visit.left_at, -1))
    step = interval.total_seconds()
    end_x = buckets * step
    queues = sorted({*routed, *changes})
    return Timeline(
        start,
        interval,
        {q: _held([(i * step, n) for i, n in enumerate(routed[q])], end_x) for q in queues},
        {
            q: _held(
                [
                    (
                        i * step,
                        wait_sum[q][i] / 6e7 / answered[q][i] if answered[q][i] else 0.0,
                    )
                    for i in range(buckets)
                ],
                end_x,
            )
            for q in queues
        },
        {q: _waiting(changes[q], start, end) for q in queues},
    )


def _held(points: Points, end_x: float) -> Points:
    """A step series whose last value holds to the end of its interval."""
    return [*points, (end_x, points[-1][1])] if points else points


def _waiting(changes: list[tuple[datetime, int]], start: datetime, end: datetime) -> Points:
    """The number waiting as a step line: one point per moment, with every change at that
    moment applied (an interaction answered the instant it entered never waited, and a level
    never dips below zero between a leave and an entry at the same time)."""
    net: dict[datetime, int] = defaultdict(int)
    for at, delta in changes:
        net[at] += delta
    level = 0
    points: Points = [(0.0, 0.0)]
    for at in sorted(net):
        level += net[at]
        if at < start:
            points[0] = (0.0, float(level))
        elif at < end:
            points.append(((at - start).total_seconds(), float(level)))
    points.append(((end - start).total_seconds(), points[-1][1]))
    return points
