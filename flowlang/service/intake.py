"""The webhook intake thread (SQLite store): requests made durable and answered without
waiting for the engine.

Webhook requests hand over their events (`accept`). The thread takes every request waiting and
appends them all to the store's inbox in one transaction (`store/inbox.py`: one disk sync for
all); while a sync is under way the next requests queue up, so a batch grows with the load. Once
the transaction has committed, the rows go to the engine's worker (`Worker.stage`, in arrival
order) and only then are the requests answered: an API call made after an acknowledgement comes
after its events. A request whose batch could not be written gets the store's error (5xx):
nothing of it was acknowledged.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from flowlang.events import InboundEvent
from flowlang.service.metrics import Metrics
from flowlang.service.worker import Ack, Letter, Staged, WorkerStopped, answer
from flowlang.store.inbox import Entry, SqliteInbox
from flowlang.store.inbox import Letter as InboxLetter

log = logging.getLogger("flowlang.service")


@dataclass
class _Request:
    channel: str
    events: list[InboundEvent]
    letters: list[Letter]
    at: datetime
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Ack]


class Intake:
    """The inbox's writer thread (see the module doc); `stage` hands its rows to the worker."""

    def __init__(
        self,
        inbox: SqliteInbox,
        stage: Callable[[list[Staged]], None],
        metrics: Metrics,
        max_batch: int = 256,
    ) -> None:
        self.inbox = inbox
        self.stage = stage
        self.metrics = metrics
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="flowlang-intake", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Make durable and answer the requests waiting, then stop."""
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout)
        self.inbox.close()

    def backlog(self) -> int:
        return self._queue.qsize()

    async def accept(
        self, channel: str, events: list[InboundEvent], letters: list[Letter], at: datetime
    ) -> Ack:
        """Make a request's events and dead letters durable (committed with the other requests
        waiting); the worker processes them after. Raises what the inbox raised (answer 5xx)."""
        if self._thread is None or not self._thread.is_alive():
            raise WorkerStopped("the webhook intake is not running")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Ack] = loop.create_future()
        self._queue.put(_Request(channel, events, letters, at, loop, future))
        return await future

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch: list[_Request] = []
            item = self._queue.get()
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

    def _commit(self, batch: list[_Request]) -> None:
        entries = [_entries(request) for request in batch]
        try:
            appended = self.inbox.append(entries)
        except Exception as exc:  # the inbox cannot be written: nothing was kept
            log.exception("cannot make %d webhook request(s) durable", len(batch))
            answer([(request.loop, request.future, exc) for request in batch])
            return
        staged: list[Staged] = []
        acks: list[Ack] = []
        for request, mine, done in zip(batch, entries, appended, strict=True):
            ack = Ack()
            for i, (entry, seq) in enumerate(zip(mine, done.seqs, strict=True)):
                if entry.letter is not None:
                    ack.dead_letters += 1
                    assert seq is not None  # a letter is always appended
                    staged.append(Staged(seq, None, entry.letter))
                elif seq is None:
                    ack.duplicates += 1
                else:
                    ack.accepted += 1
                    staged.append(Staged(seq, request.events[i], None))
            acks.append(ack)
        if staged:
            self.stage(staged)
        answer([(r.loop, r.future, ack) for r, ack in zip(batch, acks, strict=True)])
        for request, ack in zip(batch, acks, strict=True):
            self.metrics.inbound.labels(request.channel).inc(ack.accepted)
            if ack.duplicates:
                self.metrics.duplicates.labels(request.channel).inc(ack.duplicates)
            if ack.dead_letters:
                self.metrics.dead_letters.labels("payload").inc(ack.dead_letters)


def _entries(request: _Request) -> list[Entry]:
    entries = [
        Entry(event.channel, event.event_id, event.model_dump(mode="json"))
        for event in request.events
    ]
    for source, payload, reason in request.letters:
        letter = InboxLetter(source, payload, reason, request.at)
        entries.append(Entry(request.channel, None, payload, letter))
    return entries
