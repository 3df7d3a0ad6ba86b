"""Counting a psycopg connection's round trips: the times it waited for the server to answer
(a statement only queued in pipeline mode is none). For the PostgreSQL store's tests and
`benchmarks/round_trips.py`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.waiting import Wait


def watched(gen: Any, read: list[bool]) -> Any:
    """`gen`, a psycopg generator, noting in `read` whether it waited for the server's answer."""
    try:
        wanted = next(gen)
        while True:
            if wanted == Wait.R and not read:
                read.append(True)
            ready = yield wanted
            wanted = gen.send(ready)
    except StopIteration as stop:
        return stop.value


@contextmanager
def counting(db: psycopg.Connection[Any]) -> Iterator[list[str]]:
    """The round trips `db` makes inside the block, each named by what waited (psycopg's
    generator)."""
    waits: list[str] = []
    original = db.wait

    def wait(gen: Any, *args: Any, **kwargs: Any) -> Any:
        read: list[bool] = []
        try:
            return original(watched(gen, read), *args, **kwargs)
        finally:
            if read:
                waits.append(getattr(gen, "__qualname__", type(gen).__name__))

    db.wait = wait  # type: ignore[method-assign]
    try:
        yield waits
    finally:
        del db.wait
