"""Several `flowlang serve` processes on one PostgreSQL store, under real traffic: for the
multi-process tests and the benchmark (docs/scaling.md).

`Cluster` starts N processes on one schema; `Traffic` sends WhatsApp messages from many
customers through 8 clients (each customer's messages in order, one after the other, each to a
process picked at random, some to two processes at once) while the agents accept and complete
their offers: driven by their live streams, as the agent workspace is (`agents="stream"`), or
polling their work list on random processes every 20 ms (`agents="poll"`: the API hammered
across processes). `Verdict` reads the store afterwards: what was
lost or doubled, the order of each customer's messages, and from the event log the most any
agent held at once and whether an interaction was ever offered to two agents at a time.
"""

from __future__ import annotations

import contextlib
import io
import json
import random
import socket
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import httpx
import psycopg
from ruamel.yaml import YAML

from flowlang.runtime.users import new_token, token_hash
from flowlang.store import count_unprocessed, open_store
from flowlang.store.postgres import PostgresStore
from tests.service.helpers import (
    environment,
    signed_headers,
    whatsapp_text,
    write_deployment,
)
from tests.service.process import ServiceProcess

FLOW = """\
flow "Cluster"
serve messages on whatsapp number "+442079460000"

state start:
    route to queue "Retail Banking"
"""
CAPACITY = {"alice": 3, "bob": 3, "carmen": 4, "kenji": 3}  # messages, from the deployment
CLIENTS = 8
HELD = {"offered", "accepted"}
LET_GO = {"requeued", "withdrawn", "disconnected", "expired", "completed", "transferred"}


def deployment(folder: Path) -> Path:
    """The example deployment: Retail Banking's four agents answer by hand, no after-call work."""
    path = write_deployment(folder)
    yaml = YAML()
    data: Any = yaml.load(path.read_text("utf-8"))
    queue = data["queues"]["Retail Banking"]
    for key in ("after_call_work", "wrap_up_required", "wrap_up_may_time_out"):
        queue.pop(key, None)
    for agent in CAPACITY:
        data["agents"][agent]["auto_answer"] = False
    out = io.StringIO()
    yaml.dump(data, out)
    path.write_text(out.getvalue(), "utf-8")
    return path


class Cluster:
    """N `flowlang serve` processes on the store at `url`, a PostgreSQL URL (the first to start
    leads) or a SQLite file (one process), serving `flow_text` (the routing flow above) with
    the deployment `deployment_of` writes in the folder."""

    def __init__(
        self,
        folder: Path,
        url: str | Path,
        processes: int,
        flow_text: str = FLOW,
        deployment_of: Callable[[Path], Path] = deployment,
    ) -> None:
        self.url = url
        flow = folder / "cluster.flow"
        flow.write_text(flow_text, "utf-8")
        self.tokens = {agent: new_token() for agent in CAPACITY}
        with open_store(url) as store:
            for agent, token in self.tokens.items():
                store.add_user(agent, "agent", token_hash(token), datetime.now(UTC))
        path = deployment_of(folder)
        self.processes = [
            ServiceProcess(flow, path, url, environment(), folder / f"serve-{i}.log")
            for i in range(processes)
        ]

    def start(self) -> Cluster:
        """Start the processes in turn; when one cannot start, those already started are
        stopped again before its error goes on (nothing is left running)."""
        try:
            for process in self.processes:
                process.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for process in self.processes:
            process.stop()

    def alive(self) -> list[ServiceProcess]:
        return [p for p in self.processes if p.process is not None and p.process.poll() is None]

    def roles(self) -> dict[str, str]:
        roles: dict[str, str] = {}
        for process in self.alive():
            try:
                roles[process.url] = httpx.get(process.url + "/ready", timeout=5).json()["role"]
            except httpx.HTTPError:
                roles[process.url] = "unreachable"
        return roles

    def leader(self) -> ServiceProcess | None:
        roles = self.roles()
        return next((p for p in self.alive() if roles.get(p.url) == "leader"), None)

    def unprocessed(self) -> int:
        return count_unprocessed(self.url)

    def routed(self) -> int:
        with open_store(self.url) as store:
            return len(store.routed_conversations())


