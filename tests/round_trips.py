"""Counting a psycopg connection's round trips: the times it asked the server for an answer and
waited for it (a statement only queued in pipeline mode is none). For the PostgreSQL store's
tests and `benchmarks/round_trips.py`.

What counts is what the driver asks for, not what the socket shows (an answer that had come
already when asked for is a round trip all the same): outside a pipeline every wait; inside
one, each sync, fetch or end, but not a statement sent, nor entering the outermost pipeline.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

_SENDING = ("_execute_gen", "_communicate_gen")


def is_round_trip(db: psycopg.Connection[Any], gen: Any) -> bool:
    """Whether `db.wait(gen)` asks the server for an answer."""
    kind = getattr(gen, "__qualname__", "")
    pipeline = db._pipeline
    if pipeline is None:
        return True
    if kind.endswith(_SENDING):
        return False
    return not (kind.endswith("_enter_gen") and pipeline.level == 0)


@contextmanager
def counting(db: psycopg.Connection[Any]) -> Iterator[list[str]]:
    """The round trips `db` makes inside the block, each named by what asked (psycopg's
    generator)."""
    waits: list[str] = []
    original = db.wait

    def wait(gen: Any, *args: Any, **kwargs: Any) -> Any:
        if is_round_trip(db, gen):
            waits.append(getattr(gen, "__qualname__", type(gen).__name__))
        return original(gen, *args, **kwargs)

    db.wait = wait  # type: ignore[method-assign]
    try:
        yield waits
    finally:
        del db.wait
