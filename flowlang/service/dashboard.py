"""The supervisor dashboard's live figures: the event log folded as the engine commits it, and
the snapshot the dashboard shows, pushed to each supervisor's stream when it changes.

`Board` is an engine listener (`Engine.listen`, on the worker thread). It seeds its
`InteractionLog` from the store the first time it is read (`fold_live`: from the latest report
checkpoint, so the cost does not grow with the store's age) and then applies each committed
event, so a snapshot costs the queues, agents and interactions in progress, never a read of the
log. Everything that reads or changes the log runs on the worker thread (`Worker.call`); the
event loop only learns that something changed (`changed`, an `asyncio.Event` per stream).

A snapshot (`GET /api/supervisor/dashboard`, the stream's `snapshot` event) holds:

- per queue: waiting, since when the longest has waited, in progress, and today's routed,
  answered, abandoned, average wait and service level against the queue's target;
- per media type: active interactions and the longest one (for social media, the longest public
  conversation and the longest direct message) with its channel and customer;
- per agent: presence and since when, load per media type against capacity, and the
  interactions they hold (offered, active, after-call work).

"Today" starts at midnight UTC, the service's clock.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from datetime import UTC, datetime, time, timedelta
from typing import Any

from flowlang.config import Deployment
from flowlang.reporting.checkpoint import (
    FOLD_VERSION,
    SETTLED_AFTER,
    CheckpointStore,
    fold_live,
    restore,
    snapshot,
)
from flowlang.reporting.interactions import Interaction, InteractionLog
from flowlang.reporting.reports import (
    DEFAULT_ANSWER_WITHIN,
    MEDIA_TITLES,
    MEDIA_TYPES,
    Report,
    Scope,
    interaction_details,
    queue_row,
    queue_totals,
)
from flowlang.runtime.engine import Engine

KEPT_DAYS = 4
STREAMS_PER_USER = 8
"""How many dashboard streams one user may have open at once; beyond, a stream is refused, so
that no one user holds the connections the server admits."""
"""Interactions ended and silent for longer are dropped from the live log at each new day (the
period reports read them from the store): the live log does not grow with the service's age."""

SHARED_FOR = timedelta(seconds=1)


def start_of_day(moment: datetime) -> datetime:
    """Midnight UTC of `moment`'s day."""
    return datetime.combine(moment.astimezone(UTC).date(), time(), UTC)


