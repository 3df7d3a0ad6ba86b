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
from tests.store.crash_writer import SentIds
from tests.store.helpers import ROOT, engine_on, inbound

COUNT = 60


def _stored(path: str | Path, direction: str, key: str) -> list[str]:
    """`key` of each stored message of `direction` ('in' or 'out'), in order."""
    with open_store(path) as store:
        query = f"SELECT content FROM messages WHERE direction = '{direction}' ORDER BY seq"
        rows = store.db.execute(query).fetchall()
    return [json.loads(r[0])[key] for r in rows]


def _inbound_texts(path: str | Path) -> list[str]:
    return _stored(path, "in", "text")


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


GROUP = 8
STALL = 10  # in the group of messages 8-15, of which 8-13 each send a reply


def _outbound_ids(path: str | Path) -> list[str]:
    return _stored(path, "out", "message_id")


def test_a_kill_9_between_a_groups_processing_and_its_commit_loses_and_sends_nothing_of_it(
    durable_location: str | Path, tmp_path: Path
) -> None:
    """Group commit (`engine.group`): the writer is killed after processing a whole group
    and before its commit. None of the group is stored or sent; after the restart and the
    channel's retries every message is processed exactly once."""
    path, sent = durable_location, tmp_path / "sent.txt"
    writer = subprocess.Popen(
        [sys.executable, "-m", "tests.store.crash_writer", str(path), str(COUNT)]
        + [str(value) for value in (GROUP, STALL, sent)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert writer.stdout is not None
    acknowledged = []
    while (line := writer.stdout.readline().strip()) != "processed, not committed":
        acknowledged.append(int(line))
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    writer.stdout.close()
    assert writer.returncode == -signal.SIGKILL

    stalled = STALL - STALL % GROUP
    assert acknowledged == list(range(stalled))
    # The processed group left nothing: not its messages, not its replies.
    assert _inbound_texts(path) == [f"message {n}" for n in range(stalled)]
    delivered = sent.read_text(encoding="utf-8").split()
    assert delivered and set(delivered) <= set(_outbound_ids(path))

    engine, store = engine_on(path)
    engine.adapters = [SentIds(sent)]
    engine.recover()
    for n in range(COUNT):  # the channel retries every webhook it got no answer for
        engine.handle(inbound(f"message {n}", n, sender=f"web-{n % 7}", event_id=f"evt-{n}"))
    store.close()
    texts = _inbound_texts(path)
    assert texts == [f"message {n}" for n in range(COUNT)]
    assert set(sent.read_text(encoding="utf-8").split()) == set(_outbound_ids(path))
