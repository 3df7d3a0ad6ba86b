"""The test support that starts `flowlang serve` processes: a start that fails part way leaves
nothing running, and the wait for a process to be ready grows with the machine's load."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests import patience
from tests.service.cluster import Cluster
from tests.service.process import ServiceProcess


def _standing_in(process: ServiceProcess, folder: Path, ready: bool) -> None:
    """`process` runs a plain HTTP server on its port whose /ready answers 200 (`ready`), or a
    program that exits at once."""
    if ready:
        (folder / "ready").write_text("ok", "utf-8")
        process.args = [sys.executable, "-m", "http.server", str(process.port)]
        process.args += ["--bind", "127.0.0.1", "--directory", str(folder)]
    else:
        process.args = [sys.executable, "-c", "raise SystemExit(3)"]


def test_a_cluster_whose_second_process_cannot_start_stops_the_first(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path, tmp_path / "cluster.db", 3)
    first, second, third = cluster.processes
    _standing_in(first, tmp_path, ready=True)
    _standing_in(second, tmp_path, ready=False)
    _standing_in(third, tmp_path, ready=True)
    try:
        with pytest.raises(RuntimeError, match="flowlang serve exited"):
            cluster.start()
        assert first.process is not None and first.process.poll() is not None  # stopped again
        assert third.process is None  # never started
        assert cluster.alive() == []
    finally:
        cluster.stop()


def test_the_wait_for_ready_grows_with_the_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(patience, "load_factor", lambda: 3.0)
    process = ServiceProcess(tmp_path, tmp_path, tmp_path / "s.db", {}, tmp_path / "serve.log")
    process.args = [sys.executable, "-c", "import time; time.sleep(60)"]  # never ready
    try:
        with pytest.raises(RuntimeError, match=r"not ready in 0\.3 s"):
            process.start(timeout=0.1)
        assert process.process is not None and process.process.poll() is not None
    finally:
        process.stop()
