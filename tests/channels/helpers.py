"""What the channel tests share: the vendor fixtures and an engine for a flow over the example
deployment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flowlang.project import load_project
from flowlang.runtime.engine import Engine
from flowlang.runtime.memory import RecordingAdapter

ROOT = Path(__file__).resolve().parents[2]
PAYLOADS = ROOT / "examples" / "payloads"
DEPLOYMENT = ROOT / "examples" / "deployment.yaml"

FIXTURES = [
    ("whatsapp", "whatsapp/image_and_button.json"),
    ("whatsapp", "whatsapp/status.json"),
    ("instagram", "instagram/message.json"),
    ("messenger", "messenger/quick_reply_and_postback.json"),
    ("facebook_page", "facebook_page/comment.json"),
    ("x_dm", "x/dm.json"),
    ("x_public", "x/mention.json"),
    ("line", "line/message.json"),
    ("web", "web/message.json"),
]
"""One real payload per channel, (channel, path under examples/payloads)."""


def engine_for(
    tmp_path: Path, flow: str, deployment: Path = DEPLOYMENT, store: Any = None
) -> tuple[Engine, RecordingAdapter]:
    """An engine running `flow` (text) on `deployment`, recording what it sends."""
    path = tmp_path / "test.flow"
    path.write_text(flow, "utf-8")
    project, ws = load_project(path, deployment)
    assert project is not None, [d.message for d in ws.diagnostics]
    sent = RecordingAdapter()
    parts = {"store": store} if store is not None else {}
    return project.engine(adapters=[sent], **parts), sent
