"""Embedding the flowlang service in your own ASGI process, with a route of your own.

    python examples/host_service.py     # flows/messaging.flow on http://127.0.0.1:8080

`create_app` builds exactly what `flowlang serve` runs (webhooks, /health, /ready, /metrics);
add routes to it like to any FastAPI app. Whatever touches the engine or its store goes through
the worker, the one thread that owns them: `await service.worker.call(fn)`. The example
deployment names no webhook secrets, so this runs with `insecure_dev` (unsigned webhooks are
accepted, with a warning on each): name them in your deployment for real traffic
(docs/service.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, HTTPException, Request

from flowlang.service import Settings, create_app
from flowlang.service.state import service_of

ROOT = Path(__file__).resolve().parent.parent


def build_app(store: Path) -> FastAPI:
    """The service for the messaging flow on `store`, plus `GET /conversations/{id}`."""
    app = create_app(
        Settings(
            flows=(ROOT / "flows" / "messaging.flow",),
            deployment=ROOT / "examples" / "deployment.yaml",
            store=store,
            insecure_dev=True,
        )
    )

    @app.get("/conversations/{conversation_id}")
    async def conversation(conversation_id: str, request: Request) -> dict[str, Any]:
        """A conversation's channel, status and agent, read on the engine's worker."""
        worker = service_of(request).worker
        view = await worker.call(lambda engine: engine.store.get_conversation(conversation_id))
        if view is None:
            raise HTTPException(404, f"no conversation {conversation_id}")
        return {"id": view.id, "channel": view.channel, "status": view.status, "agent": view.agent}

    return app


if __name__ == "__main__":
    uvicorn.run(build_app(Path("cc.sqlite")), host="127.0.0.1", port=8080)
