"""The timers of `while queued` blocks: armed when the flow routes a conversation to a queue
(and again after a restart), current while that wait goes on.

A timer's name says which wait it belongs to (the time the conversation entered the queue)
and which part of the block it runs: `in_queue|<entered at>|every|<n>` (the n-th repeat) or
`in_queue|<entered at>|after|<i>` (the i-th `after`). A wait that ends (an agent accepted, the
conversation left the queue or went to another one) leaves its timers stale: they do nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flowlang.compiler.ir import FlowGraph, InQueueSpec
from flowlang.runtime.context import EngineContext
from flowlang.runtime.ports import ConversationView

PREFIX = "in_queue|"
DONE = "in_queue_done"
"""The routing's key listing the `after` parts already run (`after|0`, ...), kept with the
conversation so that a restart does not run them again."""


def block_for(graph: FlowGraph, queue: str | None) -> tuple[str, InQueueSpec] | None:
    """The `while queued` block for `queue`: its own, else the one for every queue."""
    for key in (queue, "*"):
        if key is not None and key in graph.in_queue:
            return key, graph.in_queue[key]
    return None


def arm(ctx: EngineContext, conv: ConversationView, now: datetime) -> None:
    """Start the timers of the block for the queue `conv` waits in: the next `every` after
    `now`, and each `after` not run yet (one already due runs at `now`)."""
    entered = (conv.routing or {}).get("entered_at")
    if not entered:
        return
    program = ctx.program_for(conv.resume_point(), conv)
    found = block_for(program.graph, conv.queue)
    if found is None:
        return
    _key, spec = found
    start = datetime.fromisoformat(entered)
    every = spec["every"]
    if every:
        at, name = next_every(entered, every, now)
        ctx.start_timer(at, conv.id, name)
    done = set((conv.routing or {}).get(DONE) or [])
    for index, seconds in enumerate(spec["after"]):
        if f"after|{index}" not in done:
            at = max(start + timedelta(seconds=seconds), now)
            ctx.start_timer(at, conv.id, _name(entered, "after", index))


def is_in_queue_timer(timer: str | None) -> bool:
    return bool(timer) and str(timer).startswith(PREFIX)


def is_current(conv: ConversationView, timer: str) -> bool:
    """The timer's wait goes on: the conversation still waits in the queue it entered then."""
    _prefix, entered, _kind, _number = timer.split("|")
    return conv.status == "queued" and (conv.routing or {}).get("entered_at") == entered


def parts(timer: str) -> tuple[str, str, int]:
    """(entered at, "every" or "after", the repeat or the `after`'s index) of a timer."""
    _prefix, entered, kind, number = timer.split("|")
    return entered, kind, int(number)


def _name(entered: str, kind: str, number: int) -> str:
    return f"{PREFIX}{entered}|{kind}|{number}"


def next_every(entered: str, every: int, now: datetime) -> tuple[datetime, str]:
    """When the first repeat after `now` is due, and its timer's name."""
    start = datetime.fromisoformat(entered)
    number = int((now - start).total_seconds() // every) + 1
    return start + timedelta(seconds=every * number), _name(entered, "every", number)
