"""Delivering outbound messages from the outbox, once the state change that made them is saved.

The Engine queues every message the channel policy allowed into the outbox inside the event's
unit of work, and hands them to the adapters after it commits. So a rolled-back event sends
nothing (its replay will not send twice), and a failed delivery leaves the flow's progress in
place: the message stays in the outbox and is retried with a growing wait (or the wait the
receiver asked for: an adapter error's `retry_after` seconds, from a Retry-After), in order
behind it the conversation's later messages, until it is delivered or, after the last attempt or
an error the adapter calls permanent, kept as an `outbound:<channel>` dead letter for
`flowlang replay`. With several adapters, the outbox remembers which of them took a message, so
a retry goes only to the ones that failed. The id a vendor gives a message it accepted is kept
(`SentLedger.record_sent`), for its status webhooks to find. A message given up on is kept there
too, `failed` with the reason, under `unsent_id(message_id)` (no vendor id has that form), so
that its history and the agent who wrote it see it was not delivered; its `delivery_failed`
event names the message and says `given_up`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta

from flowlang.runtime.event_feed import EventFeed
from flowlang.runtime.ports import (
    ConversationStore,
    OutboundAdapter,
    OutboundMessage,
    Outbox,
    PendingSend,
    SentMessage,
)

UNSENT = "unsent:"


def unsent_id(message_id: str) -> str:
    """The `vendor_id` a message given up on is kept under (no vendor accepted it)."""
    return UNSENT + message_id


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long an undelivered message is retried (waits double each time)."""

    max_attempts: int = 5
    first_wait: timedelta = timedelta(seconds=30)
    max_wait: timedelta = timedelta(hours=1)

    def wait_after(self, attempts: int) -> timedelta:
        wait: timedelta = self.first_wait * 2 ** (attempts - 1)
        return min(wait, self.max_wait)


def adapter_names(adapters: Sequence[OutboundAdapter]) -> list[str]:
    """Each adapter's name in the outbox: its `name` attribute, else its class name; a name
    that repeats gets `#2`, `#3`, ... in list order."""
    names: list[str] = []
    for adapter in adapters:
        base = getattr(adapter, "name", None) or type(adapter).__name__
        name, count = base, 1
        while name in names:
            count += 1
            name = f"{base}#{count}"
        names.append(name)
    return names


@dataclass
class FailedSend:
    """A delivery that failed: retried at `retry_at`, or given up on (None) as a dead letter."""

    message: OutboundMessage
    reason: str
    attempts: int
    retry_at: datetime | None
    permanent: bool = False  # the receiver refused it for good (not a run of failed attempts)


