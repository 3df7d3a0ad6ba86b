"""The engine process of `flowlang serve` (`python -m flowlang.service.engine_main CONFIG`,
started by the front process: `engine_process.py`).

It runs the whole app (`create_app`) but its webhook intake: the engine's worker, the outbox's
thread, the API, the pages and the live streams, on the listening socket the front hands it
(file descriptor `listen_fd`; the front passes every request but its webhooks on to it). The
front wakes it by writing to the pipe `wake_fd` after each commit of webhooks; the pipe's end
(the front has gone, even by kill -9) stops it, as SIGTERM does: what it has not processed
stays in the store for the next start. On a SQLite store one engine at a time runs: it holds
`<store>-engine.lock` while it runs, and waits up to `LOCK_WAIT` seconds for a previous one
(still finishing after its front died) to let go. On a PostgreSQL store it bids for the lead
as any process sharing the store does (the lead is its hold: `store/engine_hold.py`), and
tells its front down the pipe `role_fd` each time it takes or loses it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import IO

import uvicorn

from flowlang.service.app import create_app
from flowlang.service.engine_process import LEADS
from flowlang.service.protocol import with_header_timeout
from flowlang.service.settings import ServiceConfigError, Settings
from flowlang.service.worker import Role, Worker
from flowlang.store import is_postgres_url
from flowlang.store.engine_hold import EngineBusy
from flowlang.store.engine_hold import engine_lock as hold_engine_file

log = logging.getLogger("flowlang.service")

LOCK_WAIT = 30.0  # seconds


def engine_lock(store: str | Path, wait: float = LOCK_WAIT) -> IO[bytes]:
    """Hold the store's engine lock (until the file returned is closed or the process ends).
    Raises ServiceConfigError when another engine still holds it after `wait` seconds."""
    try:
        return hold_engine_file(store, wait, lambda: log.warning(_WAITING, store))
    except EngineBusy as exc:
        raise ServiceConfigError(str(exc)) from None


_WAITING = "waiting for the engine that ran on %s before to stop"


def watch_front(wake_fd: int, wake: Callable[[], None]) -> threading.Thread:
    """A thread calling `wake` for each write of the front to `wake_fd`, and stopping this
    process (SIGTERM: a graceful stop) when the pipe ends."""

    def run() -> None:
        while True:
            try:
                data = os.read(wake_fd, 4096)
            except OSError:
                data = b""
            if not data:
                log.warning("the service's front process has ended: the engine stops")
                os.kill(os.getpid(), signal.SIGTERM)
                return
            wake()

    thread = threading.Thread(target=run, name="flowlang-wake", daemon=True)
    thread.start()
    return thread


def tell_role(role_fd: int, worker: Worker) -> None:
    """Write to `role_fd` each time `worker` takes the lead (`LEADS`) or loses it."""

    def told(role: Role) -> None:
        with contextlib.suppress(OSError):  # the front has gone: this process stops anyway
            os.write(role_fd, LEADS if role == "leader" else b"F")

    worker.on_role = told


class _Server(uvicorn.Server):
    """uvicorn, deaf to Ctrl-C: a terminal's SIGINT reaches the front too, which answers the
    requests in hand and then stops this process (SIGTERM), rather than finding it gone and
    starting another."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig != signal.SIGINT:
            super().handle_exit(sig, frame)


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the front stops it (see _Server)
    config = json.loads(argv[1])
    settings = Settings.from_json(config["settings"])
    log_level: str = config["log_level"]
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    lock: IO[bytes] | None = None
    try:
        if not is_postgres_url(settings.store):
            lock = engine_lock(settings.store)
        app = create_app(settings, own_intake=False)
    except ServiceConfigError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    for line in app.state.service.started:
        print(line, file=sys.stderr, flush=True)
    worker = app.state.service.worker
    tell_role(int(config["role_fd"]), worker)
    watch_front(int(config["wake_fd"]), worker.wake)
    listening = socket.socket(fileno=int(config["listen_fd"]))
    server = _Server(
        uvicorn.Config(
            app,
            http=with_header_timeout(settings.header_timeout),
            loop="uvloop",
            timeout_keep_alive=int(max(1, settings.keep_alive_timeout)),
            limit_concurrency=settings.limit_concurrency,
            log_level=log_level,
            access_log=log_level == "debug",
            server_header=False,
        )
    )
    try:
        server.run(sockets=[listening])
    finally:
        if lock is not None:
            lock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