def whatsapp(wa_id: str, event_id: str, text: str) -> bytes:
    return json.dumps(whatsapp_text(wa_id, event_id, text)).encode()


def text_of(customer: int, number: int) -> str:
    return f"customer {customer} message {number}"


@dataclass
class Traffic:
    """Customers' messages through `CLIENTS` clients and the agents' work, against `cluster`."""

    cluster: Cluster
    messages: int
    customers: int
    both: float = 0.1  # the share of messages sent to two processes at once
    seed: int = 23
    agents: Literal["poll", "stream"] = "poll"  # how the agents learn of their work (above)
    sent: list[str] = field(default_factory=list)  # texts acknowledged
    twice: int = 0
    errors: int = 0  # requests that failed and were sent again (a process killed)
    accepted: int = 0
    completed: int = 0
    # the agents' API requests by what they asked: "interactions" (a poll), "stream" (a stream
    # asked for), "accept", "complete"
    calls: Counter[str] = field(default_factory=Counter)
    streams_opened: int = 0
    processed_in: float = 0.0  # seconds from the first message until all were processed
    finished_in: float = 0.0  # ... until every interaction was completed too
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _done: threading.Event = field(default_factory=threading.Event)
    _streams: dict[str, socket.socket] = field(default_factory=dict)  # agent -> their stream's

    def run(self, during: Callable[[Traffic], None] | None = None) -> float:
        """Send everything (calling `during` once, from its own thread, at the start) and wait
        until every event is processed and every interaction completed; the seconds it took
        to acknowledge all messages."""
        work = self._streaming_agent if self.agents == "stream" else self._agent
        agents = [threading.Thread(target=work, args=(a,)) for a in CAPACITY]
        for thread in agents:
            thread.start()
        side = threading.Thread(target=during, args=(self,)) if during else None
        began = time.perf_counter()
        clients = [threading.Thread(target=self._client, args=(c,)) for c in range(CLIENTS)]
        for thread in clients:
            thread.start()
        if side is not None:
            side.start()
        for thread in clients:
            thread.join()
        took = time.perf_counter() - began
        if side is not None:
            side.join()
        deadline = time.monotonic() + 300
        while self.cluster.unprocessed() and time.monotonic() < deadline:
            time.sleep(0.02)
        self.processed_in = time.perf_counter() - began
        while self.cluster.routed() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.finished_in = time.perf_counter() - began
        with self._lock:
            self._done.set()
            for stream in self._streams.values():  # wakes its agent, waiting for an event
                with contextlib.suppress(OSError):
                    stream.shutdown(socket.SHUT_RDWR)
        for thread in agents:
            thread.join()
        return took

    def _plan(self, client: int) -> list[tuple[int, int]]:
        """(customer, number) of this client's messages: its customers in turn."""
        mine = [c for c in range(self.customers) if c % CLIENTS == client]
        plan: list[tuple[int, int]] = []
        numbers: dict[int, int] = defaultdict(int)
        for i in range(client, self.messages, CLIENTS):
            customer = mine[(i // CLIENTS) % len(mine)]
            plan.append((customer, numbers[customer]))
            numbers[customer] += 1
        return plan

    def _client(self, client: int) -> None:
        rng = random.Random(self.seed * 100 + client)
        # The copy sent to a second process goes on a client of its own, kept open as a
        # vendor's would be (a client made per copy spent the machine's CPU on TLS set-up).
        with httpx.Client(timeout=30) as http, httpx.Client(timeout=30) as retries:
            for customer, number in self._plan(client):
                text = text_of(customer, number)
                body = whatsapp(f"4477009{customer:05d}", f"wamid.{customer}.{number}", text)
                headers = signed_headers("whatsapp", body)
                again = (
                    self._twice(retries, body, headers, rng) if rng.random() < self.both else None
                )
                self._send(http, body, headers, rng)
                if again is not None:
                    again.join()
                with self._lock:
                    self.sent.append(text)

    def _send(
        self, http: httpx.Client, body: bytes, headers: dict[str, str], rng: random.Random
    ) -> None:
        """Until a process acknowledges it (a killed one's requests go to another)."""
        while True:
            alive = self.cluster.alive()
            target = rng.choice(alive)
            try:
                answer = http.post(f"{target.url}/webhooks/whatsapp", content=body, headers=headers)
                if answer.status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            with self._lock:
                self.errors += 1
            time.sleep(0.05)

    def _twice(
        self, http: httpx.Client, body: bytes, headers: dict[str, str], rng: random.Random
    ) -> threading.Thread | None:
        """The same message to another process at once (a vendor retrying on another): the
        thread sending it, started."""
        alive = self.cluster.alive()
        if len(alive) < 2:
            return None
        url = f"{rng.choice(alive).url}/webhooks/whatsapp"

        def post() -> None:
            with contextlib.suppress(httpx.HTTPError):
                http.post(url, content=body, headers=headers)

        thread = threading.Thread(target=post)
        thread.start()
        with self._lock:
            self.twice += 1
        return thread

    def _agent(self, agent: str) -> None:
        rng = random.Random(hash(agent))
        auth = {"Authorization": f"Bearer {self.cluster.tokens[agent]}"}
        with httpx.Client(timeout=10, headers=auth) as http:
            while not self._done.is_set():
                alive = self.cluster.alive()
                base = rng.choice(alive).url
                try:
                    self._called("interactions")
                    items = http.get(f"{base}/api/agent/interactions")
                    if items.status_code != 200:
                        time.sleep(0.1)
                        continue
                    for item in items.json():
                        self._work_on(http, base, item)
                except httpx.HTTPError:
                    pass
                time.sleep(0.02)

    def _streaming_agent(self, agent: str) -> None:
        """An agent as the workspace works: their live stream open on one process (another
        when that one goes), an offer accepted when it comes, an interaction completed when it
        is assigned. What happened while no stream was open is in the next stream's `hello`
        (the agent's work), acted on as it comes: nothing is polled."""
        rng = random.Random(hash(agent))
        auth = {"Authorization": f"Bearer {self.cluster.tokens[agent]}"}
        timeout = httpx.Timeout(30, read=None)  # a stream waits for its next event
        with httpx.Client(timeout=timeout, headers=auth) as http:
            while not self._done.is_set():
                base = rng.choice(self.cluster.alive()).url
                with contextlib.suppress(httpx.HTTPError):
                    self._follow(http, base, agent)
                self._done.wait(0.1)  # then open it again (a process died, or a failover)

    def _follow(self, http: httpx.Client, base: str, agent: str) -> None:
        """Work from the agent's stream on `base` until it ends."""
        self._called("stream")
        with http.stream("GET", f"{base}/api/agent/stream") as answer:
            if answer.status_code != 200:  # no leader for a moment (503)
                return
            stream = answer.extensions["network_stream"].get_extra_info("socket")
            with self._lock:
                if self._done.is_set():
                    return
                self._streams[agent] = stream
                self.streams_opened += 1
            try:
                for kind, data in server_sent(answer.iter_lines()):
                    if kind == "hello":
                        for item in data["work"]:
                            self._work_on(http, base, item)
                    elif kind in ("offer", "assigned"):
                        state = "offered" if kind == "offer" else "assigned"
                        self._work_on(http, base, {**data, "state": state})
                    elif kind == "closed":
                        return
            finally:
                with self._lock:
                    self._streams.pop(agent, None)

    def _called(self, what: str) -> None:
        with self._lock:
            self.calls[what] += 1

    def _work_on(self, http: httpx.Client, base: str, item: dict[str, Any]) -> None:
        conversation = item["conversation_id"]
        if item["state"] == "offered":
            self._called("accept")
            answer = http.post(f"{base}/api/agent/interactions/{conversation}/accept", json={})
            if answer.status_code == 200:
                with self._lock:
                    self.accepted += 1
        elif item["state"] == "assigned":
            self._called("complete")
            answer = http.post(
                f"{base}/api/agent/interactions/{conversation}/complete",
                json={"wrap_up": "Resolved"},
            )
            if answer.status_code == 200:
                with self._lock:
                    self.completed += 1


def server_sent(lines: Iterator[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """The (type, data) of each Server-Sent Event in a stream's lines (comments skipped)."""
    kind, data = "message", ""
    for line in lines:
        if not line:
            if data:
                yield kind, json.loads(data)
            kind, data = "message", ""
        elif line.startswith("event:"):
            kind = line.removeprefix("event:").strip()
        elif line.startswith("data:"):
            data += line.removeprefix("data:").strip()


@dataclass
class Verdict:
    """What the store says after a run."""

    lost: list[str]
    doubled: list[str]
    out_of_order: list[str]
    most_held: dict[str, int]  # agent -> the most interactions they held at once
    offered_twice: list[str]  # conversations offered to an agent while another had them
    unprocessed: int
    routed: int

    @classmethod
    def of(cls, url: str, sent: list[str]) -> Verdict:
        with psycopg.connect(url) as db:
            rows = db.execute(
                "SELECT content FROM messages WHERE direction = 'in' ORDER BY seq"
            ).fetchall()
            (unprocessed,) = db.execute(
                "SELECT count(*) FROM inbound WHERE processed = 0"
            ).fetchone() or (0,)
            log = db.execute("SELECT kind, conversation_id, data FROM events ORDER BY seq")
            events = [{**json.loads(d), "kind": k, "conversation_id": c} for k, c, d in log]
        texts = [str(json.loads(r[0]).get("text", "")) for r in rows]
        counts: dict[str, int] = defaultdict(int)
        for text in texts:
            counts[text] += 1
        order: dict[str, list[int]] = defaultdict(list)
        for text in texts:
            customer, _, number = text.removeprefix("customer ").partition(" message ")
            order[customer].append(int(number))
        out_of_order = [c for c, numbers in order.items() if numbers != sorted(numbers)]
        most, twice = _holding(events)
        with PostgresStore(url) as store:
            routed = len(store.routed_conversations())
        return cls(
            lost=[t for t in sent if counts.get(t, 0) == 0],
            doubled=[t for t, n in counts.items() if n > 1],
            out_of_order=out_of_order,
            most_held=most,
            offered_twice=twice,
            unprocessed=int(unprocessed),
            routed=routed,
        )

    def over_capacity(self) -> dict[str, int]:
        return {a: n for a, n in self.most_held.items() if n > CAPACITY.get(a, 0)}


def _holding(events: list[dict[str, Any]]) -> tuple[dict[str, int], list[str]]:
    """From the event log: the most each agent held at once; conversations offered to one agent
    while another held them."""
    holder: dict[str, str] = {}
    offered: set[str] = set()  # held as an offer not accepted yet
    held: dict[str, set[str]] = defaultdict(set)
    most: dict[str, int] = defaultdict(int)
    twice: list[str] = []
    for event in events:
        kind, conversation = event["kind"], event.get("conversation_id") or ""
        agent = event.get("agent")
        if kind == "lead_taken":  # a new leader: open offers went back to their queue
            for voided in offered:
                held[holder.pop(voided)].discard(voided)
            offered.clear()
        elif kind in HELD and agent:
            if holder.get(conversation, agent) != agent:
                twice.append(conversation)
            holder[conversation] = agent
            held[agent].add(conversation)
            most[agent] = max(most[agent], len(held[agent]))
            (offered.add if kind == "offered" else offered.discard)(conversation)
        elif kind in LET_GO and conversation in holder:
            held[holder.pop(conversation)].discard(conversation)
            offered.discard(conversation)
    return dict(most), twice
