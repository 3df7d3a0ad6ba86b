"""The event log as the Engine writes it, handed to listeners once each unit of work commits.

A host that keeps live figures (`InteractionLog.apply`, a dashboard, a metrics exporter) calls
`engine.listen(fn)`: `fn` then gets every log event in the form `store.iter_events()` gives it
(`{"kind", "at", "conversation_id", **data}`), in the order written, and only events whose unit
of work committed: an event that fails and is rolled back tells listeners nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime
from types import TracebackType
from typing import Any

from flowlang.runtime.ports import ConversationStore

Listener = Callable[[Mapping[str, Any]], None]

_log = logging.getLogger("flowlang.engine")


class EventFeed:
    """Writes log events to the store and keeps them for the listeners until the commit."""

    def __init__(self, store: ConversationStore) -> None:
        self.store = store
        self.listeners: list[Listener] = []
        self._pending: list[dict[str, Any]] = []

    def append(
        self, kind: str, at: datetime, conversation_id: str | None, data: dict[str, Any]
    ) -> None:
        self.store.append_event(kind, at, conversation_id, data)
        if self.listeners:
            self._pending.append(
                {**data, "kind": kind, "at": at, "conversation_id": conversation_id}
            )

    def committing(
        self, unit_of_work: AbstractContextManager[None]
    ) -> AbstractContextManager[None]:
        """Run the block in `unit_of_work`; listeners hear its events once it has committed,
        and nothing if it rolls back. With no listener (nothing is kept for one), the unit of
        work itself."""
        if not self.listeners and not self._pending:
            return unit_of_work
        return _Committing(self, unit_of_work)

    def undone_on_failure(self) -> AbstractContextManager[None]:
        """A part of the unit of work that may fail alone (a savepoint): when it raises, the
        listeners never hear of the events it wrote; the rest of the unit of work goes on.
        With no listener, nothing is kept for one: nothing to forget."""
        if not self.listeners:
            return _NOTHING_TO_FORGET
        return _Undone(self)

    def _tell_listeners(self) -> None:
        events, self._pending = self._pending, []
        for event in events:
            for listener in self.listeners:
                try:
                    listener(event)
                except Exception:  # the event is committed: a listener's bug must not undo it
                    _log.exception("event listener %r failed on %s", listener, event["kind"])


_NOTHING_TO_FORGET: AbstractContextManager[None] = nullcontext()


# Context managers as classes, not generators: one of each runs for every event.
class _Committing:
    __slots__ = ("_feed", "_unit")

    def __init__(self, feed: EventFeed, unit: AbstractContextManager[None]) -> None:
        self._feed, self._unit = feed, unit

    def __enter__(self) -> None:
        self._unit.__enter__()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self._unit.__exit__(kind, exc, tb)  # a unit of work never swallows an error
        except BaseException:
            self._feed._pending.clear()  # rolled back: its events never happened
            raise
        if kind is not None:
            self._feed._pending.clear()
        else:
            self._feed._tell_listeners()


class _Undone:
    __slots__ = ("_feed", "_mark")

    def __init__(self, feed: EventFeed) -> None:
        self._feed = feed
        self._mark = 0

    def __enter__(self) -> None:
        self._mark = len(self._feed._pending)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if kind is not None:
            del self._feed._pending[self._mark :]
