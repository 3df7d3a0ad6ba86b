"""What an agent in after-call work may still read: their own interaction, as it was when it
left them, never what the customer wrote after (docs/api.md, "After-call work").

When an agent's interaction ends into after-call work (they completed or transferred it, the
customer left), `WorkEnds`, a listener of the engine's log, keeps where the customer's history
stood (`work_ends` table, so a restart and another process on a PostgreSQL store keep it): the
history the agent then reads stops there, even when the conversation goes on with someone else.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flowlang.runtime.ports import ConversationView
from flowlang.store.sql import HistoryPage, SqlStore


class WorkEnds:
    """Keeps, at each `after_call_work` event, where the history stood; forgets it once the
    agent's after-call work is over (runs on the engine's worker, after the commit)."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store

    def __call__(self, event: Mapping[str, Any]) -> None:
        conv_id, agent = event.get("conversation_id"), event.get("agent")
        if not conv_id or not agent:
            return
        if event["kind"] == "after_call_work":
            self.store.set_work_end(str(conv_id), str(agent))
        elif event["kind"] == "wrap_up_ended":
            self.store.forget_work_end(str(conv_id), str(agent))


def history_through(
    store: SqlStore, customer_id: str, before: int | None, limit: int, through: int | None
) -> HistoryPage:
    """A page of the customer's history (as `SqlStore.history`) of the messages up to seq
    `through` only (None: none of it)."""
    if through is None:
        return HistoryPage([], None)
    last = through + 1 if before is None else min(before, through + 1)
    return store.history(customer_id, before=last, limit=limit)


def went_on(store: SqlStore, conv: ConversationView, agent: str) -> bool:
    """Whether the conversation went on after `agent`'s interaction of it ended: it is no
    longer closed, or the customer's history has grown since (unknown: yes)."""
    through = store.work_end(conv.id, agent)
    if conv.status != "closed" or through is None:
        return True
    newest = store.history(conv.customer_id, limit=1).messages
    return bool(newest) and int(newest[-1]["seq"]) > through