class Deliverer:
    """Queues messages in an outbox during a unit of work and delivers them after it."""

    def __init__(
        self,
        outbox: Outbox,
        adapters: Sequence[OutboundAdapter],
        store: ConversationStore,
        events: EventFeed,
        unit_of_work: Callable[[], AbstractContextManager[None]],
        retry: RetryPolicy | None = None,
        deliver: bool = True,
        on_delivered: Callable[[OutboundMessage], None] | None = None,
    ) -> None:
        self.outbox = outbox
        self.on_delivered = on_delivered  # told of each message every adapter has taken
        self.deliver = deliver  # False: messages stay in the outbox for another process
        self.adapters = adapters
        self.store = store
        self.events = events
        self.unit_of_work = unit_of_work
        self.retry = retry or RetryPolicy()
        self._queued: list[tuple[int, str]] = []  # (outbox id, conversation) not delivered yet
        self.held = False  # a group of events is open (Engine.group): deliver after its commit
        self._retry_held = False  # an outbox retry came while held: made after the commit

    @property
    def adapters(self) -> list[OutboundAdapter]:
        return self._adapters

    @adapters.setter
    def adapters(self, adapters: Sequence[OutboundAdapter]) -> None:
        self._adapters = list(adapters)
        self._named = list(zip(adapter_names(self._adapters), self._adapters, strict=True))

    def queue(
        self, message: OutboundMessage, at: datetime, delivered_to: Sequence[str] = ()
    ) -> None:
        """Keep `message` to deliver when the unit of work in progress commits (to every
        adapter not named in `delivered_to`)."""
        fields = dict(vars(message))  # shallow: `asdict` would deep-copy every content dict
        fields["message_id"] = message.message_id or uuid.uuid4().hex
        send_id = self.outbox.add_outbound(message.conversation_id, fields, at, delivered_to)
        self._queued.append((send_id, message.conversation_id))

    def mark(self) -> int:
        """Where the messages queued from now on begin (for `discard(mark)`)."""
        return len(self._queued)

    def discard(self, mark: int = 0) -> None:
        """The unit of work rolled back: what it queued (since `mark`) must not be sent."""
        for send_id, _ in self._queued[mark:]:
            self.outbox.outbound_done(send_id)  # a transactional outbox has dropped them already
        del self._queued[mark:]
        if not mark:
            self._retry_held = False

    def deliver_queued(self, now: datetime | None) -> list[FailedSend]:
        """Deliver what the committed unit of work queued, after any older messages of the same
        conversations still waiting (nothing while a group is open: its commit delivers)."""
        if self.held or not (self._queued or self._retry_held):  # (most events send nothing)
            return []
        conversations = {conversation for _, conversation in self._queued}
        self._queued.clear()
        failed = []
        if self._retry_held:
            self._retry_held = False
            failed = self.deliver_pending(now)
        if not conversations or not self.deliver:
            return failed
        return failed + self._deliver(self.outbox.pending_outbound(conversations), now)

    def deliver_pending(self, now: datetime | None) -> list[FailedSend]:
        """Retry every waiting message whose next attempt is due by `now` (None: all); while a
        group is open, after its commit (the outbox it would read holds uncommitted rows)."""
        if self.held:
            self._retry_held = True
            return []
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
            took = list(send.delivered_to)
            try:
                for name, adapter in self._named:
                    if name not in took:
                        vendor_id = adapter.send(message)
                        took.append(name)
                        if vendor_id:
                            self._sent(message, vendor_id, now or send.queued_at)
            except Exception as exc:  # any adapter failure: keep the message, never lose it
                failed.append(self._failed(send, message, took, exc, now))
                held.add(send.conversation_id)
                continue
            self.outbox.outbound_done(send.id)
            if self.on_delivered is not None:
                self.on_delivered(message)
        return failed

    def _sent(self, message: OutboundMessage, vendor_id: str, at: datetime) -> None:
        self.store.record_sent(
            SentMessage(
                channel=message.channel,
                vendor_id=vendor_id,
                message_id=message.message_id,
                conversation_id=message.conversation_id,
                recipient=message.recipient,
                sent_at=at,
            )
        )

    def _failed(
        self,
        send: PendingSend,
        message: OutboundMessage,
        took: list[str],
        exc: Exception,
        now: datetime | None,
    ) -> FailedSend:
        at = now or send.next_attempt_at or send.queued_at
        reason = f"{type(exc).__name__}: {exc}"
        error = str(exc) or type(exc).__name__
        attempts = send.attempts + 1
        permanent = bool(getattr(exc, "permanent", False))
        give_up = permanent or attempts >= self.retry.max_attempts
        told = getattr(exc, "retry_after", None)  # the receiver's Retry-After, when it gave one
        wait = timedelta(seconds=told) if told is not None else self.retry.wait_after(attempts)
        retry_at = None if give_up else at + wait
        with self.events.committing(self.unit_of_work()):
            if retry_at is None:
                letter = {**send.message, "delivered_to": took} if took else send.message
                self.store.dead_letter(f"outbound:{message.channel}", letter, reason, at)
                self.outbox.outbound_done(send.id)
                self.store.record_sent(
                    SentMessage(
                        channel=message.channel,
                        vendor_id=unsent_id(message.message_id),
                        message_id=message.message_id,
                        conversation_id=message.conversation_id,
                        recipient=message.recipient,
                        sent_at=at,
                        status="failed",
                        status_at=at,
                        error=error,
                    )
                )
            else:
                self.outbox.outbound_failed(send.id, reason, retry_at, took)
            self.events.append(
                "delivery_failed",
                at,
                message.conversation_id,
                {
                    "channel": message.channel,
                    "sender": message.sender,
                    "message_id": message.message_id,
                    "reason": reason,
                    "error": error,
                    "attempts": attempts,
                    "delivered_to": took,
                    "retry_at": retry_at.isoformat() if retry_at else None,
                    "given_up": retry_at is None,
                    "permanent": permanent,
                },
            )
        return FailedSend(message, reason, attempts, retry_at, permanent)
