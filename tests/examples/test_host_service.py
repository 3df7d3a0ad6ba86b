"""The embedding example: the service app with a route of its own that reads on the worker."""

from __future__ import annotations

import time
from pathlib import Path

from fastapi.testclient import TestClient

from examples.host_service import ROOT, build_app


def test_the_embedded_service_takes_a_webhook_and_answers_its_own_route(tmp_path: Path) -> None:
    body = (ROOT / "examples" / "payloads" / "web" / "message.json").read_bytes()
    with TestClient(build_app(tmp_path / "cc.sqlite")) as client:
        assert client.post("/webhooks/web", content=body).json()["accepted"] == 1
        deadline = time.monotonic() + 60
        while client.get("/ready").json()["unprocessed"] and time.monotonic() < deadline:
            time.sleep(0.01)
        found = client.get("/conversations/conv1")
        assert found.status_code == 200
        assert found.json()["channel"] == "web"
        assert client.get("/conversations/conv999").status_code == 404
