"""One engine at a time on a store: a `flowlang serve` process, or a CLI command that runs the
engine on it (`flowlang send`, `flowlang replay`), never two at once (docs/store.md).

Two engines on one store would each hold their own ACD and timers: an agent offered twice their
capacity, an event a crash left unprocessed processed by both. On a SQLite file the engine holds
`<store>-engine.lock` (an `flock`, released when its process ends, `kill -9` included). On
PostgreSQL it holds the lead (`store/leadership.py`), whose epoch fences every transaction of its
store.
"""

from __future__ import annotations

import fcntl
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING

from flowlang.private_files import create_private
from flowlang.store.migrations import StoreError

if TYPE_CHECKING:
    from flowlang.store import Store
    from flowlang.store.postgres import PostgresStore

LOCK_SUFFIX = "-engine.lock"


class EngineBusy(StoreError):
    """Another process runs the store's engine."""


def engine_lock(
    store: str | Path, wait: float, waiting: Callable[[], None] = lambda: None
) -> IO[bytes]:
    """Hold the SQLite store's engine lock (until the file returned is closed or the process
    ends). Raises EngineBusy when another engine still holds it after `wait` seconds;
    `waiting()` is called once when it has to wait."""
    path = Path(f"{store}{LOCK_SUFFIX}")
    create_private(path)
    held = path.open("rb")
    deadline = time.monotonic() + wait
    told = False
    while True:
        try:
            fcntl.flock(held.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return held
        except BlockingIOError:
            if time.monotonic() >= deadline:
                held.close()
                raise EngineBusy(
                    f"{store}: another flowlang serve runs this store's engine ({path} is "
                    f"held); one service per SQLite file"
                ) from None
            if not told:
                waiting()
                told = True
            time.sleep(0.05)


@contextmanager
def holding_engine(db: Store, holder: str) -> Iterator[None]:
    """Run the engine on `db` only while no other process does (`holder`: who asks, e.g.
    "flowlang replay"). Raises EngineBusy, saying who holds it, when a service runs it."""
    from flowlang.store.postgres import PostgresStore  # psycopg only when it is used

    if isinstance(db, PostgresStore):
        with _leading(db, holder):
            yield
        return
    if db.path in ("", ":memory:"):
        yield
        return
    try:
        held = engine_lock(db.path, wait=0)
    except EngineBusy:
        raise EngineBusy(
            f"{db.path}: a flowlang serve process runs this store's engine; {holder} would "
            "run a second one beside it (stop the service first)"
        ) from None
    with held:
        yield


@contextmanager
def _leading(db: PostgresStore, holder: str) -> Iterator[None]:
    from flowlang.store.leadership import Leadership

    leadership = Leadership(db.path, f"cli:{holder}")
    try:
        epoch = leadership.try_lead()
        if epoch is None:
            url = leadership.leader_url()
            where = f" (at {url})" if url else ""
            raise EngineBusy(
                f"{db.shown}: a flowlang serve process leads this store{where}; {holder} would "
                "run a second engine beside it (stop the services first)"
            )
        db.fence = epoch  # a service taking the lead meanwhile fails our next commit
        try:
            yield
        finally:
            db.fence = None
            leadership.resign()
    finally:
        leadership.close()
