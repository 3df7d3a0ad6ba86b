"""docs/channels.md's table of every event kind per channel, checked against its fixtures."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from flowlang.channels.inbound import read

ROOT = Path(__file__).resolve().parents[2]
PAYLOADS = ROOT / "examples" / "payloads"
DOC = ROOT / "docs" / "channels.md"
# The webhook each fixture folder is posted to (X's one webhook carries DMs and public posts).
WEBHOOK = {"x": "x_dm"}


def _rows() -> list[dict[str, str]]:
    lines = DOC.read_text().splitlines()
    start = lines.index("### Every event kind, and what it becomes")
    header = next(i for i in range(start, len(lines)) if lines[i].startswith("| channel |"))
    names = [cell.strip() for cell in lines[header].strip("|").split("|")]
    rows = []
    for line in lines[header + 2 :]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        assert len(cells) == len(names), line
        rows.append(dict(zip(names, cells, strict=True)))
    return rows


ROWS = _rows()


def _code(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


@pytest.mark.parametrize("row", ROWS, ids=[row["fixture"].strip("`") for row in ROWS])
def test_each_row_is_what_its_fixture_becomes(row: dict[str, str]) -> None:
    (fixture,) = _code(row["fixture"])
    (channel,) = _code(row["channel"])
    path = PAYLOADS / fixture
    webhook = WEBHOOK.get(path.parent.name, path.parent.name)
    parts = read(webhook, path.read_bytes(), received_at=datetime(2026, 1, 5, tzinfo=UTC))
    assert [p.error for p in parts if p.error] == []
    became = []
    for part in parts:
        if part.events:
            (event,) = part.events
            assert event.channel == channel
            became.append(event.kind.value)
        else:
            (reason,) = part.ignored
            assert f'"{reason}"' in row["notes"], f"{fixture}: {reason!r} is not in the row"
            became.append("ignored")
    assert became == _code(row["becomes"])


def test_every_fixture_has_a_row_and_every_channel_is_covered() -> None:
    listed = {_code(row["fixture"])[0] for row in ROWS}
    fixtures = {str(p.relative_to(PAYLOADS)) for p in PAYLOADS.rglob("*") if p.is_file()}
    assert fixtures == listed
    channels = {_code(row["channel"])[0] for row in ROWS}
    assert channels == {
        "whatsapp",
        "messenger",
        "instagram",
        "facebook_page",
        "x_dm",
        "x_public",
        "line",
        "sms",
        "web",
    }
