"""The cluster benchmark's CPU per message is read from /proc: a process's own CPU time (its
threads included), and the processes a parent started (the SQLite service's engine process,
PostgreSQL's backends). `make bench` is not run in CI, so these must fail here."""

from __future__ import annotations

import os
import subprocess
import sys

from benchmarks.bench_cluster import _cpu, _parts, children

BURN = """
import sys, threading, time
def burn():
    while time.thread_time() < 0.3:
        pass
worker = threading.Thread(target=burn)
worker.start()
worker.join()
print("burnt", flush=True)
sys.stdin.readline()
"""


def test_a_childs_cpu_time_is_found_under_its_parent_threads_included() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", BURN],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "burnt"
        assert child.pid in children(os.getpid())
        # a `flowlang serve`'s parts: its front (the parent) and its engine process (the child)
        assert _parts(os.getpid()) == ({os.getpid()}, children(os.getpid()))
        assert _parts(child.pid) == (set(), {child.pid})  # one process: its engine
        assert _cpu(child.pid) >= 0.3  # the burning thread's time counts for its process
    finally:
        child.communicate("\n", timeout=30)
    assert _cpu(child.pid) == 0.0  # gone: nothing more to count
