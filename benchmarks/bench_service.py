"""The service: webhook requests per second and acknowledgement latency, beside the engine.

A real `flowlang serve` process (uvicorn, SQLite store, the real flows/messaging.flow) takes
signed web-widget webhooks from 1 and from 8 concurrent clients (keep-alive connections, each
request sent when the previous one is answered). Reported per run: requests/s acknowledged,
p50 and p99 of the time from sending a request to its 200, and the rate at which the events
were processed (from the first request until the backlog is empty). In the same run, the
in-process durable `engine.handle` rate on a SQLite file is measured with the same messages.
Two yardsticks of this machine are measured in the same run, interleaved with the rest: a
trivial ASGI endpoint under the same uvicorn settings (`asgi_floor.py`: what HTTP alone allows
with 8 clients), and the latency of one durable SQLite commit on this disk (WAL,
synchronous=FULL), which bounds 8 clients that each wait for their durable answer to
8 / commit latency requests/s before any other work. The service's CPU per request (both its
processes, all their threads, from the first request until every event is processed), and the
front process's share of it, say how many requests each interpreter lock takes. Min and median
are shown. Goals: with 8 clients at least 1,800 requests/s and 50 % of the in-process durable
rate, p99 <= 20 ms.
"""

from __future__ import annotations

import json
import os
import re
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from flowlang.channels.inbound import normalise
from flowlang.channels.signatures import expected_signature
from flowlang.project import load_project
from flowlang.runtime.memory import ScriptedDataActions
from flowlang.runtime.ports import DataResult
from flowlang.store import SqliteStore
from tests.ports import free_port
from tests.service.helpers import FLOW, environment, secret_of, write_deployment
from tests.service.process import ServiceProcess

REQUESTS = 2000
REPEATS = 3
TEXTS = ["Hi, I have a question about my loan", "12345678", "thanks", "any news?"]
LENGTH = re.compile(rb"content-length:\s*(\d+)", re.IGNORECASE)


def _bodies(start: int, count: int) -> list[bytes]:
    now = datetime.now(UTC).isoformat()
    return [
        json.dumps(
            {
                "type": "message",
                "id": f"bench-{i}",
                "widget": "gbank-web",
                "visitor": {"id": f"visitor-{i % 1000}"},
                "text": TEXTS[i % len(TEXTS)],
                "timestamp": now,
            }
        ).encode()
        for i in range(start, start + count)
    ]


