"""Files flowlang writes that hold customer data are owner-only (0600), whatever the umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from flowlang.channels.outbound import JsonLinesAdapter
from flowlang.cli import main
from flowlang.runtime.ports import OutboundMessage
from flowlang.store import SqliteStore, StoreError
from tests.store.helpers import engine_on, inbound

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _usual_umask() -> Iterator[None]:
    """The usual umask, under which a plain open() creates files 0644."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def mode(path: Path) -> str:
    return oct(stat.S_IMODE(path.stat().st_mode))


def test_a_store_file_and_its_wal_and_shm_are_created_owner_only(tmp_path: Path) -> None:
    engine, store = engine_on(tmp_path / "cc.db")
    engine.handle(inbound("Hi, my phone is +44 7700 900123"))
    files = [tmp_path / "cc.db", tmp_path / "cc.db-wal", tmp_path / "cc.db-shm"]
    assert all(f.exists() for f in files)
    assert [mode(f) for f in files] == ["0o600"] * 3
    store.close()


def test_a_store_file_that_exists_keeps_the_mode_its_owner_gave_it(tmp_path: Path) -> None:
    path = tmp_path / "cc.db"
    SqliteStore(path).close()
    path.chmod(0o640)
    SqliteStore(path).close()
    assert mode(path) == "0o640"


def test_a_store_in_a_missing_folder_is_refused_with_its_name(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"nowhere/cc\.db: cannot create the store"):
        SqliteStore(tmp_path / "nowhere" / "cc.db")


def test_sent_messages_written_as_json_lines_are_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "sent.jsonl"
    message = OutboundMessage(
        "conv1", "sms", "+447480000000", "+447700900456", "agent", {"kind": "text", "text": "Hi"}
    )
    JsonLinesAdapter(path).send(message)
    JsonLinesAdapter(path).send(message)
    assert mode(path) == "0o600"
    assert len(path.read_text("utf-8").splitlines()) == 2


def test_a_report_written_to_a_file_is_owner_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    store, report = tmp_path / "cc.db", tmp_path / "day.html"
    flow = ["flows/messaging.flow", "-d", "examples/deployment.yaml"]
    runner = CliRunner()
    samples = ["-m", "examples/messages.yaml", "--allow-blocked", "--store", str(store)]
    ran = runner.invoke(main, ["dry-run", *flow, *samples])
    assert ran.exit_code == 0, ran.output
    args = ["report", "interactions", "--store", str(store), "--format", "html", "-o", str(report)]
    written = runner.invoke(main, args)
    assert written.exit_code == 0, written.output
    assert "conv1" in report.read_text("utf-8")
    assert mode(report) == "0o600"
