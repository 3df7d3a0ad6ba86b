"""The event log as the Engine writes it, handed to listeners once each unit of work commits.

A host that keeps live figures (`InteractionLog.apply`, a dashboard, a metrics exporter) calls
`engine.listen(fn)`: `fn` then gets every log event in the form `store.iter_events()` gives it
(`{"kind", "at", "conversation_id", **data}`), in the order written, and only events whose unit
of work committed: an event that fails and is rolled back tells listeners nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
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

    @contextmanager
    def committing(self, unit_of_work: AbstractContextManager[None]) -> Iterator[None]:
        """Run the block in `unit_of_work`; listeners hear its events once it has committed,
        and nothing if it rolls back."""
        try:
            with unit_of_work:
                yield
        except BaseException:
            self._pending.clear()  # rolled back: its events never happened
            raise
        self._tell_listeners()

    @contextmanager
    def undone_on_failure(self) -> Iterator[None]:
        """A part of the unit of work that may fail alone (a savepoint): when it raises, the
        listeners never hear of the events it wrote; the rest of the unit of work goes on."""
        mark = len(self._pending)
        try:
            yield
        except BaseException:
            del self._pending[mark:]
            raise

    def _tell_listeners(self) -> None:
        events, self._pending = self._pending, []
        for event in events:
            for listener in self.listeners:
                try:
                    listener(event)
                except Exception:  # the event is committed: a listener's bug must not undo it
                    _log.exception("event listener %r failed on %s", listener, event["kind"])
