"""Which version of each flow a service runs when it starts: the file's, or the one published
over the admin API (docs/service.md, "Flow versions across restarts").

The store keeps each flow's active version and the version its file had at the last start. A
file that changed since then is a new deployment: its version runs and becomes the active one.
A file that did not change leaves what the admins published since in place: the store's active
version runs (a restart does not undo a publication or a rollback). A flow the store has never
seen runs its file's version.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from flowlang.compiler.ir import FlowGraph
from flowlang.project import Project
from flowlang.runtime.program import Program
from flowlang.store import Store


@dataclass(frozen=True)
class Started:
    """The version a flow runs at this start, and the sentence that says why."""

    flow: str
    program: Program
    source: str  # "file" or "store"
    said: str


def starting_versions(
    flows: Sequence[tuple[Path, Project]], store: Store, now: datetime
) -> list[Started]:
    """Each flow's version for this start (in the order given), recorded in the store."""
    active = store.active_flows()
    out: list[Started] = []
    with store.transaction():
        for path, project in flows:
            name, file_version = project.graph.name, project.graph.version
            kept = active.get(name)
            graph = store.flow_version(kept.version) if kept is not None else None
            if kept is None or kept.file_version != file_version or graph is None:
                why = (
                    "new to this store"
                    if kept is None
                    else f"the file changed since the last start (was {kept.file_version})"
                    if kept.file_version != file_version
                    else f"the published version {kept.version} is not in the store"
                )
                store.set_active_flow(name, file_version, f"file:{path}", now, file_version)
                said = f"flow {name!r}: version {file_version} from {path} ({why})"
                out.append(Started(name, project.program, "file", said))
                continue
            store.set_active_flow(kept.flow, kept.version, kept.by, kept.at, file_version)
            program = project.program
            if kept.version != file_version:
                program = Program(FlowGraph.from_dict(graph), project.program.templates)
            said = (
                f"flow {name!r}: version {kept.version} published by {kept.by} at "
                f"{kept.at.isoformat(timespec='seconds')} (the store's; {path} is unchanged "
                "since the last start)"
            )
            out.append(Started(name, program, "store", said))
    return out
