"""When a lost PostgreSQL connection of the service is opened again (docs/scaling.md, "When a
connection is lost").

Every connection a `flowlang serve` process holds on a PostgreSQL store is its own, with one job
(the intake's, the outbox's, the token reader's, the leader's lock, the listener, the engine's),
and each is opened again after the server dropped it: a restart or failover of the server,
`pg_terminate_backend`, an idle timeout, a network fault. `Reconnect` says when: at once after
the loss, then, while the server cannot be reached, after delays doubling from `first` up to
`cap` seconds, each drawn at random between half and all of it (jitter: the processes that lost
the server together do not all come back in the same instant). What a connection's user does
in between is its own: a request fails at once (503) rather than wait for a connect, a thread
sleeps until the next attempt. Each loss, each failed attempt and each recovery is logged once
(`flowlang.store` logger), not every request in between.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable

from flowlang.errors import FlowError

log = logging.getLogger("flowlang.store")

FIRST_DELAY = 0.1  # seconds before the second attempt
MAX_DELAY = 5.0  # seconds between attempts at most


class StoreUnreachable(FlowError, ConnectionError):
    """A connection of the store is lost and not open again yet: nothing was read or written."""


class Reconnect:
    """The attempts to open one connection again (see the module doc); thread-safe."""

    def __init__(
        self,
        name: str,
        *,
        first: float = FIRST_DELAY,
        cap: float = MAX_DELAY,
        clock: Callable[[], float] = time.monotonic,
        draw: Callable[[float, float], float] = random.uniform,
    ) -> None:
        """`name`: the connection's application name, which the log lines say."""
        self.name = name
        self.first = first
        self.cap = cap
        self._clock = clock
        self._draw = draw
        self._failures = 0  # attempts failed since the connection was lost
        self._down = False  # lost and not open again
        self._next = 0.0  # (clock) no attempt before this
        self._lock = threading.Lock()

    @property
    def down(self) -> bool:
        """Whether the connection is lost and not open again."""
        return self._down

    def lost(self, reason: BaseException | str) -> None:
        """The connection was found lost: the next attempt may be made at once."""
        with self._lock:
            if not self._down:
                log.warning("%s: connection to the store lost (%s)", self.name, _said(reason))
            self._down = True

    def wait(self) -> float:
        """Seconds until the next attempt may be made (0: now)."""
        with self._lock:
            return max(0.0, self._next - self._clock())

    def due(self) -> bool:
        return self.wait() == 0.0

    def failed(self, reason: BaseException | str) -> float:
        """An attempt failed: the delay before the next (doubling, capped, jittered)."""
        with self._lock:
            ceiling = min(self.cap, self.first * 2**self._failures)
            delay = self._draw(ceiling / 2, ceiling)
            self._failures += 1
            self._next = self._clock() + delay
            self._down = True
            log.warning(
                "%s: cannot reach the store (%s); attempt %d failed, next in %.1f s",
                self.name,
                _said(reason),
                self._failures,
                delay,
            )
            return delay

    def opened(self) -> None:
        """The connection is open (again): the next loss starts the delays over."""
        with self._lock:
            if self._down:
                log.warning(
                    "%s: connection to the store open again%s",
                    self.name,
                    f" (after {self._failures} failed attempts)" if self._failures else "",
                )
            self._down = False
            self._failures = 0
            self._next = 0.0


def _said(reason: BaseException | str) -> str:
    """The first line of an error (a driver's message has context lines after it)."""
    text = str(reason).strip()
    return text.splitlines()[0] if text else type(reason).__name__
