"""Feeds numbered messages to an Engine over a store (a SQLite file or a postgresql:// URL)
until it is killed (crash test)."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.store.helpers import engine_on, inbound


def main(path: str, count: int) -> None:
    engine, _store = engine_on(path if path.startswith("postgres") else Path(path))
    engine.recover()
    for n in range(count):
        engine.handle(inbound(f"message {n}", n, sender=f"web-{n % 7}", event_id=f"evt-{n}"))
        print(n, flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
