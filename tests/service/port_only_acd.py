"""An ACD that is not `SkillsAcd`: every call of the `Acd` port passed on to another ACD, and
nothing else of it reachable. A host that reads the ACD only through the port works with it as
with the built-in one."""

from __future__ import annotations

from datetime import datetime

from flowlang.runtime.ports import (
    Acd,
    AcdAgent,
    AcdInteraction,
    QueueStatus,
    RoutingNotice,
    RoutingRequest,
)


class PortOnlyAcd:
    """The `Acd` port of `inner`, and only that."""

    def __init__(self, inner: Acd) -> None:
        self._inner = inner

    def enqueue(self, request: RoutingRequest, now: datetime) -> list[RoutingNotice]:
        return self._inner.enqueue(request, now)

    def request_agent(
        self, conversation_id: str, agent: str, media: str, wait_seconds: int | None, now: datetime
    ) -> list[RoutingNotice]:
        return self._inner.request_agent(conversation_id, agent, media, wait_seconds, now)

    def withdraw(self, conversation_id: str, now: datetime) -> list[RoutingNotice]:
        return self._inner.withdraw(conversation_id, now)

    def complete(
        self, conversation_id: str, agent: str, wrap_up: str | None, now: datetime
    ) -> list[RoutingNotice]:
        return self._inner.complete(conversation_id, agent, wrap_up, now)

    def transfer(
        self, conversation_id: str, queue: str | None, agent: str | None, now: datetime
    ) -> list[RoutingNotice]:
        return self._inner.transfer(conversation_id, queue, agent, now)

    def accept(self, conversation_id: str, agent: str, now: datetime) -> list[RoutingNotice]:
        return self._inner.accept(conversation_id, agent, now)

    def decline(self, conversation_id: str, agent: str, now: datetime) -> list[RoutingNotice]:
        return self._inner.decline(conversation_id, agent, now)

    def wrap_up(
        self, conversation_id: str, agent: str, wrap_up: str | None, now: datetime
    ) -> list[RoutingNotice]:
        return self._inner.wrap_up(conversation_id, agent, wrap_up, now)

    def set_agent_state(self, agent: str, state: str, now: datetime) -> list[RoutingNotice]:
        return self._inner.set_agent_state(agent, state, now)

    def customer_activity(
        self, conversation_id: str, now: datetime, window_closes_at: datetime | None = None
    ) -> None:
        self._inner.customer_activity(conversation_id, now, window_closes_at)

    def tick(self, now: datetime) -> list[RoutingNotice]:
        return self._inner.tick(now)

    def next_deadline(self) -> datetime | None:
        return self._inner.next_deadline()

    def restore(
        self, request: RoutingRequest, entered_at: datetime, agent: str | None, now: datetime
    ) -> list[RoutingNotice]:
        return self._inner.restore(request, entered_at, agent, now)

    def reset(self) -> None:
        self._inner.reset()

    def queue_status(
        self, queue: str, now: datetime, conversation_id: str | None = None
    ) -> QueueStatus:
        return self._inner.queue_status(queue, now, conversation_id)

    def refused_code(
        self, conversation_id: str, queue: str | None, agent: str, code: str | None, now: datetime
    ) -> RoutingNotice | None:
        return self._inner.refused_code(conversation_id, queue, agent, code, now)

    def agent_view(self, agent: str) -> AcdAgent | None:
        return self._inner.agent_view(agent)

    def agent_views(self) -> list[AcdAgent]:
        return self._inner.agent_views()

    def interaction_view(self, conversation_id: str) -> AcdInteraction | None:
        return self._inner.interaction_view(conversation_id)

    def work_views(self, agent: str, now: datetime) -> list[AcdInteraction]:
        return self._inner.work_views(agent, now)

    def waiting_counts(self) -> dict[str, int]:
        return self._inner.waiting_counts()
