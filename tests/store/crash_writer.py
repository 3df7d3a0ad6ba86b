"""Feeds numbered messages to an Engine over a store (a SQLite file or a postgresql:// URL)
until it is killed (crash test).

`crash_writer PATH COUNT` handles one message at a time and prints each number once `handle`
has returned (the host's acknowledgement). `crash_writer PATH COUNT GROUP STALL SENT` handles
GROUP messages a commit (`engine.group`), prints the group's numbers once it has committed,
appends the id of every message delivered to the file SENT, and in the group holding message
STALL stops after processing it, before the commit, printing `processed, not committed`, and
waits there to be killed."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from flowlang.events import InboundEvent
from flowlang.runtime.ports import OutboundMessage
from tests.store.helpers import engine_on, inbound


class SentIds:
    """An outbound adapter that appends each delivered message's id to a file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = "sent-ids"

    def send(self, message: OutboundMessage) -> None:
        with self.path.open("a", encoding="utf-8") as out:
            out.write(message.message_id + "\n")


def main(path: str, count: int) -> None:
    engine, _store = engine_on(path if path.startswith("postgres") else Path(path))
    engine.recover()
    for n in range(count):
        engine.handle(_message(n))
        print(n, flush=True)


def grouped(path: str, count: int, group: int, stall: int, sent: Path) -> None:
    engine, _store = engine_on(path if path.startswith("postgres") else Path(path))
    engine.adapters = [SentIds(sent)]
    engine.recover()
    for first in range(0, count, group):
        numbers = range(first, min(first + group, count))
        with engine.group():
            for n in numbers:
                engine.handle(_message(n))
            if stall in numbers:
                print("processed, not committed", flush=True)
                time.sleep(600)
        for n in numbers:
            print(n, flush=True)


def _message(n: int) -> InboundEvent:
    return inbound(f"message {n}", n, sender=f"web-{n % 7}", event_id=f"evt-{n}")


if __name__ == "__main__":
    if len(sys.argv) > 3:
        path, count, group, stall, sent = sys.argv[1:6]
        grouped(path, int(count), int(group), int(stall), Path(sent))
    else:
        main(sys.argv[1], int(sys.argv[2]))
