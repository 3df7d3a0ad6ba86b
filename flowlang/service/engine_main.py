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
import select
import signal
import socket
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import IO

import uvicorn

from flowlang.service import collector
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


def _stop_this_process() -> None:
    log.warning("the service's front process has ended: the engine stops")
    os.kill(os.getpid(), signal.SIGTERM)  # a graceful stop


class FrontPipe:
    """The front's wake pipe `wake_fd`: a thread calls `wake` for each write of the front, and
    `ended` (by default: stop this process) when the pipe ends. `woken()` (the worker, before
    a call) takes a write the thread has not taken yet: the front writes before it answers a
    webhook, so a call made after the answer finds the write here or its wake-up queued."""

    def __init__(
        self,
        wake_fd: int,
        wake: Callable[[], None],
        ended: Callable[[], None] = _stop_this_process,
    ) -> None:
        self.fd = wake_fd
        self.wake = wake
        self.ended = ended
        self._taking = threading.Lock()  # a write is taken and its wake-up queued at once
        os.set_blocking(wake_fd, False)
        self.thread = threading.Thread(target=self._run, name="flowlang-wake", daemon=True)
        self.thread.start()

    def woken(self) -> bool:
        with self._taking:
            try:
                return bool(os.read(self.fd, 4096))  # (b"": the pipe ended, the thread stops)
            except OSError:
                return False

    def _run(self) -> None:
        readable = select.poll()  # (not select.select: the descriptor may be above 1023)
        readable.register(self.fd, select.POLLIN)
        while True:
            readable.poll()
            with self._taking:
                try:
                    data = os.read(self.fd, 4096)
                except BlockingIOError:
                    continue  # taken by `woken`
                except OSError:
                    data = b""
                if data:
                    self.wake()
                    continue
            self.ended()
            return


def tell_role(role_fd: int, worker: Worker) -> None:
    """Write to `role_fd` each time `worker` takes the lead (`LEADS`) or loses it."""

    def told(role: Role) -> None:
        with contextlib.suppress(OSError):  # the front has gone: this process stops anyway
            os.write(role_fd, LEADS if role == "leader" else b"F")

    worker.on_role = told


def tune_collector(worker: Worker) -> None:
    """The engine process's garbage collector: collections less often, and what is loaded and
    recovered set aside after each recovery (`collector.py`)."""
    collector.tune()
    worker.on_recovered = collector.freeze_loaded


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
    tune_collector(worker)
    tell_role(int(config["role_fd"]), worker)
    worker.wake_pending = FrontPipe(int(config["wake_fd"]), worker.wake).woken
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
