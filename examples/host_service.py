"""A small host service that embeds the flowlang Engine behind webhook-style HTTP endpoints.

Run it:  python examples/host_service.py --port 8080 [--store cc.sqlite]
Then:    curl -X POST localhost:8080/events -d '{"type": "inbound", "event_id": "m1",
           "channel": "whatsapp", "sender_id": "447700900123", "text": "fees?",
           "timestamp": "2026-03-02T10:00:00Z"}'

Endpoints (JSON in, JSON out):
  POST /events            one event: inbound message, agent action, bot outcome or timer
  POST /webhooks/CHANNEL  a channel's raw webhook payload (whatsapp, messenger, line, sms, ...);
                          this example does not check signatures: a real host passes the
                          request's headers and its app secret to `ingest` (see the README)
  POST /tick              {"now": ISO time}: fire due timers
  GET  /realtime[?at=ISO] waiting and in progress per queue, active per media, agents' states:
                          kept current by `engine.listen`, not by reading the log again
  GET  /health
Bad input gets a 400 with the field that is wrong; it is kept as a dead letter, never dropped.
An agent action the engine refuses (the conversation is not theirs, a wrap-up code missing or
not the queue's) gets a 409 whose `refusal` says who, what and why; nothing was changed.
With --store the engine keeps everything in that SQLite file; on a restart it recovers timers,
queues and unprocessed events, and the real-time view starts from the log (`fold_live`).
"""

from __future__ import annotations

import argparse
import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from pydantic import TypeAdapter, ValidationError

from flowlang.channels.inbound import NORMALISERS
from flowlang.channels.ingest import ingest
from flowlang.events import Event, in_utc
from flowlang.project import load_project
from flowlang.reporting import InteractionLog, Scope, fold_live, realtime
from flowlang.reporting.render import to_data
from flowlang.runtime.engine import Engine, Outcome
from flowlang.store import SqliteStore

ROOT = Path(__file__).resolve().parent.parent
EVENT = TypeAdapter(Event)


def outcome_json(outcome: Outcome) -> dict[str, Any]:
    return {
        "conversation_id": outcome.conversation_id,
        "duplicate": outcome.duplicate,
        "note": outcome.note,
        "path": [{"line": t.line, "step": t.op, "detail": t.detail} for t in outcome.trace],
        "effects": [e.model_dump(mode="json") for e in outcome.effects],
        "deliveries": [
            {
                "status": d.status,
                "reason_code": d.reason_code,
                "reason": d.reason,
                "content": d.message.content,
            }
            for d in outcome.deliveries
        ],
        "acd": [{"kind": n.kind, "agent": n.agent, "queue": n.queue} for n in outcome.notices],
        "refusal": (
            {
                "agent": outcome.refusal.agent,
                "action": outcome.refusal.action.value,
                "conversation_id": outcome.refusal.conversation_id,
                "code": outcome.refusal.code,
                "reason": outcome.refusal.reason,
            }
            if outcome.refusal is not None
            else None
        ),
    }


