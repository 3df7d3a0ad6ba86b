"""The engine's process, started and supervised by the front process of `flowlang serve`.

`flowlang serve` runs as two processes, so that the engine's work and the webhooks'
acknowledgements do not share one interpreter lock (docs/service.md, "Two processes"). The
front (the process `flowlang serve` is) takes the webhooks into the store's inbox (on
PostgreSQL the shared inbound log) and answers them (`front.py`); the engine process
(`engine_main.py`) runs everything else. `EngineProcess` starts it on a loopback socket the
front holds for its whole life (so the engine's address never changes), waits until it
answers, wakes it after each commit of webhooks (`wake`: a byte down a pipe, which a full pipe
or a dead engine does not block), and starts it again when it dies, while the front keeps
acknowledging webhooks. On PostgreSQL the engine says down a second pipe whether it leads
(`leads`): the front's intake then wakes it through the pipe alone, and tells the other
processes' engines nothing (no NOTIFY) while its own leads.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time

import httpx

from flowlang.errors import FlowError
from flowlang.service.settings import Settings

log = logging.getLogger("flowlang.service")

RESTART_DELAY = 0.2  # seconds before the engine is started again after it died (doubled up to 5)
LEADS = b"L"  # the engine's byte down the role pipe when it takes the lead (any other: it does not)


class EngineExited(FlowError, RuntimeError):
    """The engine process exited before it answered (its error is on the service's stderr)."""

    def __init__(self, code: int) -> None:
        super().__init__(f"the engine process exited with status {code} before it answered")
        self.code = code


class EngineProcess:
    """The engine process (see the module doc): `start`, `wake`, `url` while it answers,
    `stop`."""

    def __init__(self, settings: Settings, log_level: str) -> None:
        self.settings = settings
        self.log_level = log_level
        self._listening = socket.socket()
        self._listening.bind(("127.0.0.1", 0))
        self._listening.listen(settings.backlog)
        self.address = f"http://127.0.0.1:{self._listening.getsockname()[1]}"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0  # how many times it was started
        self._wake_fd: int | None = None
        self.leads = False  # (PostgreSQL) the engine process leads the engine's work
        self._wake_lock = threading.Lock()
        self._up = False
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None

    def url(self) -> str | None:
        """Where the engine answers, None while it is (re)starting."""
        return self.address if self._up else None

    @property
    def alive(self) -> bool:
        return self._up and self.process is not None and self.process.poll() is None

    def start(self) -> None:
        """Start the engine and wait until it answers; then watch it (started again when it
        dies). Raises EngineExited when it exits first (a configuration error: it said which)."""
        self._spawn()
        self._wait_ready()
        self._watcher = threading.Thread(target=self._watch, name="flowlang-engine-watch")
        self._watcher.daemon = True
        self._watcher.start()

    def wake(self) -> None:
        """(Any thread) Webhooks were committed to the inbox: the engine takes them now."""
        with self._wake_lock:
            if self._wake_fd is None:
                return
            # A full pipe (it is woken already) or a dead engine (started again): no matter.
            with contextlib.suppress(OSError):
                os.write(self._wake_fd, b"\0")

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the engine (SIGTERM: it finishes the work in hand) and stop watching it."""
        self._stopping.set()
        self._up = False
        process = self.process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                log.error("the engine process did not stop in %.0f s: killed", timeout)
                process.kill()
                process.wait()
        self._close_pipe()
        self._listening.close()

    def _spawn(self) -> None:
        read_end, write_end = os.pipe()
        os.set_blocking(write_end, False)
        role_read, role_write = os.pipe()
        config = {
            "settings": self.settings.to_json(),
            "log_level": self.log_level,
            "listen_fd": self._listening.fileno(),
            "wake_fd": read_end,
            "role_fd": role_write,
        }
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "flowlang.service.engine_main", json.dumps(config)],
                pass_fds=(self._listening.fileno(), read_end, role_write),
            )
        except BaseException:
            os.close(role_read)
            raise
        finally:
            os.close(read_end)
            os.close(role_write)
        self.starts += 1
        hearing = threading.Thread(
            target=self._hear_role, args=(role_read, self.starts), name="flowlang-engine-role"
        )
        hearing.daemon = True
        hearing.start()
        self._close_pipe()
        with self._wake_lock:
            self._wake_fd = write_end

    def _hear_role(self, role_fd: int, start: int) -> None:
        """The engine's changes of role until it ends (then it leads no more)."""
        try:
            while data := os.read(role_fd, 64):
                if start == self.starts:
                    self.leads = data[-1:] == LEADS
        except OSError:
            pass
        finally:
            os.close(role_fd)
            if start == self.starts:
                self.leads = False

    def _close_pipe(self) -> None:
        with self._wake_lock:
            if self._wake_fd is not None:
                os.close(self._wake_fd)
                self._wake_fd = None

    def _wait_ready(self) -> None:
        assert self.process is not None
        while not self._stopping.is_set():
            code = self.process.poll()
            if code is not None:
                raise EngineExited(code)
            try:
                if httpx.get(self.address + "/health", timeout=1.0).status_code == 200:
                    self._up = True
                    self.wake()  # what was acknowledged while it started
                    return
            except httpx.HTTPError:
                time.sleep(0.05)

    def _watch(self) -> None:
        delay = RESTART_DELAY
        while not self._stopping.is_set():
            assert self.process is not None
            code = self.process.wait()
            self._up = self.leads = False
            if self._stopping.is_set():
                return
            log.error("the engine process exited (status %s): starting it again", code)
            started = time.monotonic()
            self._stopping.wait(delay)
            if self._stopping.is_set():
                return
            try:
                self._spawn()
                self._wait_ready()
            except (EngineExited, OSError):
                log.exception("the engine process did not start")
            # An engine that dies at once is not started again at once: the delay grows.
            delay = RESTART_DELAY if time.monotonic() - started > 10 else min(delay * 2, 5.0)
