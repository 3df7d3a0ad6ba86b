"""Logging a failure that repeats while something is down (the store, the leader), without
writing the same traceback for every request: the first failure with its traceback, then a
one-line summary at most every `every` seconds saying how many more there were, and one INFO
line when it works again (docs/service.md, "Logs during an outage")."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

SUMMARY_SECONDS = 30.0


class OutageLog:
    """The log of one thing that can fail again and again (`what`: what could not be done,
    said at the start of each line); thread-safe."""

    def __init__(
        self,
        logger: logging.Logger,
        what: str,
        *,
        every: float = SUMMARY_SECONDS,
        level: int = logging.ERROR,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.what = what
        self.every = every
        self.level = level
        self._clock = clock
        self._lock = threading.Lock()
        self._down_since: float | None = None  # (clock) the first failure of this outage
        self._summed_at = 0.0  # (clock) the last line logged about this outage
        self._unsaid = 0  # failures since that line
        self._failures = 0  # failures in this outage

    @property
    def down(self) -> bool:
        """Whether the last attempt failed."""
        return self._down_since is not None

    def failed(self, error: BaseException) -> None:
        """An attempt failed with `error` (logged with its traceback if it is the first)."""
        with self._lock:
            now = self._clock()
            self._failures += 1
            if self._down_since is None:
                self._down_since = self._summed_at = now
                self.logger.log(self.level, "%s: %s", self.what, error, exc_info=error)
                return
            self._unsaid += 1
            if now - self._summed_at < self.every:
                return
            self.logger.log(
                self.level,
                "%s: still failing (%s); %d more in the last %.0f s",
                self.what,
                error,
                self._unsaid,
                now - self._summed_at,
            )
            self._summed_at, self._unsaid = now, 0

    def recovered(self) -> None:
        """An attempt succeeded: one INFO line if it had been failing."""
        with self._lock:
            if self._down_since is None:
                return
            self.logger.info(
                "%s: works again after %.0f s and %d failure(s)",
                self.what,
                self._clock() - self._down_since,
                self._failures,
            )
            self._down_since = None
            self._unsaid = self._failures = 0