def _request(body: bytes) -> bytes:
    signature = expected_signature("web", body, secret_of("web"))
    head = (
        "POST /webhooks/web HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"X-Flowlang-Signature: {signature}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("ascii") + body


class _Connection:
    """A keep-alive HTTP/1.1 connection with as little client work as possible."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def exchange(self, request: bytes) -> int:
        self.sock.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            data += self.sock.recv(65536)
        head, _, rest = data.partition(b"\r\n\r\n")
        match = LENGTH.search(head)
        length = int(match.group(1)) if match else 0
        while len(rest) < length:
            rest += self.sock.recv(65536)
        return int(head[9:12])

    def close(self) -> None:
        self.sock.close()


@dataclass
class ServiceRun:
    rate: float  # requests acknowledged per second
    p50_ms: float
    p99_ms: float
    processed_rate: float  # events processed per second, until the backlog was empty
    cpu_us: float  # the service's CPU (all its processes and threads) per request, until processed
    front_cpu_us: float  # of which the front process's (the webhooks' path)


def _service_run(
    server: ServiceProcess | _Floor, requests: list[bytes], clients: int
) -> ServiceRun:
    latencies: list[float] = []
    lock = threading.Lock()
    failures: list[int] = []

    def client(share: list[bytes]) -> None:
        connection = _Connection(server.port)
        mine: list[float] = []
        for request in share:
            sent = time.perf_counter()
            status = connection.exchange(request)
            mine.append(time.perf_counter() - sent)
            if status != 200:
                failures.append(status)
        connection.close()
        with lock:
            latencies.extend(mine)

    threads = [
        threading.Thread(target=client, args=(requests[k::clients],)) for k in range(clients)
    ]
    pids = _pids(server)
    cpu_before = [_cpu_seconds(pid) for pid in pids]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    acked = time.perf_counter() - started
    while server.unprocessed():
        time.sleep(0.01)
    processed = time.perf_counter() - started
    cpu = [_cpu_seconds(pid) - before for pid, before in zip(pids, cpu_before, strict=True)]
    assert not failures, f"answers other than 200: {failures[:5]}"
    latencies.sort()
    return ServiceRun(
        rate=len(requests) / acked,
        p50_ms=latencies[len(latencies) // 2] * 1000,
        p99_ms=latencies[int(len(latencies) * 0.99)] * 1000,
        processed_rate=len(requests) / processed,
        cpu_us=sum(cpu) / len(requests) * 1e6,
        front_cpu_us=cpu[0] / len(requests) * 1e6 if cpu else 0.0,
    )


def _pids(server: ServiceProcess | _Floor) -> list[int]:
    """The server's processes: the one started first (on a SQLite store the service's front),
    then the engine process it started, if any."""
    if server.process is None:
        return []
    if isinstance(server, ServiceProcess):
        return [server.process.pid, server.engine_pid()]
    return [server.process.pid]


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process `pid`, all its threads (Linux /proc; else 0)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class _Floor:
    """The trivial ASGI endpoint (asgi_floor.py) in a process of its own."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.asgi_floor", str(self.port)],
            cwd=Path(__file__).resolve().parents[1],
        )
        for _ in range(600):
            try:
                socket.create_connection(("127.0.0.1", self.port)).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("the trivial ASGI endpoint did not start")

    def unprocessed(self) -> int:
        return 0

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def _commit_ms(folder: Path) -> float:
    """The median latency of one durable commit (one row) on this disk, WAL, synchronous=FULL."""
    db = sqlite3.connect(folder / "commit.sqlite", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE IF NOT EXISTS t (x INTEGER)")
    times = []
    for i in range(200):
        started = time.perf_counter()
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO t VALUES (?)", (i,))
        db.execute("COMMIT")
        times.append(time.perf_counter() - started)
    db.close()
    return statistics.median(times) * 1000


def _in_process_rate(folder: Path, bodies: list[bytes], repeat: int) -> float:
    """`engine.handle` on a SQLite store in this process, the same messages (parsed first)."""
    project, _ = load_project(FLOW, write_deployment(folder))
    assert project is not None
    events = [event for body in bodies for event in normalise("web", body)]
    crm = ScriptedDataActions({"CRM Lookup": DataResult("not_found")})
    with SqliteStore(folder / f"engine-{repeat}.sqlite") as db:
        engine = project.engine(store=db, data_actions=crm)
        started = time.perf_counter()
        for event in events:
            engine.handle(event)
        return len(events) / (time.perf_counter() - started)


def _line(name: str, values: list[float], unit: str) -> str:
    return f"  {name:<34} min {min(values):8,.1f}  median {statistics.median(values):8,.1f} {unit}"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        server = ServiceProcess(
            FLOW,
            write_deployment(folder),
            folder / "service.sqlite",
            environment(),
            folder / "serve.log",
        ).start()
        floor = _Floor()
        engine_rates: list[float] = []
        commits: list[float] = []
        floors: list[ServiceRun] = []
        runs: dict[int, list[ServiceRun]] = {1: [], 8: []}
        next_id = 0
        try:
            _service_run(server, [_request(b) for b in _bodies(10**9, 200)], 8)  # warm up
            _service_run(floor, [_request(b) for b in _bodies(10**9, 200)], 8)
            for repeat in range(REPEATS):
                bodies = _bodies(next_id, REQUESTS)
                next_id += REQUESTS
                engine_rates.append(_in_process_rate(folder, bodies, repeat))
                commits.append(_commit_ms(folder))
                floors.append(_service_run(floor, [_request(b) for b in bodies], 8))
                for clients in (1, 8):
                    requests = [_request(b) for b in _bodies(next_id, REQUESTS)]
                    next_id += REQUESTS
                    runs[clients].append(_service_run(server, requests, clients))
        finally:
            server.stop()
            floor.stop()
    print(f"{REQUESTS:,} signed web webhooks per run, flows/messaging.flow, {REPEATS} runs each")
    print(_line("in-process engine.handle, durable", engine_rates, "events/s"))
    print(_line("yardstick: one durable commit", commits, "ms"))
    print(_line("yardstick: trivial ASGI, 8 clients", [r.rate for r in floors], "requests/s"))
    print(_line("yardstick: trivial ASGI, p99", [r.p99_ms for r in floors], "ms"))
    print(_line("yardstick: trivial ASGI, CPU/request", [r.cpu_us for r in floors], "us"))
    for clients, results in runs.items():
        label = f"service, {clients} client{'s' if clients > 1 else ''}"
        print(_line(f"{label}: acknowledged", [r.rate for r in results], "requests/s"))
        print(_line(f"{label}: ack p50", [r.p50_ms for r in results], "ms"))
        print(_line(f"{label}: ack p99", [r.p99_ms for r in results], "ms"))
        print(_line(f"{label}: processed", [r.processed_rate for r in results], "events/s"))
        print(_line(f"{label}: CPU/request", [r.cpu_us for r in results], "us"))
        print(_line(f"{label}: front CPU/request", [r.front_cpu_us for r in results], "us"))
    best = statistics.median(r.rate for r in runs[8])
    engine = statistics.median(engine_rates)
    trivial = statistics.median(r.rate for r in floors)
    bound = 8 / (statistics.median(commits) / 1000)
    cpu = statistics.median(r.cpu_us for r in runs[8])
    front = statistics.median(r.front_cpu_us for r in runs[8])
    print(
        f"  8 clients / in-process durable: {best / engine:.0%} (goal >= 50 %); "
        f"goal >= 1,800 requests/s, p99 <= 20 ms"
    )
    print(
        f"  8 clients / trivial ASGI endpoint: {best / trivial:.0%}; 8 clients / "
        f"(8 / commit latency = {bound:,.0f} requests/s): {best / bound:.0%}"
    )
    if cpu and front:
        print(
            f"  8 clients: {cpu:,.0f} us of CPU per request (both processes, until processed), "
            f"{front:,.0f} us of it in the front: the front's interpreter lock allows "
            f"{1e6 / front:,.0f} acknowledgements/s, the engine's {1e6 / (cpu - front):,.0f} "
            "events/s through the flow"
        )


if __name__ == "__main__":
    main()
