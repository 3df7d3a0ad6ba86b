"""How long a test waits on a shared machine: a timeout that is generous on a quiet machine grows
with the load (other test suites, builds), so that a slow moment is not a failure. Waits check
their condition (and whether the process they wait for is still alive) as they go, so a longer
limit costs nothing when things go right and a dead process still fails at once."""

from __future__ import annotations

import os

MOST = 10.0
"""A timeout grows to at most this many times its quiet value."""


def load_factor() -> float:
    """How many runnable tasks share each core (the 1-minute load average over the cores; 1
    when the machine is not overloaded), at most `MOST`."""
    try:
        load = os.getloadavg()[0]
    except OSError:  # not known on this system
        return 1.0
    return min(MOST, max(1.0, load / (os.cpu_count() or 1)))


def scaled(seconds: float) -> float:
    """`seconds` on a quiet machine, longer on a loaded one (`load_factor`)."""
    return seconds * load_factor()