class Board:
    """The live log behind the supervisor dashboard (see the module doc)."""

    def __init__(
        self,
        store: CheckpointStore,
        deployment: Deployment | None,
        pace: float = 0.25,
        recheck: float = 5.0,
        heartbeat: float = 15.0,
    ) -> None:
        self.store = store
        self.deployment = deployment
        self.pace = pace  # seconds a stream gathers changes into one snapshot
        self.recheck = recheck  # seconds between two checks that a stream's token still holds
        self.heartbeat = heartbeat  # seconds between two keep-alive comments
        self.log: InteractionLog | None = None  # seeded on the worker, at the first read
        self.version = 0  # counts the events applied: a snapshot of an older one is stale
        self._day: datetime | None = None
        # Period figures from this moment on are whole in the log (None: from the first event).
        self._complete_from: datetime | None = None
        self._cached: tuple[int, datetime, dict[str, Any]] | None = None
        self._today = DayTotals()
        self._lock = threading.Lock()
        # each open stream: its loop, the event it waits on, its user
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event, str]] = []

    # ------------------------------------------------------------------ the listener (worker)
    def __call__(self, event: Mapping[str, Any]) -> None:
        if self.log is None:  # not seeded yet: the seed reads this event from the store
            return
        self.log.apply(event)
        self.version += 1
        if event.get("conversation_id"):
            self._today.touch(event["conversation_id"])
        with self._lock:
            waiters = list(self._waiters)
        for loop, changed, _ in waiters:
            loop.call_soon_threadsafe(changed.set)

    # ------------------------------------------------------------------ streams (event loop)
    def watch(self, user: str) -> asyncio.Event | None:
        """An event set whenever the log changes, for one stream of `user`'s; `unwatch` it at
        the end. None when `user` has STREAMS_PER_USER open."""
        changed = asyncio.Event()
        with self._lock:
            if sum(1 for w in self._waiters if w[2] == user) >= STREAMS_PER_USER:
                return None
            self._waiters.append((asyncio.get_running_loop(), changed, user))
        return changed

    def unwatch(self, changed: asyncio.Event) -> None:
        with self._lock:
            self._waiters = [w for w in self._waiters if w[1] is not changed]

    # ------------------------------------------------------------------ reading (worker)
    def live(self, now: datetime) -> InteractionLog:
        """The log, seeded at the first call; at a new day, interactions settled for
        `KEPT_DAYS` are dropped from it."""
        day = start_of_day(now)
        if self.log is None:
            found = self.store.report_checkpoint(None, FOLD_VERSION)
            # A checkpoint keeps the interactions active within SETTLED_AFTER of its moment.
            self._complete_from = found[0] - SETTLED_AFTER if found else None
            self.log = fold_live(self.store)
        elif self._day is not None and day > self._day:
            kept = timedelta(days=KEPT_DAYS)
            self.log = restore(snapshot(self.log, day, kept))
            self._complete_from = max(self._complete_from or day - kept, day - kept)
        self._day = day
        return self.log

    def complete_from(self, now: datetime) -> datetime:
        """The earliest moment from which the live log holds every interaction (a period
        starting then or later can be counted from it)."""
        self.live(now)
        return self._complete_from or datetime.min.replace(tzinfo=UTC)

    def details(self, conversation_id: str, now: datetime) -> Report | None:
        """The interaction details report's row for one conversation the live log holds."""
        log = self.live(now)
        item = log.interactions.get(conversation_id)
        if item is None:
            return None
        one = InteractionLog()
        one.interactions[item.id] = item
        return interaction_details(one, Scope(end=now))

    def snapshot(self, engine: Engine, now: datetime) -> dict[str, Any]:
        """What the dashboard shows at `now` (runs on the worker). Streams that ask within
        `SHARED_FOR` of each other, with no event in between, share one."""
        cached = self._cached
        if cached is not None and cached[0] == self.version and now - cached[1] < SHARED_FOR:
            return {**cached[2], "at": now.isoformat()}  # the page ticks waits from `at`
        body = self._snapshot(engine, now)
        self._cached = (self.version, now, body)
        return body

    def _snapshot(self, engine: Engine, now: datetime) -> dict[str, Any]:
        log = self.live(now)
        today = start_of_day(now)
        return {
            "at": now.isoformat(),
            "today": today.isoformat(),
            "version": self.version,
            "queues": self._queues(log, now, today, _not_responding(engine)),
            "media": _media(engine, log, now),
            "agents": self._agents(engine, log, now),
        }

    def targets(self) -> dict[str, timedelta]:
        """Each queue's service-level target (`service_level.answer_within`)."""
        if self.deployment is None:
            return {}
        return {name: q.service_level.answer_within for name, q in self.deployment.queues.items()}

    def _queues(
        self,
        log: InteractionLog,
        now: datetime,
        today: datetime,
        not_responding: Mapping[str, list[str]],
    ) -> list[dict[str, Any]]:
        targets = self.targets()
        totals = self._today.figures(log, today, targets)
        figures = {
            name: queue_row(name, sums, targets.get(name, DEFAULT_ANSWER_WITHIN).total_seconds())
            for name, sums in totals.items()
        }
        names = sorted(
            {*targets, *(q for q in log.waiting if q), *(q for q in log.with_agent if q)}
        )
        rows = []
        for name in names:
            waiting: Mapping[str, datetime] = log.waiting.get(name) or {}
            oldest = next(iter(waiting.values()), None)
            day = figures.get(name, {})
            rows.append(
                {
                    "queue": name,
                    "waiting": len(waiting),
                    "longest_waiting_since": _iso(oldest),
                    "longest_waiting": (now - oldest).total_seconds() if oldest else None,
                    "in_progress": len(log.with_agent.get(name) or {}),
                    "routed_today": day.get("routed", 0),
                    "answered_today": day.get("answered", 0),
                    "abandoned_today": day.get("abandoned", 0),
                    "average_wait_today": day.get("wait_average"),
                    "service_level_today": day.get("service_level"),
                    "answer_within": targets.get(name, DEFAULT_ANSWER_WITHIN).total_seconds(),
                    "not_responding": not_responding.get(name, []),
                }
            )
        return rows

    def _agents(self, engine: Engine, log: InteractionLog, now: datetime) -> list[dict[str, Any]]:
        known = self.deployment.agents if self.deployment is not None else {}
        rows = []
        for agent in sorted({*known, *log.agent_states, *log.holding}):
            record = engine.acd.agent_view(agent)
            logged_state, since = log.agent_states.get(agent, (None, None))
            if record is not None:
                presence = record.state
                held = dict(record.holding)
                capacity = {str(m): n for m, n in record.capacity.items()}
            else:
                profile = known.get(agent)
                presence = logged_state or (profile.state if profile else "offline")
                held = {
                    conv: log.interactions[conv].media
                    for conv in log.holding.get(agent, {})
                    if conv in log.interactions
                }
                capacity = {str(m): n for m, n in profile.capacity.items()} if profile else {}
            load = {
                media: {
                    "held": sum(1 for m in held.values() if m == media),
                    "capacity": capacity.get(media, 0),
                }
                for media in MEDIA_TYPES
            }
            if logged_state != presence:  # e.g. after a restart, which the log does not see
                since = None
            rows.append(
                {
                    "agent": agent,
                    "name": known[agent].name if agent in known and known[agent].name else agent,
                    "presence": presence,
                    "since": _iso(since),
                    "load": load,
                    "interactions": [
                        _held(engine, log, agent, conv, media) for conv, media in held.items()
                    ],
                }
            )
        return rows


