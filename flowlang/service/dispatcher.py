"""The outbox's own thread: vendor HTTP never runs where webhooks are acknowledged.

The engine's worker (`worker.py`) only commits messages into the outbox and wakes this thread
(`wake`). The dispatcher delivers every message that is due, on a store connection of its own
(a second SQLite connection on the WAL file, or a PostgreSQL connection of its own), so a vendor
that answers slowly or hangs delays later sends, never a webhook's answer, the flow or an
agent's action. It looks at the outbox again every `interval` seconds for the retries that came
due. What a delivery does is the engine's `Deliverer` (runtime/delivery.py): messages of one
conversation in order (an older one undelivered holds the later ones back), the same
idempotency key on every attempt, the vendor's `Retry-After`, and a dead letter for a message
given up on. A message the vendor took just before a crash is sent again after the restart,
with the same key (at least once). On PostgreSQL its connection is opened again after the
server dropped it (`store/reconnect.py`); a delivery whose commit the loss cut off stays in the
outbox and is sent again with the same key. Listeners (`listen`) hear the log events its deliveries
write (`delivery_failed`), on its thread, once committed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from flowlang.runtime.delivery import Deliverer, FailedSend, RetryPolicy
from flowlang.runtime.event_feed import EventFeed, Listener
from flowlang.runtime.ports import OutboundAdapter, OutboundMessage
from flowlang.service.metrics import Metrics
from flowlang.store import Store
from flowlang.store.reconnect import Reconnect, StoreUnreachable

APPLICATION_NAME = "flowlang-outbox"

log = logging.getLogger("flowlang.service")


def failure_status(failed: FailedSend) -> str:
    """The `flowlang_deliveries` status of a failed attempt."""
    if failed.retry_at is not None:
        return "retried"
    return "failed_permanent" if failed.permanent else "given_up"


class Dispatcher:
    """Delivers the outbox on its own thread (see the module doc). `start` opens its store
    connection (raising what opening raised) and delivers what was waiting; `stop` ends it
    after the send in hand, or gives up waiting after `timeout` seconds."""

    def __init__(
        self,
        open_store: Callable[[], Store],
        adapters: Sequence[OutboundAdapter],
        metrics: Metrics,
        *,
        retry: RetryPolicy | None = None,
        interval: float = 1.0,
        may_deliver: Callable[[Store], bool] = lambda _store: True,
    ) -> None:
        """`may_deliver(store)` before each pass: False skips it (a process that does not
        lead the others on a shared PostgreSQL store delivers nothing)."""
        self._open_store = open_store
        self.may_deliver = may_deliver
        self.adapters = list(adapters)
        self.metrics = metrics
        self.retry = retry or RetryPolicy()
        self.interval = interval
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._started = threading.Event()
        self._start_error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._delivered = 0  # messages sent since the outbox rows were last deleted
        self._listeners: list[Listener] = []
        self.reconnect = Reconnect(APPLICATION_NAME)

    def listen(self, listener: Listener) -> None:
        """Call `listener` (on the dispatcher's thread: it must not block) with each log event
        a delivery writes, once committed."""
        self._listeners.append(listener)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="flowlang-outbox", daemon=True)
        self._thread.start()
        self._started.wait()
        if self._start_error is not None:
            raise self._start_error

    def wake(self) -> None:
        """New messages were committed to the outbox: deliver them now."""
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("outbox: a send still in progress at shutdown; it is retried on start")

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        try:
            store = self._open_store()
        except BaseException as exc:
            self._start_error = exc
            self._started.set()
            return
        self._started.set()
        events = EventFeed(store)
        events.listeners = self._listeners
        deliverer = Deliverer(
            store,
            self.adapters,
            store,
            events,
            store.transaction,
            self.retry,
            on_delivered=self._sent,
        )
        try:
            while not self._stopping.is_set():
                self._pass(deliverer, store)
                self._wake.wait(self.interval)
                self._wake.clear()
        finally:
            try:
                store.close()
            except Exception:
                log.exception("outbox: closing its store connection failed")

    def _pass(self, deliverer: Deliverer, store: Store) -> None:
        """Deliver every message due now; delete the delivered rows in one commit."""
        try:
            store.ensure_open(self.reconnect)
        except StoreUnreachable:  # (logged by the reconnect) tried again at the next pass
            return
        if not self.may_deliver(store):
            return
        try:
            for failed in deliverer.deliver_pending(datetime.now(UTC)):
                self.metrics.deliveries.labels(failure_status(failed)).inc()
            if self._delivered:
                self._delivered = 0
                with store.transaction():
                    pass  # the store deletes the rows of the messages delivered since
        except Exception as exc:  # the dispatcher outlives a failing pass; the outbox keeps it
            if store.dialect.closed:  # opened again at once, at the next pass
                self.reconnect.lost(exc)
                self._wake.set()
                return
            log.exception("outbox: a delivery pass failed; it is tried again")

    def _sent(self, message: OutboundMessage) -> None:
        self._delivered += 1
        self.metrics.deliveries.labels("sent").inc()
