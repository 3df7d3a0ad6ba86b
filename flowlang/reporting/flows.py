"""Flow figures from the event log: milestones reached per flow and day, and the conversations
each branch of a percentage split took (`flowlang report flows`).

A conversation counts once per milestone and day however often it passes that point, and once
per split branch; a day is the UTC date of the event.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from flowlang.reporting.reports import Column, Report, Scope


def flow_reports(events: Iterable[Mapping[str, Any]], scope: Scope) -> list[Report]:
    """The milestones and splits reports of the events in `scope`'s period."""
    reached: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    taken: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for event in events:
        at, conv = event["at"], event.get("conversation_id") or ""
        if not scope.contains(at):
            continue
        if event["kind"] == "milestone":
            key = (str(event.get("flow")), at.date().isoformat(), str(event.get("milestone")))
            reached[key].add(conv)
        elif event["kind"] == "split_taken":
            key = (str(event.get("flow")), str(event.get("split")), str(event.get("branch")))
            taken[key].add(conv)
    return [_milestones(reached), _splits(taken)]


def _milestones(reached: Mapping[tuple[str, str, str], set[str]]) -> Report:
    rows = [
        {"flow": flow, "day": day, "milestone": name, "conversations": len(convs)}
        for (flow, day, name), convs in sorted(reached.items())
    ]
    return Report(
        "milestones",
        "Flow milestones",
        [
            Column("flow", "Flow"),
            Column("day", "Day"),
            Column("milestone", "Milestone"),
            Column("conversations", "Conversations", "int"),
        ],
        rows,
        notes=["conversations that reached each milestone, per flow and day (UTC)"],
    )


def _splits(taken: Mapping[tuple[str, str, str], set[str]]) -> Report:
    totals: dict[tuple[str, str], int] = defaultdict(int)
    for (flow, split, _branch), convs in taken.items():
        totals[flow, split] += len(convs)
    rows = [
        {
            "flow": flow,
            "split": split,
            "branch": branch,
            "conversations": len(convs),
            "share": len(convs) / totals[flow, split],
        }
        for (flow, split, branch), convs in sorted(taken.items())
    ]
    return Report(
        "splits",
        "Flow splits",
        [
            Column("flow", "Flow"),
            Column("split", "Split"),
            Column("branch", "Branch"),
            Column("conversations", "Conversations", "int"),
            Column("share", "Share", "percent"),
        ],
        rows,
        notes=["conversations each branch of a percentage split took, and its share"],
    )
