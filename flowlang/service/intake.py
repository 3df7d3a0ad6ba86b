"""The webhook intake thread: requests made durable and answered without waiting for the
engine.

Webhook requests hand over their events (`accept`). The thread takes every request waiting and
appends them all to the inbox in one transaction (one disk sync for all): on a SQLite store the
store's inbox file (`store/inbox.py`), on a PostgreSQL store the shared inbound log, on a
connection of the intake's own (`store/postgres_inbox.py`). While a sync is under way the next
requests queue up, so a batch grows with the load. Once the transaction has committed, the
engine's worker is woken (`on_commit`: `Worker.wake` in the same process, the engine process's
wake pipe in the service's front process), and only then are the requests answered: the worker
reads the inbox (or the log) when woken, so an API call made after an acknowledgement comes
after its events. A request whose batch could not be written gets the store's error (503 with
`Retry-After`: the vendor sends it again): nothing of it was acknowledged. On PostgreSQL a
connection the server dropped is opened again at the next batch (`store/reconnect.py`).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol

from flowlang.events import InboundEvent
from flowlang.service.metrics import Metrics
from flowlang.service.worker import (
    Ack,
    Letter,
    WebhookRequest,
    WorkerStopped,
    answer,
    settle_requests,
)
from flowlang.store.inbox import Appended, Entry
from flowlang.store.inbox import Letter as InboxLetter
from flowlang.store.reconnect import StoreUnreachable

log = logging.getLogger("flowlang.service")


class Inbox(Protocol):
    """Where the intake appends: `SqliteInbox` (store/inbox.py) or `PostgresInbox`."""

    def append(self, requests: Sequence[Sequence[Entry]]) -> list[Appended]: ...

    def close(self) -> None: ...


class Intake:
    """The inbox's writer thread (see the module doc); `on_commit` wakes the engine's worker."""

    def __init__(
        self,
        inbox: Inbox,
        on_commit: Callable[[], None],
        metrics: Metrics,
        max_batch: int = 256,
    ) -> None:
        self.inbox = inbox
        self.on_commit = on_commit
        self.metrics = metrics
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[WebhookRequest | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        # Set (under the lock) when the stop begins: nothing is queued after the stop's mark,
        # which would never be answered.
        self._closed = False
        self._closing = threading.Lock()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="flowlang-intake", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Make durable and answer the requests waiting, then stop; a request that comes once
        the stop has begun is refused (WorkerStopped: 503, the channel sends it again)."""
        with self._closing:
            self._closed = True
            if self._thread is not None and self._thread.is_alive():
                self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout)
        self.inbox.close()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def backlog(self) -> int:
        return self._queue.qsize()

    async def accept(
        self, channel: str, events: list[InboundEvent], letters: list[Letter], at: datetime
    ) -> Ack:
        """Make a request's events and dead letters durable (committed with the other requests
        waiting); the worker processes them after. Raises what the inbox raised (answer 5xx)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Ack] = loop.create_future()
        with self._closing:
            if self._closed or not self.alive:
                raise WorkerStopped("the webhook intake is not running")
            self._queue.put(WebhookRequest(channel, events, letters, at, loop, future))
        return await future

    def _run(self) -> None:
        stopping = False
        while True:
            batch: list[WebhookRequest] = []
            try:  # once stopping, every request queued before the mark, then no more
                item = self._queue.get_nowait() if stopping else self._queue.get()
            except queue.Empty:
                return
            while True:
                if item is None:
                    stopping = True
                else:
                    batch.append(item)
                if len(batch) >= self.max_batch:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if batch:
                self._commit(batch)

    def _commit(self, batch: list[WebhookRequest]) -> None:
        entries = [_entries(request) for request in batch]
        try:
            appended = self.inbox.append(entries)
        except StoreUnreachable as exc:  # (its loss and the attempts are logged once)
            answer([(request.loop, request.future, exc) for request in batch])
            return
        except Exception as exc:  # the inbox cannot be written: nothing was kept
            log.exception("cannot make %d webhook request(s) durable", len(batch))
            answer([(request.loop, request.future, exc) for request in batch])
            return
        acks = [_ack(mine, done) for mine, done in zip(entries, appended, strict=True)]
        if any(ack.accepted or ack.dead_letters for ack in acks):
            self.on_commit()
        settle_requests(self.metrics, batch, acks)


def _ack(entries: list[Entry], appended: Appended) -> Ack:
    """What became of one request's entries: appended (a letter always is), or duplicates."""
    ack = Ack()
    for entry, seq in zip(entries, appended.seqs, strict=True):
        if entry.letter is not None:
            ack.dead_letters += 1
        elif seq is None:
            ack.duplicates += 1
        else:
            ack.accepted += 1
    return ack


def _entries(request: WebhookRequest) -> list[Entry]:
    entries = [
        Entry(event.channel, event.event_id, event.model_dump(mode="json"))
        for event in request.events
    ]
    for source, payload, reason in request.letters:
        letter = InboxLetter(source, payload, reason, request.at)
        entries.append(Entry(request.channel, None, payload, letter))
    return entries
