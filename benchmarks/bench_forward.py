"""A follower's forwarding: the CPU a forwarded request costs the process that forwards it,
with flowlang's forwarder (`flowlang/service/upstream.py`) and, measured in the same run as the
baseline, the httpx forwarder it replaced (docs/history/scaling-measurements.md, "What a
follower cost, and the cut"; an `httpx.AsyncClient` streaming the answer back, as `forward.py`
did before).

Each measurement starts a leader (`asgi_floor.py`: a trivial answer, so what is measured is the
hop) and a forwarding process (uvicorn with the service's protocol and event loop), then sends
REQUESTS GET requests like an agent's poll (a bearer token, a few headers) from 4 clients on
kept-alive connections, and reads the forwarding process's CPU (user and system, /proc) over
them. The two forwarders are interleaved over the repetitions; min and median shown. Goal: the
forwarder costs at most half the baseline's CPU a request.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.types import Receive, Scope, Send

from flowlang.service.forward import _HOP_BY_HOP, FORWARDED, Forwarder, ForwardToLeader
from flowlang.service.protocol import with_header_timeout
from tests.ports import free_port

REQUESTS = 4000
CLIENTS = 4
REPEATS = 3
KEY = b"bench-key"
MODES = ("httpx (before)", "flowlang")


class HttpxForwarder:
    """The forwarding as it was: an httpx.AsyncClient, the answer streamed back."""

    def __init__(self, leader: str) -> None:
        self.leader = leader
        self.client = httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=None))

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        headers = [(k, v) for k, v in scope["headers"] if k.lower() not in _HOP_BY_HOP]
        headers.append((FORWARDED, KEY))
        query = scope.get("query_string", b"").decode("latin-1")
        target = self.leader + scope["path"] + (f"?{query}" if query else "")
        request = self.client.build_request(scope["method"], target, headers=headers, content=body)
        answer = await self.client.send(request, stream=True)
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": answer.status_code,
                    "headers": [
                        (k, v) for k, v in answer.headers.raw if k.lower() not in _HOP_BY_HOP
                    ],
                }
            )
            async for chunk in answer.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await answer.aclose()


async def _lifespan(scope: Scope, receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        kind = "startup" if message["type"] == "lifespan.startup" else "shutdown"
        await send({"type": f"lifespan.{kind}.complete"})
        if kind == "shutdown":
            return


def _serve(mode: str, port: int, leader: str) -> None:
    """(In the forwarding process) forward everything to `leader` with `mode`'s forwarder."""
    if mode == MODES[0]:
        forwarding = HttpxForwarder(leader)

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] == "lifespan":
                await _lifespan(scope, receive, send)
            else:
                await forwarding(scope, receive, send)

        served: Any = app
    else:
        served = ForwardToLeader(_lifespan, Forwarder(lambda: True, lambda: leader, KEY))
    uvicorn.run(
        served,
        host="127.0.0.1",
        port=port,
        http=with_header_timeout(10.0),
        loop="uvloop",
        log_level="warning",
        access_log=False,
    )


def _started(args: list[str], url: str) -> subprocess.Popen[bytes]:
    root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": root}
    process = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    for _ in range(600):
        try:
            httpx.get(url + "/api/agent/interactions", timeout=1.0)
            return process
        except httpx.HTTPError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"{args} did not start")


def _cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _measure(mode: str, leader: str) -> tuple[float, float]:
    """CPU ms of the forwarding process a request, and requests/s."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [sys.executable, "-m", "benchmarks.bench_forward", "serve", mode, str(port), leader]
    process = _started(args, url)
    try:
        errors: list[int] = []

        def client() -> None:
            headers = {"Authorization": "Bearer " + "t" * 43, "Accept": "application/json"}
            with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
                for _ in range(REQUESTS // CLIENTS):
                    if http.get("/api/agent/interactions").status_code != 200:
                        errors.append(1)

        threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
        before = _cpu(process.pid)
        began = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        took = time.perf_counter() - began
        spent = _cpu(process.pid) - before
        if errors:
            raise RuntimeError(f"{mode}: {len(errors)} requests failed")
        return spent / REQUESTS * 1000, REQUESTS / took
    finally:
        process.terminate()
        process.wait(10)


def main() -> None:
    port = free_port()
    leader = f"http://127.0.0.1:{port}"
    upstream = _started([sys.executable, "-m", "benchmarks.asgi_floor", str(port)], leader)
    try:
        print(f"{REQUESTS:,} forwarded GETs from {CLIENTS} clients, kept-alive connections")
        loads = [os.getloadavg()[0]]
        found: dict[str, list[tuple[float, float]]] = {mode: [] for mode in MODES}
        for _ in range(REPEATS):
            for mode in MODES:
                found[mode].append(_measure(mode, leader))
                loads.append(os.getloadavg()[0])
        print(f"  {'':16} {'CPU ms a request: min':>22} {'median':>7} {'requests/s median':>18}")
        for mode in MODES:
            cpu = [c for c, _ in found[mode]]
            rate = [r for _, r in found[mode]]
            print(
                f"  {mode:16} {min(cpu):22.3f} {statistics.median(cpu):7.3f} "
                f"{statistics.median(rate):18,.0f}"
            )
        ratio = statistics.median(c for c, _ in found[MODES[1]]) / statistics.median(
            c for c, _ in found[MODES[0]]
        )
        print(f"  flowlang / httpx CPU a request {ratio:5.2f}  (goal <= 0.50)")
        print(f"  load average (1 min) over the runs: {min(loads):.1f} to {max(loads):.1f}")
    finally:
        upstream.terminate()
        upstream.wait(10)


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        _serve(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    else:
        main()
