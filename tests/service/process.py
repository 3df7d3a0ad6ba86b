"""`flowlang serve` as a real process on a free loopback port, for the tests and the benchmark."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

from tests.patience import scaled
from tests.ports import free_port


class ServiceProcess:
    """Starts `flowlang serve` (`start`), waits for /ready, and ends it (`kill`, `stop`)."""

    def __init__(
        self,
        flow: Path,
        deployment: Path,
        store: Path | str,
        env: dict[str, str],
        log: Path,
        extra: Sequence[str] = (),
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = [
            sys.executable,
            "-m",
            "flowlang",
            "serve",
            str(flow),
            "-d",
            str(deployment),
            "--store",
            str(store),
            "--port",
            str(self.port),
            "--log-level",
            "warning",
            *extra,
        ]
        self.env = {**os.environ, **env}
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> ServiceProcess:
        """Start it and wait until /ready answers: `timeout` seconds on a quiet machine, longer
        under load (`tests.patience.scaled`); a process that exits, or is not ready by then,
        is a RuntimeError saying so."""
        timeout = scaled(timeout)
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                self.args,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its engine process in its group: `kill` ends both
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"flowlang serve exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + "/ready", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"flowlang serve not ready in {timeout:g} s: {self.log.read_text()}")

    def kill(self) -> None:
        """kill -9 of the whole service (on a SQLite store its front and engine processes at
        once): no shutdown of any kind."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def kill_front(self) -> None:
        """kill -9 of the process `flowlang serve` is (on a SQLite store, the front taking the
        webhooks) alone."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def engine_pid(self) -> int:
        """(SQLite store) The engine process the front started (Linux: /proc)."""
        assert self.process is not None
        tasks = Path(f"/proc/{self.process.pid}/task").glob("*/children")  # each thread's
        children = [pid for task in tasks for pid in task.read_text("ascii").split()]
        assert len(children) == 1, f"the front has {len(children)} child processes"
        return int(children[0])

    def kill_engine(self) -> int:
        """kill -9 of the engine process alone; its pid."""
        pid = self.engine_pid()
        os.kill(pid, signal.SIGKILL)
        return pid

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def unprocessed(self) -> int:
        return int(httpx.get(self.url + "/ready", timeout=5.0).json()["unprocessed"])

    def settle(self, timeout: float = 60.0) -> None:
        """Wait until every event made durable is processed (`timeout` scaled as `start`'s)."""
        deadline = time.monotonic() + scaled(timeout)
        while self.unprocessed() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert self.unprocessed() == 0, "events still unprocessed"
