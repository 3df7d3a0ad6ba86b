"""Free loopback ports for the servers the tests start, that no one else takes meanwhile.

A port the kernel hands out for `bind(("127.0.0.1", 0))` is closed again before the server binds
it, and in between any outgoing connection of the machine may get it as its local port (they
come from the same ephemeral range), or another xdist worker's server may take it. So the
ports come from below the ephemeral range, each worker from a slice of its own, and are
checked free before they are given out.
"""

from __future__ import annotations

import itertools
import os
import random
import socket

_FIRST, _LAST = 20000, 32000  # below Linux's ephemeral range (32768-60999)
_SLICES = 8


def _slice() -> range:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    index = int(worker) % _SLICES if worker.isdigit() else 0
    size = (_LAST - _FIRST) // _SLICES
    return range(_FIRST + index * size, _FIRST + (index + 1) * size)


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


_PORTS = _slice()
# walked in turn from a random start, so that ports taken one after the other before their
# servers bind them (a cluster's three processes) are never the same
_turn = itertools.count(random.randrange(len(_PORTS)))


def free_port() -> int:
    """A loopback port nothing listens on, from this xdist worker's own slice."""
    for _ in range(len(_PORTS)):
        port = _PORTS[next(_turn) % len(_PORTS)]
        if _bindable(port):
            return port
    raise RuntimeError(f"no free loopback port in {_PORTS[0]}-{_PORTS[-1]}")