class DayTotals:
    """Today's queue figures, kept per interaction: a snapshot recounts only the interactions
    an event changed since the last one, so its cost does not grow with the day's volume."""

    def __init__(self) -> None:
        self.day: datetime | None = None
        self.totals: dict[str, dict[str, float]] = {}
        self._of: dict[str, dict[str, dict[str, float]]] = {}  # conversation -> its part
        self._changed: set[str] = set()

    def touch(self, conversation_id: str) -> None:
        self._changed.add(conversation_id)

    def figures(
        self, log: InteractionLog, day: datetime, targets: dict[str, timedelta]
    ) -> dict[str, dict[str, float]]:
        """The sums of `queue_totals` over the interactions of `log` since `day`."""
        if day != self.day:  # a new day (or the first call): everything is counted afresh
            self.day, self.totals, self._of = day, {}, {}
            changed: set[str] | dict[str, Interaction] = log.interactions
        else:
            changed = self._changed
        scope = Scope(start=day)
        longest_gone: set[str] = set()
        for conv in changed:
            for queue, sums in self._of.pop(conv, {}).items():
                total = self.totals[queue]
                for key, value in sums.items():
                    if key != "wait_longest":
                        total[key] -= value
                    elif value >= total.get(key, 0.0):
                        longest_gone.add(queue)
            item = log.interactions.get(conv)
            part = queue_totals([item], scope, targets, DEFAULT_ANSWER_WITHIN, day) if item else {}
            if part:
                self._of[conv] = part
            for queue, sums in part.items():
                total = self.totals.setdefault(queue, {})
                for key, value in sums.items():
                    if key == "wait_longest":
                        total[key] = max(total.get(key, 0.0), value)
                    else:
                        total[key] = total.get(key, 0.0) + value
        for queue in longest_gone:  # the longest wait left with its interaction: find the next
            self.totals[queue]["wait_longest"] = max(
                (p[queue].get("wait_longest", 0.0) for p in self._of.values() if queue in p),
                default=0.0,
            )
        self._changed = set()
        return self.totals


def _not_responding(engine: Engine) -> dict[str, list[str]]:
    """Per queue, its members the ACD holds as not responding: they let an offer time out,
    and no offer reaches them until they set themselves available (docs/acd.md)."""
    found: dict[str, list[str]] = {}
    for record in engine.acd.agent_views():
        if record.state == "not_responding":
            for queue in sorted(record.queues):
                found.setdefault(queue, []).append(record.id)
    return found


def _held(
    engine: Engine,
    log: InteractionLog,
    agent: str,
    conv_id: str,
    media: str,
) -> dict[str, Any]:
    item = log.interactions.get(conv_id)
    interaction = engine.acd.interaction_view(conv_id)
    phase = interaction.phase if interaction is not None else "active"
    held: Mapping[str, datetime] = log.holding.get(agent) or {}
    since = held.get(conv_id)
    return {
        "conversation_id": conv_id,
        "state": {"offered": "offered", "wrap_up": "after_call_work"}.get(phase, "active"),
        "media": media,
        "channel": item.channel if item else "",
        "customer": item.customer if item else "",
        "customer_name": _name(engine, item.customer if item else None),
        "queue": interaction.queue if interaction is not None else None,
        "since": _iso(since),
    }


def _media(engine: Engine, log: InteractionLog, now: datetime) -> list[dict[str, Any]]:
    rows = []
    for media in MEDIA_TYPES:
        active: Mapping[str, datetime] = log.active.get(media) or {}
        first = next(iter(active.items()), None)
        item = log.interactions.get(first[0]) if first else None
        rows.append(
            {
                "media": media,
                "title": MEDIA_TITLES[media],
                "active": len(active),
                "longest_conversation": first[0] if first else None,
                "longest_since": _iso(first[1]) if first else None,
                "longest": (now - first[1]).total_seconds() if first else None,
                "channel": item.channel if item else None,
                "customer": item.customer if item else None,
                "customer_name": _name(engine, item.customer if item else None),
            }
        )
    return rows


def _name(engine: Engine, customer_id: str | None) -> str | None:
    customer = engine.store.get_customer(customer_id) if customer_id else None
    return customer.name if customer is not None else None


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None
