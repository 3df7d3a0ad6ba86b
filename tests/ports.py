"""Loopback ports for the servers the tests start.

A server in the test's own process listens on a socket bound before it starts
(`listening_socket`: the kernel picks the port, and nobody can take it in between).

A server in another process (`flowlang serve`, PostgreSQL) binds a port it is told
(`free_port`). A port found free is closed again before the server binds it, and in between any
outgoing connection of the machine may get it as its local port (they come from the same
ephemeral range), or another test run's server may take it. So those ports come from below the
ephemeral range, each xdist worker from a slice of its own; they are checked free and claimed
for the whole machine (`_claim`: several test runs on one machine share the slices) before
they are given out. Anything else may still take one first: the server that could not bind it
(`address_in_use` in what it printed) is started again on another.
"""

from __future__ import annotations

import fcntl
import itertools
import os
import random
import socket
import tempfile
import time
from pathlib import Path

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

CLAIMS = Path(tempfile.gettempdir()) / "flowlang-test-ports"
"""Where each port given out is claimed, for every test run on the machine to see."""
CLAIM_SECONDS = 600.0
"""A port another process gave out is not given out again for this long (its server has
bound it by then, or will never): two runs on one machine, whose xdist workers share slices,
never hand out the same port at once."""


def _claim(port: int) -> bool:
    """Claim `port` for this process, unless another process claimed it within
    `CLAIM_SECONDS` (a claim is the port's file in `CLAIMS`, holding the claimer's pid)."""
    CLAIMS.mkdir(exist_ok=True)
    fd = os.open(CLAIMS / str(port), os.O_CREAT | os.O_RDWR, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # held only while the claim is read and written
        claimer = os.read(fd, 32).decode("ascii", "replace").strip()
        recent = time.time() - os.fstat(fd).st_mtime < CLAIM_SECONDS
        if claimer and claimer != str(os.getpid()) and recent:
            return False
        os.lseek(fd, 0, os.SEEK_SET)
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode("ascii"))
        return True
    finally:
        os.close(fd)  # the lock goes with it


def listening_socket() -> socket.socket:
    """A socket bound to a loopback port the kernel picks, for a server of this process to
    listen on (uvicorn's `sockets`): its port is known before the server starts
    (`getsockname()[1]`) and is the server's from then on."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


def address_in_use(printed: str) -> bool:
    """Whether a server's output says it could not bind its port because it was taken."""
    text = printed.lower()
    return "address already in use" in text or "errno 98" in text


def free_port() -> int:
    """A loopback port nothing listens on, from this xdist worker's own slice, that no other
    test run on the machine has been given lately (`_claim`)."""
    for _ in range(len(_PORTS)):
        port = _PORTS[next(_turn) % len(_PORTS)]
        if _bindable(port) and _claim(port):
            return port
    raise RuntimeError(f"no free loopback port in {_PORTS[0]}-{_PORTS[-1]}")
