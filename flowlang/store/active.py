"""The `active_flows` table both SQL stores share: each flow's version that new conversations
start on, who made it so and when, and the version its file had when the service last started
from files (docs/service.md, "Flow versions across restarts")."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class ActiveFlow:
    """A flow's active version: published over the admin API (`by` the admin) or taken from
    its file at a start (`by` "file:<path>")."""

    flow: str
    version: str
    by: str
    at: datetime
    file_version: str  # the version the flow's file had at the last start ("" before any)


COLUMNS = "flow, version, published_by, published_at, file_version"


def active_flow_of(row: tuple[object, ...]) -> ActiveFlow:
    """A row selected with COLUMNS."""
    flow, version, by, at, file_version = row
    return ActiveFlow(
        str(flow), str(version), str(by), datetime.fromisoformat(str(at)), str(file_version)
    )
