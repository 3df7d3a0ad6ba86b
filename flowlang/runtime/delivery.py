"""Delivering outbound messages from the outbox, once the state change that made them is saved.

The Engine queues every message the channel policy allowed into the outbox inside the event's
unit of work, and hands them to the adapters after it commits. So a rolled-back event sends
nothing (its replay will not send twice), and a failed delivery leaves the flow's progress in
place: the message stays in the outbox and is retried with a growing wait, in order behind it
the conversation's later messages, until it is delivered or, after the last attempt or an error
the adapter calls permanent, kept as an `outbound:<channel>` dead letter for `flowlang replay`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta

from flowlang.runtime.ports import (
    ConversationStore,
    OutboundAdapter,
    OutboundMessage,
    Outbox,
    PendingSend,
)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long an undelivered message is retried (waits double each time)."""

    max_attempts: int = 5
    first_wait: timedelta = timedelta(seconds=30)
    max_wait: timedelta = timedelta(hours=1)

    def wait_after(self, attempts: int) -> timedelta:
        wait: timedelta = self.first_wait * 2 ** (attempts - 1)
        return min(wait, self.max_wait)


@dataclass
class FailedSend:
    """A delivery that failed: retried at `retry_at`, or given up on (None) as a dead letter."""

    message: OutboundMessage
    reason: str
    attempts: int
    retry_at: datetime | None


class Deliverer:
    """Queues messages in an outbox during a unit of work and delivers them after it."""

    def __init__(
        self,
        outbox: Outbox,
        adapters: Sequence[OutboundAdapter],
        store: ConversationStore,
        unit_of_work: Callable[[], AbstractContextManager[None]],
        retry: RetryPolicy | None = None,
        deliver: bool = True,
    ) -> None:
        self.outbox = outbox
        self.deliver = deliver  # False: messages stay in the outbox for another process
        self.adapters = list(adapters)
        self.store = store
        self.unit_of_work = unit_of_work
        self.retry = retry or RetryPolicy()
        self._queued: list[int] = []
        self._conversations: set[str] = set()

    def queue(self, message: OutboundMessage, at: datetime) -> None:
        """Keep `message` to deliver when the unit of work in progress commits."""
        fields = dict(vars(message))  # shallow: `asdict` would deep-copy every content dict
        self._queued.append(self.outbox.add_outbound(message.conversation_id, fields, at))
        self._conversations.add(message.conversation_id)

    def discard(self) -> None:
        """The unit of work rolled back: what it queued must not be sent."""
        for send_id in self._queued:
            self.outbox.outbound_done(send_id)  # a transactional outbox has dropped them already
        self._queued.clear()
        self._conversations.clear()

    def deliver_queued(self, now: datetime | None) -> list[FailedSend]:
        """Deliver what the committed unit of work queued, after any older messages of the same
        conversations still waiting."""
        conversations = set(self._conversations)
        self._queued.clear()
        self._conversations.clear()
        if not conversations or not self.deliver:
            return []
        return self._deliver(self.outbox.pending_outbound(conversations), now)

    def deliver_pending(self, now: datetime | None) -> list[FailedSend]:
        """Retry every waiting message whose next attempt is due by `now` (None: all)."""
        if not self.deliver:
            return []
        return self._deliver(self.outbox.pending_outbound(), now)

    def _deliver(self, pending: list[PendingSend], now: datetime | None) -> list[FailedSend]:
        failed: list[FailedSend] = []
        held: set[str] = set()  # conversations with an older message undelivered: keep order
        for send in pending:
            if send.conversation_id in held:
                continue
            if now is not None and send.next_attempt_at is not None and send.next_attempt_at > now:
                held.add(send.conversation_id)
                continue
            message = OutboundMessage(**send.message)
            try:
                for adapter in self.adapters:
                    adapter.send(message)
            except Exception as exc:  # any adapter failure: keep the message, never lose it
                failed.append(self._failed(send, message, exc, now))
                held.add(send.conversation_id)
                continue
            self.outbox.outbound_done(send.id)
        return failed

    def _failed(
        self, send: PendingSend, message: OutboundMessage, exc: Exception, now: datetime | None
    ) -> FailedSend:
        at = now or send.next_attempt_at or send.queued_at
        reason = f"{type(exc).__name__}: {exc}"
        attempts = send.attempts + 1
        give_up = bool(getattr(exc, "permanent", False)) or attempts >= self.retry.max_attempts
        retry_at = None if give_up else at + self.retry.wait_after(attempts)
        with self.unit_of_work():
            if retry_at is None:
                self.store.dead_letter(f"outbound:{message.channel}", send.message, reason, at)
                self.outbox.outbound_done(send.id)
            else:
                self.outbox.outbound_failed(send.id, reason, retry_at)
            self.store.append_event(
                "delivery_failed",
                at,
                message.conversation_id,
                {
                    "channel": message.channel,
                    "sender": message.sender,
                    "reason": reason,
                    "attempts": attempts,
                    "retry_at": retry_at.isoformat() if retry_at else None,
                },
            )
        return FailedSend(message, reason, attempts, retry_at)
