"""Kill -9 a process writing to the store mid-stream: after a restart (and the channel's
webhook retries) every accepted message is in the history exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from flowlang.store import open_store
from tests.store.helpers import ROOT, engine_on, inbound

COUNT = 60


def _inbound_texts(path: str | Path) -> list[str]:
    with open_store(path) as store:
        query = "SELECT content FROM messages WHERE direction = 'in' ORDER BY seq"
        rows = store.db.execute(query).fetchall()
    return [json.loads(r[0])["text"] for r in rows]


def test_no_accepted_message_is_lost_or_doubled_after_kill_9(
    durable_location: str | Path,
) -> None:
    path = durable_location
    writer = subprocess.Popen(
        [sys.executable, "-m", "tests.store.crash_writer", str(path), str(COUNT)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert writer.stdout is not None
    for _ in range(COUNT // 3):  # let it get a third of the way, then pull the plug
        writer.stdout.readline()
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    writer.stdout.close()
    assert writer.returncode == -signal.SIGKILL
    assert COUNT // 3 <= len(_inbound_texts(path)) < COUNT  # it really died mid-stream

    engine, store = engine_on(path)
    engine.recover()
    for n in range(COUNT):  # the channel retries every webhook it got no answer for
        engine.handle(inbound(f"message {n}", n, sender=f"web-{n % 7}", event_id=f"evt-{n}"))
    store.close()
    texts = _inbound_texts(path)
    assert sorted(texts, key=lambda t: int(t.split()[1])) == [f"message {n}" for n in range(COUNT)]
    assert len(texts) == len(set(texts))