class Host:
    """The engine plus a lock: handlers run on several threads, the engine on one at a time.
    A live InteractionLog follows the engine's event log for the real-time view."""

    def __init__(
        self,
        engine: Engine,
        queues: list[str],
        agents: list[str],
        live: InteractionLog | None = None,
    ) -> None:
        self.engine = engine
        self.lock = threading.Lock()
        self.live = live if live is not None else InteractionLog()
        self.queues, self.agents = queues, agents
        engine.listen(self.live.apply)

    def event(self, body: bytes) -> tuple[int, dict[str, Any]]:
        try:
            event = EVENT.validate_json(body)
        except ValidationError as exc:
            problems = [
                {"field": ".".join(map(str, e["loc"])), "problem": e["msg"]} for e in exc.errors()
            ]
            with self.lock:
                self.engine.store.dead_letter(
                    "http",
                    {"body": body.decode("utf-8", "replace")},
                    json.dumps(problems),
                    datetime.now().astimezone(),
                )
            return 400, {"error": "invalid event", "problems": problems}
        with self.lock:
            outcome = self.engine.handle(event)
        # A refused agent action changed nothing: 409, with who, what and why.
        return 409 if outcome.refusal is not None else 200, outcome_json(outcome)

    def webhook(self, channel: str, body: bytes) -> tuple[int, dict[str, Any]]:
        if channel not in NORMALISERS:
            return 404, {"error": f"no channel {channel!r}", "channels": sorted(NORMALISERS)}
        with self.lock:
            result = ingest(self.engine, channel, body)
        if result.error is not None:  # kept as a dead letter by ingest, for a replay
            return 400, {"error": result.error}
        return 200, {"outcomes": [outcome_json(o) for o in result.outcomes]}

    def realtime(self, query: str) -> tuple[int, dict[str, Any]]:
        at_text = parse_qs(query).get("at", [""])[0]
        try:
            at = in_utc(datetime.fromisoformat(at_text)) if at_text else None
        except ValueError:
            return 400, {"error": f"at={at_text!r} is not an ISO time, e.g. 2026-03-02T10:00Z"}
        with self.lock:
            at = at or datetime.now(UTC)
            queues, media, agents = realtime(self.live, at, Scope(), self.queues, self.agents)
        return 200, {
            "at": at.isoformat(),
            "queues": to_data(queues)["rows"],
            "media": to_data(media)["rows"],
            "agents": to_data(agents)["rows"],
        }

    def tick(self, body: bytes) -> tuple[int, dict[str, Any]]:
        try:
            now = in_utc(datetime.fromisoformat(json.loads(body or b"{}")["now"]))
        except (KeyError, ValueError, TypeError, json.JSONDecodeError):
            return 400, {"error": 'send {"now": "2026-03-02T10:00:00Z"}'}
        with self.lock:
            return 200, {"outcomes": [outcome_json(o) for o in self.engine.advance(now)]}


def make_handler(host: Host) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _reply(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload, ensure_ascii=False, default=str).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path == "/realtime":
                self._reply(*host.realtime(url.query))
            elif self.path == "/health":
                self._reply(
                    200,
                    {
                        "ok": True,
                        "flow": host.engine.program.graph.name,
                        "version": host.engine.program.graph.version,
                    },
                )
            else:
                self._reply(404, {"error": f"no such endpoint {self.path}"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            if self.path == "/events":
                self._reply(*host.event(body))
            elif self.path == "/tick":
                self._reply(*host.tick(body))
            elif self.path.startswith("/webhooks/"):
                self._reply(*host.webhook(self.path.removeprefix("/webhooks/"), body))
            else:
                self._reply(404, {"error": f"no such endpoint {self.path}"})

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


def build_server(
    port: int = 0,
    flow: Path | None = None,
    deployment: Path | None = None,
    store: Path | None = None,
) -> ThreadingHTTPServer:
    """A server on 127.0.0.1 (port 0 picks a free one) running the messaging flow, in memory
    or on a SQLite `store` file it recovers from."""
    flow = flow or ROOT / "flows" / "messaging.flow"
    deployment = deployment or ROOT / "examples" / "deployment.yaml"
    project, _ws = load_project(flow, deployment if deployment.exists() else None)
    if project is None:
        raise SystemExit(f"{flow} has errors; run flowlang validate")
    known = project.deployment
    queues, agents = (list(known.queues), list(known.agents)) if known else ([], [])
    db = SqliteStore(store) if store is not None else None
    if db is None:
        host = Host(project.engine(), queues, agents)
    else:
        engine = project.engine(store=db)
        engine.recover()
        host = Host(engine, queues, agents, live=fold_live(db))
    server = Server(("127.0.0.1", port), make_handler(host))
    server.store = db
    return server


class Server(ThreadingHTTPServer):
    """Closes the store file, when there is one, with the server."""

    store: SqliteStore | None = None

    def server_close(self) -> None:
        super().server_close()
        if self.store is not None:
            self.store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--flow", type=Path)
    parser.add_argument("--deployment", type=Path)
    parser.add_argument("--store", type=Path, help="a SQLite store file (default: in memory)")
    args = parser.parse_args()
    server = build_server(args.port, args.flow, args.deployment, args.store)
    print(f"flowlang host listening on http://127.0.0.1:{server.server_address[1]}")
    server.serve_forever()


if __name__ == "__main__":
    main()
